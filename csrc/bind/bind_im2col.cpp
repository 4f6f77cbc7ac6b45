#include "bind/registry.h"
#include "bind/window.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

template <typename T>
Array<T> im2col(Array<T> x, int64_t FH, int64_t FW, int64_t stride, int64_t pad) {
  const auto s = checked_window("im2col", x, FH, FW, stride, pad);
  auto col = empty<T>({s.rows(), s.cols()});
  py::gil_scoped_release nogil;
  cpu::im2col<T>(x.data(), col.mutable_data(), s);
  return col;
}

template <typename T>
Array<T> col2im(Array<T> col, std::vector<int64_t> input_shape, int64_t FH, int64_t FW,
                int64_t stride, int64_t pad) {
  FASTNN_CHECK(input_shape.size() == 4, "col2im: input_shape must be (N, C, H, W), got ",
               shape_str(input_shape));
  const auto& in = input_shape;
  const auto s = checked_window("col2im", in[0], in[1], in[2], in[3], FH, FW, stride, pad);
  FASTNN_CHECK(col.ndim() == 2 && col.shape(0) == s.rows() && col.shape(1) == s.cols(),
               "col2im: col has shape ", shape_str(shape_of(col)), " but input_shape ",
               shape_str(in), " needs (", s.rows(), ", ", s.cols(), ")");
  auto x = empty<T>(in);
  py::gil_scoped_release nogil;
  cpu::col2im<T>(col.data(), x.mutable_data(), s);
  return x;
}

template <typename T>
void define(py::module_& m) {
  m.def("im2col", &im2col<T>, py::arg("x"), py::arg("FH"), py::arg("FW"), py::arg("stride"),
        py::arg("pad"));
  m.def("col2im", &col2im<T>, py::arg("col"), py::arg("input_shape"), py::arg("FH"),
        py::arg("FW"), py::arg("stride"), py::arg("pad"));
}

void bind_im2col(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("im2col", &bind_im2col);

}  // namespace
}  // namespace fastnn::bind
