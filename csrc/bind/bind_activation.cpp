#include "bind/registry.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

template <typename T>
py::tuple relu_forward(Array<T> x) {
  auto y = empty<T>(shape_of(x));
  py::array_t<bool> mask(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  {
    py::gil_scoped_release nogil;
    cpu::relu_forward<T>(x.data(), y.mutable_data(), mask.mutable_data(), x.size());
  }
  return py::make_tuple(y, mask);
}

// Writes into dx (which may be dout itself, as the book's Relu.backward does). dx must be
// exactly a C-contiguous writeable float32/float64 array (bind/registry.h inplace); dout is
// read as dx's dtype.
template <typename T>
void relu_backward_t(const py::handle& dout_, py::array_t<bool, py::array::c_style> mask,
                     const py::handle& dx_) {
  auto dx = inplace<T>(dx_, "relu_backward", "dx", "its");
  auto dout = input_as<T>(dout_, "relu_backward", "dout", "dx's");
  FASTNN_CHECK(dout.size() == mask.size() && dx.size() == dout.size(),
               "Relu.backward: dout has shape ", shape_str(shape_of(dout)),
               " but the forward input had shape ", shape_str(shape_of(mask)));
  py::gil_scoped_release nogil;
  cpu::relu_backward<T>(dout.data(), mask.data(), dx.mutable_data(), dout.size());
}

void relu_backward(py::object dout, py::array_t<bool, py::array::c_style> mask, py::object dx) {
  if (inplace_is_double(dx, "relu_backward", "dx"))
    relu_backward_t<double>(dout, mask, dx);
  else
    relu_backward_t<float>(dout, mask, dx);
}

template <typename T, void (*Fwd)(const T*, T*, int64_t)>
Array<T> unary_forward(Array<T> x) {
  auto y = empty<T>(shape_of(x));
  py::gil_scoped_release nogil;
  Fwd(x.data(), y.mutable_data(), x.size());
  return y;
}

// The backward of an activation from what its forward kept: the output y (sigmoid, tanh,
// ReLU6) or, with FromInput, the input x (SiLU).
template <typename T, void (*Bwd)(const T*, const T*, T*, int64_t), bool FromInput = false>
Array<T> unary_backward(Array<T> dout, Array<T> kept, const char* layer) {
  FASTNN_CHECK(dout.size() == kept.size(), layer, ".backward: dout has shape ",
               shape_str(shape_of(dout)), " but the forward ", FromInput ? "input" : "output",
               " had shape ", shape_str(shape_of(kept)));
  auto dx = empty<T>(shape_of(kept));
  py::gil_scoped_release nogil;
  Bwd(dout.data(), kept.data(), dx.mutable_data(), kept.size());
  return dx;
}

template <typename T>
void define(py::module_& m) {
  m.def("relu_forward", &relu_forward<T>, py::arg("x"));
  m.def("sigmoid_forward", &unary_forward<T, cpu::sigmoid_forward<T>>, py::arg("x"));
  m.def("sigmoid_backward", &unary_backward<T, cpu::sigmoid_backward<T>>, py::arg("dout"),
        py::arg("y"), py::arg("layer") = "Sigmoid");
  m.def("tanh_forward", &unary_forward<T, cpu::tanh_forward<T>>, py::arg("x"));
  m.def("tanh_backward", &unary_backward<T, cpu::tanh_backward<T>>, py::arg("dout"),
        py::arg("y"), py::arg("layer") = "Tanh");
  m.def("relu6_forward", &unary_forward<T, cpu::relu6_forward<T>>, py::arg("x"));
  m.def("relu6_backward", &unary_backward<T, cpu::relu6_backward<T>>, py::arg("dout"),
        py::arg("y"), py::arg("layer") = "ReLU6");
  m.def("silu_forward", &unary_forward<T, cpu::silu_forward<T>>, py::arg("x"));
  m.def("silu_backward", &unary_backward<T, cpu::silu_backward<T>, true>, py::arg("dout"),
        py::arg("x"), py::arg("layer") = "SiLU");
}

void bind_activation(py::module_& m) {
  define<float>(m);
  define<double>(m);
  m.def("relu_backward", &relu_backward, py::arg("dout"), py::arg("mask"), py::arg("dx"));
}

Registrar reg("activation", &bind_activation);

}  // namespace
}  // namespace fastnn::bind
