// Each bind_<family>.cpp registers itself here, so adding a family never edits module.cpp:
//   static fastnn::bind::Registrar reg("conv", &bind_conv);
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/buffers.h"
#include "core/check.h"

namespace fastnn::bind {

namespace py = pybind11;

using BindFn = void (*)(py::module_&);

inline std::vector<std::pair<std::string, BindFn>>& registry() {
  static std::vector<std::pair<std::string, BindFn>> fns;
  return fns;
}

struct Registrar {
  Registrar(const char* family, BindFn fn) { registry().emplace_back(family, fn); }
};

// C-contiguous array of T. fastnn/ops casts to the compute dtype first, so no copy happens here.
// Without forcecast a float64 array can never be narrowed into the float32 overload.
template <typename T>
using Array = py::array_t<T, py::array::c_style>;

// "an array of dtype float64" or the type name of a non-array, for messages.
inline std::string describe(const py::handle& a) {
  if (py::isinstance<py::array>(a))
    return "an array of dtype " +
           py::str(py::reinterpret_borrow<py::array>(a).dtype()).cast<std::string>();
  return py::str(py::type::handle_of(a).attr("__name__")).cast<std::string>();
}

// An array a kernel updates in place, given by the caller: it must be exactly an array the
// kernel can write (dtype T, C-contiguous, writeable). py::array_t<T> converts anything else
// into a temporary copy, so the update was lost without a word; here it is refused instead:
// TypeError for something that is not a NumPy array of dtype T, ValueError for a strided or
// read-only one. `dtype_of` names where T comes from (e.g. "the parameter's").
template <typename T>
Array<T> inplace(const py::handle& a, const std::string& op, const char* name,
                 const char* dtype_of) {
  if (!Array<T>::check_(a)) {
    const std::string what = op + ": " + name + " is updated in place and must be ";
    if (!py::array_t<T>::check_(a))
      throw py::type_error(what + "a NumPy array of " + dtype_of + " dtype " +
                           py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                           describe(a));
    throw std::invalid_argument(what + "C-contiguous, got a non-contiguous array");
  }
  auto arr = py::reinterpret_borrow<Array<T>>(a);
  FASTNN_CHECK(arr.writeable(), op, ": ", name, " is read-only");
  return arr;
}

// The float type (float or double) of `a`, an array updated in place; TypeError otherwise.
inline bool inplace_is_double(const py::handle& a, const std::string& op, const char* name) {
  if (py::array_t<double>::check_(a)) return true;
  if (py::array_t<float>::check_(a)) return false;
  throw py::type_error(op + ": " + name + " is updated in place and must be a float32 or " +
                       "float64 NumPy array, got " + describe(a));
}

// `a` read as a C-contiguous array of T, converted only where NumPy casts safely (ints to
// float64, float32 to float64); TypeError naming `name` and `to` otherwise.
template <typename T>
Array<T> input_as(const py::handle& a, const std::string& op, const char* name, const char* to) {
  auto arr = Array<T>::ensure(a);
  if (!arr)
    throw py::type_error(op + ": " + name + " cannot be cast safely to " + to + " dtype " +
                         py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                         describe(a));
  return arr;
}

inline std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

// A new C-contiguous array. Large ones take their memory from core/buffers.h and give it back
// when NumPy frees them; sizes the cache cannot serve go to NumPy, whose MemoryError names the
// size and shape.
template <typename T>
Array<T> empty(const std::vector<int64_t>& shape) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  std::size_t bytes = sizeof(T);
  bool overflow = false;
  for (auto d : dims) overflow |= d < 0 || __builtin_mul_overflow(bytes, std::size_t(d), &bytes);
  void* data = !overflow && bytes >= buffers::kMinBytes ? buffers::acquire(bytes) : nullptr;
  if (!data) return Array<T>(dims);
  py::capsule owner(data, [](void* p) { buffers::release(p); });
  return Array<T>(dims, static_cast<T*>(data), owner);
}

}  // namespace fastnn::bind
