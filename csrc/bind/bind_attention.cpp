#include <pybind11/stl.h>

#include "bind/registry.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

// hs_enc (N, Te, H), hs_dec (N, Td, H); the user-facing shape checks are in fastnn/ops/meta.py, these
// guard memory.
template <typename T>
void check_pair(const Array<T>& enc, const Array<T>& dec) {
  FASTNN_CHECK(enc.ndim() == 3 && dec.ndim() == 3 && enc.shape(0) == dec.shape(0) &&
                   enc.shape(2) == dec.shape(2),
               "attention: expected hs_enc (N, Te, H) and hs_dec (N, Td, H), got hs_enc.shape=",
               shape_str(shape_of(enc)), ", hs_dec.shape=", shape_str(shape_of(dec)));
}

template <typename T>
py::tuple attention_forward(Array<T> hs_enc, Array<T> hs_dec) {
  check_pair(hs_enc, hs_dec);
  const int64_t N = hs_enc.shape(0), Te = hs_enc.shape(1), H = hs_enc.shape(2);
  const int64_t Td = hs_dec.shape(1);
  auto out = empty<T>({N, Td, H});
  auto a = empty<T>({N, Td, Te});
  {
    py::gil_scoped_release nogil;
    cpu::attention_forward<T>(hs_enc.data(), hs_dec.data(), out.mutable_data(),
                              a.mutable_data(), N, Te, Td, H);
  }
  return py::make_tuple(out, a);
}

template <typename T>
py::tuple attention_backward(Array<T> hs_enc, Array<T> hs_dec, Array<T> a, Array<T> dout) {
  check_pair(hs_enc, hs_dec);
  const int64_t N = hs_enc.shape(0), Te = hs_enc.shape(1), H = hs_enc.shape(2);
  const int64_t Td = hs_dec.shape(1);
  FASTNN_CHECK(shape_of(a) == std::vector<int64_t>({N, Td, Te}) && shape_of(dout) == shape_of(hs_dec),
               "attention.backward: a.shape=", shape_str(shape_of(a)), ", dout.shape=",
               shape_str(shape_of(dout)), " do not match hs_enc.shape=",
               shape_str(shape_of(hs_enc)), ", hs_dec.shape=", shape_str(shape_of(hs_dec)));
  auto dhs_enc = empty<T>({N, Te, H});
  auto dhs_dec = empty<T>({N, Td, H});
  {
    py::gil_scoped_release nogil;
    cpu::attention_backward<T>(hs_enc.data(), hs_dec.data(), a.data(), dout.data(),
                               dhs_enc.mutable_data(), dhs_dec.mutable_data(), N, Te, Td, H);
  }
  return py::make_tuple(dhs_enc, dhs_dec);
}

template <typename T>
void define(py::module_& m) {
  m.def("attention_forward", &attention_forward<T>, py::arg("hs_enc"), py::arg("hs_dec"));
  m.def("attention_backward", &attention_backward<T>, py::arg("hs_enc"), py::arg("hs_dec"),
        py::arg("a"), py::arg("dout"));
}

void bind_attention(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("attention", &bind_attention);

}  // namespace
}  // namespace fastnn::bind
