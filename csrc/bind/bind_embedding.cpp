#include "bind/registry.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

// Word ids as fastnn/ops passes them: C-contiguous int64 of any shape.
using Ids = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// Every id must name a row of W: IndexError otherwise (a read or write out of bounds).
void check_ids(const Ids& idx, int64_t V, const std::string& layer) {
  const int64_t* p = idx.data();
  for (int64_t i = 0; i < idx.size(); ++i)
    FASTNN_CHECK_INDEX(p[i] >= 0 && p[i] < V, layer, ": index ", p[i],
                       " is out of bounds for W with ", V, " rows (word ids must lie in [0, ",
                       V, "); found at flat position ", i, " of idx.shape=",
                       shape_str(shape_of(idx)), ")");
}

template <typename T>
void check_W(const Array<T>& W, const std::string& layer) {
  FASTNN_CHECK(W.ndim() == 2, layer, ": W must be 2-D (V, D), got W.shape=",
               shape_str(shape_of(W)));
}

// out = W[idx], of shape idx.shape + (D,).
template <typename T>
Array<T> embedding_forward(Array<T> W, Ids idx, const std::string& layer) {
  check_W(W, layer);
  const int64_t V = W.shape(0), D = W.shape(1);
  check_ids(idx, V, layer);
  std::vector<int64_t> shape = shape_of(idx);
  shape.push_back(D);
  auto out = empty<T>(shape);
  py::gil_scoped_release nogil;
  cpu::embedding_forward<T>(W.data(), idx.data(), out.mutable_data(), idx.size(), D);
  return out;
}

// dW[...] = 0; np.add.at(dW, idx, dout), dW updated in place (the layer's grads array).
template <typename T>
void embedding_backward_t(const py::handle& dW_, const Ids& idx, const py::handle& dout_,
                          const std::string& layer) {
  auto dW = inplace<T>(dW_, layer + ".backward", "dW", "W's");
  FASTNN_CHECK(dW.ndim() == 2, layer, ".backward: dW must be 2-D (V, D), got dW.shape=",
               shape_str(shape_of(dW)));
  const int64_t V = dW.shape(0), D = dW.shape(1);
  auto dout = input_as<T>(dout_, layer + ".backward", "dout", "dW's");
  std::vector<int64_t> expected = shape_of(idx);
  expected.push_back(D);
  FASTNN_CHECK(shape_of(dout) == expected, layer, ".backward: dout.shape=",
               shape_str(shape_of(dout)), " but the forward output had shape ",
               shape_str(expected));
  check_ids(idx, V, layer);
  py::gil_scoped_release nogil;
  cpu::embedding_backward<T>(idx.data(), dout.data(), dW.mutable_data(), idx.size(), V, D);
}

void embedding_backward(const py::handle& dW, Ids idx, const py::handle& dout,
                        const std::string& layer) {
  if (inplace_is_double(dW, layer + ".backward", "dW"))
    embedding_backward_t<double>(dW, idx, dout, layer);
  else
    embedding_backward_t<float>(dW, idx, dout, layer);
}

// EmbeddingDot: idx (N,) and h (N, D).
template <typename T>
void check_dot(const Array<T>& h, const Ids& idx, int64_t D, const std::string& layer) {
  FASTNN_CHECK(idx.ndim() == 1 && h.ndim() == 2 && h.shape(0) == idx.shape(0) &&
                   h.shape(1) == D,
               layer, ": expected idx (N,) and h (N, ", D, "), got idx.shape=",
               shape_str(shape_of(idx)), ", h.shape=", shape_str(shape_of(h)));
}

// out[i] = sum(W[idx[i]] * h[i]).
template <typename T>
Array<T> embedding_dot_forward(Array<T> W, Ids idx, Array<T> h, const std::string& layer) {
  check_W(W, layer);
  const int64_t V = W.shape(0), D = W.shape(1);
  check_dot(h, idx, D, layer);
  check_ids(idx, V, layer);
  const int64_t N = idx.shape(0);
  auto out = empty<T>({N});
  py::gil_scoped_release nogil;
  cpu::embedding_dot_forward<T>(W.data(), idx.data(), h.data(), out.mutable_data(), N, D);
  return out;
}

// dW (in place) = 0, then the scatter-add of dout[:, None] * h at idx; returns dh.
template <typename T>
Array<T> embedding_dot_backward(Array<T> W, py::object dW_, Ids idx, Array<T> h, Array<T> dout,
                                const std::string& layer) {
  check_W(W, layer);
  const int64_t V = W.shape(0), D = W.shape(1);
  auto dW = inplace<T>(dW_, layer + ".backward", "dW", "W's");
  FASTNN_CHECK(shape_of(dW) == shape_of(W), layer, ".backward: dW.shape=",
               shape_str(shape_of(dW)), " differs from W.shape=", shape_str(shape_of(W)));
  check_dot(h, idx, D, layer);
  const int64_t N = idx.shape(0);
  FASTNN_CHECK(dout.ndim() == 1 && dout.shape(0) == N, layer,
               ".backward: dout must have shape (", N, ",), got dout.shape=",
               shape_str(shape_of(dout)));
  check_ids(idx, V, layer);
  auto dh = empty<T>({N, D});
  py::gil_scoped_release nogil;
  cpu::embedding_dot_backward<T>(W.data(), idx.data(), h.data(), dout.data(), dW.mutable_data(),
                                 dh.mutable_data(), N, V, D);
  return dh;
}

template <typename T>
void define(py::module_& m) {
  m.def("embedding_forward", &embedding_forward<T>, py::arg("W"), py::arg("idx"),
        py::arg("layer"));
  m.def("embedding_dot_forward", &embedding_dot_forward<T>, py::arg("W"), py::arg("idx"),
        py::arg("h"), py::arg("layer"));
  m.def("embedding_dot_backward", &embedding_dot_backward<T>, py::arg("W"), py::arg("dW"),
        py::arg("idx"), py::arg("h"), py::arg("dout"), py::arg("layer"));
}

void bind_embedding(py::module_& m) {
  define<float>(m);
  define<double>(m);
  m.def("embedding_backward", &embedding_backward, py::arg("dW"), py::arg("idx"),
        py::arg("dout"), py::arg("layer"));
}

Registrar reg("embedding", &bind_embedding);

}  // namespace
}  // namespace fastnn::bind
