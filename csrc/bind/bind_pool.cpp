#include <limits>

#include "bind/registry.h"
#include "bind/window.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

using IndexArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

// Shape checks of a pooling backward: dout (and arg) must be the forward output's shape.
ConvShape pool_backward_shape(const char* op, const py::array& dout,
                                   const std::vector<int64_t>& x_shape, int64_t FH, int64_t FW,
                                   int64_t stride, int64_t pad) {
  FASTNN_CHECK(x_shape.size() == 4, op, ": x_shape must be (N, C, H, W), got ",
               shape_str(x_shape));
  const auto& in = x_shape;
  const auto s = checked_window(op, in[0], in[1], in[2], in[3], FH, FW, stride, pad);
  const std::vector<int64_t> expect{s.N, s.C, s.OH, s.OW};
  FASTNN_CHECK(shape_of(dout) == expect, op, ": dout has shape ", shape_str(shape_of(dout)),
               " but the forward output had shape ", shape_str(expect));
  return s;
}

template <typename T>
py::tuple maxpool2d_forward(Array<T> x, int64_t FH, int64_t FW, int64_t stride, int64_t pad) {
  const auto s = checked_window("Pooling", x, FH, FW, stride, pad);
  FASTNN_CHECK(s.FH * s.FW <= std::numeric_limits<int32_t>::max(), "Pooling: a ", s.FH, "x",
               s.FW, " window has more cells than its int32 argmax can index");
  auto out = empty<T>({s.N, s.C, s.OH, s.OW});
  auto arg = empty<int32_t>({s.N, s.C, s.OH, s.OW});
  {
    py::gil_scoped_release nogil;
    cpu::maxpool2d_forward<T>(x.data(), out.mutable_data(), arg.mutable_data(), s);
  }
  return py::make_tuple(out, arg);
}

template <typename T>
Array<T> maxpool2d_backward(Array<T> dout, IndexArray arg, std::vector<int64_t> x_shape,
                            int64_t FH, int64_t FW, int64_t stride, int64_t pad) {
  const auto s = pool_backward_shape("Pooling.backward", dout, x_shape, FH, FW, stride, pad);
  FASTNN_CHECK(shape_of(arg) == shape_of(dout), "Pooling.backward: arg has shape ",
               shape_str(shape_of(arg)), " but dout has shape ", shape_str(shape_of(dout)));
  auto dx = empty<T>(x_shape);
  py::gil_scoped_release nogil;
  cpu::maxpool2d_backward<T>(dout.data(), arg.data(), dx.mutable_data(), s);
  return dx;
}

template <typename T>
Array<T> avgpool2d_forward(Array<T> x, int64_t FH, int64_t FW, int64_t stride, int64_t pad) {
  const auto s = checked_window("AvgPooling", x, FH, FW, stride, pad);
  auto out = empty<T>({s.N, s.C, s.OH, s.OW});
  py::gil_scoped_release nogil;
  cpu::avgpool2d_forward<T>(x.data(), out.mutable_data(), s);
  return out;
}

template <typename T>
Array<T> avgpool2d_backward(Array<T> dout, std::vector<int64_t> x_shape, int64_t FH, int64_t FW,
                            int64_t stride, int64_t pad) {
  const auto s = pool_backward_shape("AvgPooling.backward", dout, x_shape, FH, FW, stride, pad);
  auto dx = empty<T>(x_shape);
  py::gil_scoped_release nogil;
  cpu::avgpool2d_backward<T>(dout.data(), dx.mutable_data(), s);
  return dx;
}

template <typename T>
void define(py::module_& m) {
  m.def("maxpool2d_forward", &maxpool2d_forward<T>, py::arg("x"), py::arg("FH"), py::arg("FW"),
        py::arg("stride"), py::arg("pad"));
  m.def("maxpool2d_backward", &maxpool2d_backward<T>, py::arg("dout"), py::arg("arg"),
        py::arg("x_shape"), py::arg("FH"), py::arg("FW"), py::arg("stride"), py::arg("pad"));
  m.def("avgpool2d_forward", &avgpool2d_forward<T>, py::arg("x"), py::arg("FH"), py::arg("FW"),
        py::arg("stride"), py::arg("pad"));
  m.def("avgpool2d_backward", &avgpool2d_backward<T>, py::arg("dout"), py::arg("x_shape"),
        py::arg("FH"), py::arg("FW"), py::arg("stride"), py::arg("pad"));
}

void bind_pool(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("pool", &bind_pool);

}  // namespace
}  // namespace fastnn::bind
