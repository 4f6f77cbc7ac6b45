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

// C-contiguous array of T. _ops.py casts to the compute dtype first, so no copy happens here.
// Without forcecast a float64 array can never be narrowed into the float32 overload.
template <typename T>
using Array = py::array_t<T, py::array::c_style>;

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
