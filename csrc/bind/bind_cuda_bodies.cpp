// Test-only: runs the CUDA kernels' per-element bodies (csrc/cuda/body) in plain CPU loops,
// in the exact decomposition the .cu kernels use, so tests/test_cuda_bodies.py can compare
// them with fastnn.reference on machines without a GPU. Not a public API (names start with
// _body_). GEMMs, done by cuBLAS on the GPU, are left to the test (NumPy).
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "bind/registry.h"
#include "cuda/body/activation.h"
#include "cuda/body/affine.h"
#include "cuda/body/batchnorm.h"
#include "cuda/body/im2col.h"
#include "cuda/body/optim.h"
#include "cuda/body/pool.h"
#include "cuda/body/softmax.h"

namespace fastnn::bind {
namespace {

using Bools = py::array_t<bool, py::array::c_style>;
using Ints = py::array_t<int32_t, py::array::c_style>;
using Labels = py::array_t<int64_t, py::array::c_style>;

// Threads per block of the column reductions in csrc/cuda (the CPU loop mimics the split).
constexpr int64_t kReduceThreads = 256;

// Column sums as the GPU computes them: kReduceThreads strided partial sums, then combined.
template <typename Acc, typename F>
std::vector<Acc> column_sums(const F& f, int64_t rows, int64_t cols) {
  std::vector<Acc> out(cols);
  for (int64_t j = 0; j < cols; ++j) {
    Acc s = Acc(0);
    for (int64_t t = 0; t < kReduceThreads; ++t)
      s += body::column_partial<Acc>(f, rows, j, t, kReduceThreads);
    out[j] = s;
  }
  return out;
}

body::Window window(const std::vector<int64_t>& x_shape, int64_t FH, int64_t FW, int64_t stride,
                    int64_t pad) {
  FASTNN_CHECK(x_shape.size() == 4 && FH >= 1 && FW >= 1 && stride >= 1 && pad >= 0 &&
                   FH <= x_shape[2] + 2 * pad && FW <= x_shape[3] + 2 * pad,
               "bad window for ", shape_str(x_shape));
  return body::make_window(x_shape[0], x_shape[1], x_shape[2], x_shape[3], FH, FW, stride, pad);
}

template <typename T>
py::tuple relu_forward(Array<T> x) {
  auto y = empty<T>(shape_of(x));
  Bools mask(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  for (int64_t i = 0; i < x.size(); ++i)
    body::relu_forward(x.data(), y.mutable_data(), mask.mutable_data(), i);
  return py::make_tuple(y, mask);
}

template <typename T>
Array<T> relu_backward(Array<T> dout, Bools mask) {
  FASTNN_CHECK(dout.size() == mask.size(), "size mismatch");
  auto dx = empty<T>(shape_of(dout));
  for (int64_t i = 0; i < dout.size(); ++i)
    body::relu_backward(dout.data(), mask.data(), dx.mutable_data(), i);
  return dx;
}

template <typename T, void (*F)(const T*, T*, int64_t)>
Array<T> unary(Array<T> x) {
  auto y = empty<T>(shape_of(x));
  for (int64_t i = 0; i < x.size(); ++i) F(x.data(), y.mutable_data(), i);
  return y;
}

template <typename T, void (*F)(const T*, const T*, T*, int64_t)>
Array<T> binary(Array<T> dout, Array<T> y) {
  FASTNN_CHECK(dout.size() == y.size(), "size mismatch");
  auto dx = empty<T>(shape_of(y));
  for (int64_t i = 0; i < y.size(); ++i) F(dout.data(), y.data(), dx.mutable_data(), i);
  return dx;
}

template <typename T>
Array<T> im2col(Array<T> x, int64_t FH, int64_t FW, int64_t stride, int64_t pad) {
  const auto s = window(shape_of(x), FH, FW, stride, pad);
  auto col = empty<T>({s.N * s.OH * s.OW, s.C * FH * FW});
  for (int64_t i = 0; i < col.size(); ++i)
    col.mutable_data()[i] = body::im2col_element(x.data(), s, i);
  return col;
}

template <typename T>
Array<T> col2im(Array<T> col, std::vector<int64_t> shape, int64_t FH, int64_t FW, int64_t stride,
                int64_t pad) {
  const auto s = window(shape, FH, FW, stride, pad);
  FASTNN_CHECK(col.ndim() == 2 && col.shape(0) == s.N * s.OH * s.OW &&
                   col.shape(1) == s.C * FH * FW, "col shape mismatch");
  auto x = empty<T>(shape);
  for (int64_t i = 0; i < x.size(); ++i)
    x.mutable_data()[i] = body::col2im_element(col.data(), s, i);
  return x;
}

template <typename T>
Array<T> conv_out(Array<T> rows, std::optional<Array<T>> b, int64_t N, int64_t OH, int64_t OW) {
  FASTNN_CHECK(rows.ndim() == 2 && rows.shape(0) == N * OH * OW, "rows shape mismatch");
  const int64_t FN = rows.shape(1);
  FASTNN_CHECK(!b || b->size() == FN, "b size mismatch");
  auto out = empty<T>({N, FN, OH, OW});
  const T* bp = b ? b->data() : nullptr;
  for (int64_t i = 0; i < out.size(); ++i)
    out.mutable_data()[i] = body::conv_out_element(rows.data(), bp, FN, OH * OW, i);
  return out;
}

template <typename T>
Array<T> conv_dout_rows(Array<T> dout) {
  FASTNN_CHECK(dout.ndim() == 4, "dout must be 4-D");
  const int64_t N = dout.shape(0), FN = dout.shape(1), P = dout.shape(2) * dout.shape(3);
  auto rows = empty<T>({N * P, FN});
  for (int64_t i = 0; i < rows.size(); ++i)
    rows.mutable_data()[i] = body::conv_dout_row_element(dout.data(), FN, P, i);
  return rows;
}

template <typename T>
py::tuple maxpool_forward(Array<T> x, int64_t FH, int64_t FW, int64_t stride, int64_t pad) {
  const auto s = window(shape_of(x), FH, FW, stride, pad);
  auto out = empty<T>({s.N, s.C, s.OH, s.OW});
  Ints arg(std::vector<py::ssize_t>{s.N, s.C, s.OH, s.OW});
  for (int64_t o = 0; o < out.size(); ++o)
    body::maxpool_forward_element(x.data(), out.mutable_data(), arg.mutable_data(), s, o);
  return py::make_tuple(out, arg);
}

template <typename T>
Array<T> maxpool_backward(Array<T> dout, Ints arg, std::vector<int64_t> shape, int64_t FH,
                          int64_t FW, int64_t stride, int64_t pad) {
  const auto s = window(shape, FH, FW, stride, pad);
  FASTNN_CHECK(dout.size() == s.N * s.C * s.OH * s.OW && arg.size() == dout.size(),
               "dout/arg size mismatch");
  auto dx = empty<T>(shape);
  for (int64_t i = 0; i < dx.size(); ++i)
    dx.mutable_data()[i] = body::maxpool_backward_element(dout.data(), arg.data(), s, i);
  return dx;
}

template <typename T>
Array<T> avgpool_forward(Array<T> x, int64_t FH, int64_t FW, int64_t stride, int64_t pad) {
  const auto s = window(shape_of(x), FH, FW, stride, pad);
  auto out = empty<T>({s.N, s.C, s.OH, s.OW});
  for (int64_t o = 0; o < out.size(); ++o)
    out.mutable_data()[o] = body::avgpool_forward_element(x.data(), s, o);
  return out;
}

template <typename T>
Array<T> avgpool_backward(Array<T> dout, std::vector<int64_t> shape, int64_t FH, int64_t FW,
                          int64_t stride, int64_t pad) {
  const auto s = window(shape, FH, FW, stride, pad);
  FASTNN_CHECK(dout.size() == s.N * s.C * s.OH * s.OW, "dout size mismatch");
  auto dx = empty<T>(shape);
  for (int64_t i = 0; i < dx.size(); ++i)
    dx.mutable_data()[i] = body::avgpool_backward_element(dout.data(), s, i);
  return dx;
}

// rows (N, M) + b (M,), through the bias body.
template <typename T>
Array<T> bias_add(Array<T> rows, Array<T> b) {
  FASTNN_CHECK(rows.ndim() == 2 && b.size() == rows.shape(1), "shape mismatch");
  Array<T> out = py::array(rows).attr("copy")();
  for (int64_t i = 0; i < out.size(); ++i)
    body::bias_add_element(out.mutable_data(), b.data(), rows.shape(1), i);
  return out;
}

template <typename T>
Array<T> column_sum(Array<T> a) {
  FASTNN_CHECK(a.ndim() == 2, "a must be 2-D");
  const auto s = column_sums<T>(body::Elem<T>{a.data(), a.shape(1)}, a.shape(0), a.shape(1));
  auto out = empty<T>({a.shape(1)});
  std::copy(s.begin(), s.end(), out.mutable_data());
  return out;
}

template <typename T>
Array<T> softmax(Array<T> x) {
  FASTNN_CHECK(x.ndim() == 2, "x must be 2-D");
  auto y = empty<T>(shape_of(x));
  for (int64_t i = 0; i < x.shape(0); ++i)
    body::softmax_row(x.data(), y.mutable_data(), x.shape(1), i);
  return y;
}

// (y, per-row losses); the GPU path sums the row losses on the device.
template <typename T>
py::tuple softmax_ce_forward(Array<T> x, Labels t, double eps, std::optional<int64_t> ignore) {
  FASTNN_CHECK(x.ndim() == 2 && t.size() == x.shape(0), "shape mismatch");
  const int64_t N = x.shape(0), C = x.shape(1);
  auto y = empty<T>(shape_of(x));
  auto loss = empty<T>({N});
  for (int64_t i = 0; i < N; ++i) {
    body::softmax_row(x.data(), y.mutable_data(), C, i);
    loss.mutable_data()[i] = body::cross_entropy_row(y.data(), t.data(), C, static_cast<T>(eps),
                                                     ignore.has_value(), ignore.value_or(0), i);
  }
  return py::make_tuple(y, loss);
}

template <typename T>
Array<T> softmax_ce_backward(Array<T> y, Labels t, double scale, std::optional<int64_t> ignore) {
  FASTNN_CHECK(y.ndim() == 2 && t.size() == y.shape(0), "shape mismatch");
  auto dx = empty<T>(shape_of(y));
  for (int64_t i = 0; i < y.size(); ++i)
    dx.mutable_data()[i] = body::softmax_ce_backward_element(
        y.data(), t.data(), y.shape(1), static_cast<T>(scale), ignore.has_value(),
        ignore.value_or(0), i);
  return dx;
}

template <typename T>
Array<T> softmax_ce_backward_dense(Array<T> y, Array<T> t, double scale) {
  FASTNN_CHECK(y.size() == t.size(), "shape mismatch");
  auto dx = empty<T>(shape_of(y));
  for (int64_t i = 0; i < y.size(); ++i)
    dx.mutable_data()[i] =
        body::softmax_ce_backward_dense_element(y.data(), t.data(), static_cast<T>(scale), i);
  return dx;
}

// In-place update of p and its state arrays (copies made by the test) by one optimizer body.
template <typename T>
void optim(const std::string& name, Array<T> p, std::vector<Array<T>> state, Array<T> g,
           std::vector<double> hyper) {
  const int64_t n = p.size();
  FASTNN_CHECK(g.size() == n, "g size mismatch");
  for (auto& s : state) FASTNN_CHECK(s.size() == n, "state size mismatch");
  auto h = [&](size_t k) {
    FASTNN_CHECK(k < hyper.size(), name, ": missing hyper-parameter");
    return static_cast<T>(hyper[k]);
  };
  auto st = [&](size_t k) {
    FASTNN_CHECK(k < state.size(), name, ": missing state array");
    return state[k].mutable_data();
  };
  T* pp = p.mutable_data();
  const T* gp = g.data();
  for (int64_t i = 0; i < n; ++i) {
    if (name == "sgd") body::sgd_element(pp, gp, h(0), i);
    else if (name == "momentum") body::momentum_element(pp, st(0), gp, h(0), h(1), i);
    else if (name == "nesterov") body::nesterov_element(pp, st(0), gp, h(0), h(1), i);
    else if (name == "adagrad") body::adagrad_element(pp, st(0), gp, h(0), h(1), i);
    else if (name == "rmsprop") body::rmsprop_element(pp, st(0), gp, h(0), h(1), h(2), i);
    else if (name == "adam") body::adam_element(pp, st(0), st(1), gp, h(0), h(1), h(2), h(3), i);
    else throw std::invalid_argument("unknown optimizer " + name);
  }
}

template <typename T>
py::tuple batchnorm_forward_train(Array<T> x, Array<T> gamma, Array<T> beta, Array<T> rm,
                                  Array<T> rv, double momentum, double eps) {
  FASTNN_CHECK(x.ndim() == 2, "x must be 2-D");
  const int64_t N = x.shape(0), D = x.shape(1);
  for (auto* a : {&gamma, &beta, &rm, &rv}) FASTNN_CHECK(a->size() == D, "param size mismatch");
  const auto sum_x = column_sums<double>(body::Elem<T>{x.data(), D}, N, D);
  auto mu = empty<T>({D});
  for (int64_t j = 0; j < D; ++j) mu.mutable_data()[j] = N ? static_cast<T>(sum_x[j] / N) : T(0);
  const auto sum_sq = column_sums<double>(body::ElemSqDev<T>{x.data(), mu.data(), D}, N, D);
  auto std = empty<T>({D}), nrm = empty<T>({D}), nrv = empty<T>({D});
  for (int64_t j = 0; j < D; ++j)
    body::batchnorm_column_stats(sum_sq[j], mu.data(), rm.data(), rv.data(), std.mutable_data(),
                                 nrm.mutable_data(), nrv.mutable_data(), N, momentum, eps, j);
  auto xc = empty<T>({N, D}), xn = empty<T>({N, D}), out = empty<T>({N, D});
  for (int64_t i = 0; i < N * D; ++i)
    body::batchnorm_normalize_element(x.data(), mu.data(), std.data(), gamma.data(), beta.data(),
                                      xc.mutable_data(), xn.mutable_data(), out.mutable_data(), D,
                                      i);
  return py::make_tuple(out, xc, xn, std, nrm, nrv);
}

template <typename T>
Array<T> batchnorm_forward_infer(Array<T> x, Array<T> gamma, Array<T> beta, Array<T> rm,
                                 Array<T> rv, double eps) {
  FASTNN_CHECK(x.ndim() == 2, "x must be 2-D");
  const int64_t D = x.shape(1);
  for (auto* a : {&gamma, &beta, &rm, &rv}) FASTNN_CHECK(a->size() == D, "param size mismatch");
  auto out = empty<T>(shape_of(x));
  for (int64_t i = 0; i < x.size(); ++i)
    out.mutable_data()[i] = body::batchnorm_infer_element(
        x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), static_cast<T>(eps), D, i);
  return out;
}

template <typename T>
py::tuple batchnorm_backward(Array<T> dout, Array<T> gamma, Array<T> xc, Array<T> xn,
                             Array<T> std) {
  FASTNN_CHECK(dout.ndim() == 2 && xc.size() == dout.size() && xn.size() == dout.size(),
               "shape mismatch");
  const int64_t N = dout.shape(0), D = dout.shape(1);
  FASTNN_CHECK(gamma.size() == D && std.size() == D, "param size mismatch");
  auto to_array = [D](const std::vector<T>& v) {
    auto a = empty<T>({D});
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
  };
  auto dbeta = to_array(column_sums<T>(body::Elem<T>{dout.data(), D}, N, D));
  auto dgamma = to_array(column_sums<T>(body::ElemProduct<T>{xn.data(), dout.data(), D}, N, D));
  auto s_xc_dout = to_array(column_sums<T>(body::ElemProduct<T>{xc.data(), dout.data(), D}, N, D));
  auto s_xc = to_array(column_sums<T>(body::Elem<T>{xc.data(), D}, N, D));
  auto a = empty<T>({D}), c = empty<T>({D}), dmu_n = empty<T>({D});
  for (int64_t j = 0; j < D; ++j)
    body::batchnorm_backward_column(gamma.data(), std.data(), dbeta.data(), s_xc_dout.data(),
                                    s_xc.data(), a.mutable_data(), c.mutable_data(),
                                    dmu_n.mutable_data(), N, j);
  auto dx = empty<T>({N, D});
  for (int64_t i = 0; i < N * D; ++i)
    dx.mutable_data()[i] = body::batchnorm_backward_element(dout.data(), xc.data(), a.data(),
                                                            c.data(), dmu_n.data(), D, i);
  return py::make_tuple(dx, dgamma, dbeta);
}

template <typename T>
void define(py::module_& m) {
  m.def("_body_relu_forward", &relu_forward<T>);
  m.def("_body_relu_backward", &relu_backward<T>);
  m.def("_body_sigmoid_forward", &unary<T, body::sigmoid_forward<T>>);
  m.def("_body_sigmoid_backward", &binary<T, body::sigmoid_backward<T>>);
  m.def("_body_tanh_forward", &unary<T, body::tanh_forward<T>>);
  m.def("_body_tanh_backward", &binary<T, body::tanh_backward<T>>);
  m.def("_body_im2col", &im2col<T>);
  m.def("_body_col2im", &col2im<T>);
  m.def("_body_conv_out", &conv_out<T>);
  m.def("_body_conv_dout_rows", &conv_dout_rows<T>);
  m.def("_body_maxpool_forward", &maxpool_forward<T>);
  m.def("_body_maxpool_backward", &maxpool_backward<T>);
  m.def("_body_avgpool_forward", &avgpool_forward<T>);
  m.def("_body_avgpool_backward", &avgpool_backward<T>);
  m.def("_body_bias_add", &bias_add<T>);
  m.def("_body_column_sum", &column_sum<T>);
  m.def("_body_softmax", &softmax<T>);
  m.def("_body_softmax_ce_forward", &softmax_ce_forward<T>);
  m.def("_body_softmax_ce_backward", &softmax_ce_backward<T>);
  m.def("_body_softmax_ce_backward_dense", &softmax_ce_backward_dense<T>);
  m.def("_body_optim", &optim<T>);
  m.def("_body_batchnorm_forward_train", &batchnorm_forward_train<T>);
  m.def("_body_batchnorm_forward_infer", &batchnorm_forward_infer<T>);
  m.def("_body_batchnorm_backward", &batchnorm_backward<T>);
}

void bind_cuda_bodies(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("cuda_bodies", &bind_cuda_bodies);

}  // namespace
}  // namespace fastnn::bind
