#include <pybind11/stl.h>

#include <optional>

#include "bind/registry.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

using Labels = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// Softmax over the last axis of x (any ndim >= 1).
template <typename T>
Array<T> softmax_forward(Array<T> x) {
  FASTNN_CHECK(x.ndim() >= 1, "softmax: x must have at least one dimension");
  const int64_t C = x.shape(x.ndim() - 1);
  const int64_t rows = C == 0 ? 0 : x.size() / C;
  auto y = empty<T>(shape_of(x));
  py::gil_scoped_release nogil;
  cpu::softmax_forward<T>(x.data(), y.mutable_data(), rows, C);
  return y;
}

// Labels must name a class (0 <= t < C) unless they equal ignore_label.
void check_labels(const Labels& t, int64_t N, int64_t C, std::optional<int64_t> ignore_label,
                  const std::string& layer) {
  FASTNN_CHECK(t.ndim() == 1 && t.shape(0) == N, layer, ": got ", t.size(),
               " labels for a batch of ", N, " (t.shape=", shape_str(shape_of(t)), ")");
  const int64_t* p = t.data();
  for (int64_t i = 0; i < N; ++i) {
    if (ignore_label && p[i] == *ignore_label) continue;
    FASTNN_CHECK_INDEX(p[i] >= 0 && p[i] < C, layer, ": label ", p[i], " (at index ", i,
                       ") is out of range for ", C, " classes");
  }
}

// Returns (y, loss_sum, count): y = softmax(x), loss_sum = sum of -log(y[i, t[i]] + eps) over
// the rows not ignored, count = how many rows that is.
template <typename T>
py::tuple softmax_cross_entropy_forward(Array<T> x, Labels t, double eps,
                                        std::optional<int64_t> ignore_label,
                                        const std::string& layer) {
  FASTNN_CHECK(x.ndim() == 2, layer, ": expected x of shape (N, C), got x.shape=",
               shape_str(shape_of(x)));
  const int64_t N = x.shape(0), C = x.shape(1);
  check_labels(t, N, C, ignore_label, layer);
  auto y = empty<T>({N, C});
  double loss;
  int64_t count;
  {
    py::gil_scoped_release nogil;
    loss = cpu::softmax_cross_entropy_forward<T>(x.data(), t.data(), y.mutable_data(), N, C, eps,
                                              ignore_label.has_value(),
                                              ignore_label.value_or(0), &count);
  }
  return py::make_tuple(y, loss, count);
}

// dx = (y - onehot(t)) * scale (0 on ignored rows), written into out when given (it may be y).
// out must be exactly a C-contiguous writeable array of y's dtype (bind/registry.h inplace).
template <typename T>
Array<T> softmax_cross_entropy_backward(Array<T> y, Labels t, double scale,
                                        std::optional<int64_t> ignore_label, py::object out,
                                        const std::string& layer) {
  FASTNN_CHECK(y.ndim() == 2, layer, ".backward: expected y of shape (N, C), got y.shape=",
               shape_str(shape_of(y)));
  const int64_t N = y.shape(0), C = y.shape(1);
  check_labels(t, N, C, ignore_label, layer);
  Array<T> dx = out.is_none() ? empty<T>({N, C})
                               : inplace<T>(out, layer + ".backward", "out", "y's");
  FASTNN_CHECK(shape_of(dx) == shape_of(y), layer, ".backward: out.shape=",
               shape_str(shape_of(dx)), " differs from y.shape=", shape_str(shape_of(y)));
  py::gil_scoped_release nogil;
  cpu::softmax_cross_entropy_backward<T>(y.data(), t.data(), dx.mutable_data(), N, C, scale,
                                      ignore_label.has_value(), ignore_label.value_or(0));
  return dx;
}

// dx = (y - t) * scale for dense targets t of y's shape.
template <typename T>
Array<T> softmax_cross_entropy_backward_dense(Array<T> y, Array<T> t, double scale,
                                              const std::string& layer) {
  FASTNN_CHECK(shape_of(y) == shape_of(t), layer, ".backward: t.shape=", shape_str(shape_of(t)),
               " differs from y.shape=", shape_str(shape_of(y)));
  auto dx = empty<T>(shape_of(y));
  py::gil_scoped_release nogil;
  cpu::softmax_cross_entropy_backward_dense<T>(y.data(), t.data(), dx.mutable_data(), y.size(),
                                            scale);
  return dx;
}

template <typename T>
void define(py::module_& m) {
  m.def("softmax_forward", &softmax_forward<T>, py::arg("x"));
  m.def("softmax_cross_entropy_forward", &softmax_cross_entropy_forward<T>, py::arg("x"),
        py::arg("t"), py::arg("eps"), py::arg("ignore_label"), py::arg("layer"));
  m.def("softmax_cross_entropy_backward", &softmax_cross_entropy_backward<T>, py::arg("y"),
        py::arg("t"), py::arg("scale"), py::arg("ignore_label"), py::arg("out"),
        py::arg("layer"));
  m.def("softmax_cross_entropy_backward_dense", &softmax_cross_entropy_backward_dense<T>,
        py::arg("y"), py::arg("t"), py::arg("scale"), py::arg("layer"));
}

void bind_softmax(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("softmax", &bind_softmax);

}  // namespace
}  // namespace fastnn::bind
