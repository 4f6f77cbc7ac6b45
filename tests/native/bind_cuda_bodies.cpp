// Test-only module fastnn._C_testing, built with -DFASTNN_TESTING=ON (tests/native/CMakeLists.txt)
// and never part of the product module _C: runs the CUDA kernels' per-element bodies
// (csrc/cuda/body) in plain CPU loops, in the exact decomposition the .cu kernels use, so
// tests/test_cuda_bodies.py can compare them with fastnn.reference on machines without a GPU.
// GEMMs, done by cuBLAS on the GPU, are left to the test (NumPy).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/shapes.h"
#include "cuda/body/activation.h"
#include "cuda/body/affine.h"
#include "cuda/body/batchnorm.h"
#include "cuda/body/depthwise.h"
#include "cuda/body/im2col.h"
#include "cuda/body/optim.h"
#include "cuda/body/pool.h"
#include "cuda/body/recurrent.h"
#include "cuda/body/softmax.h"

namespace py = pybind11;

namespace fastnn::testing {
namespace {

// C-contiguous array of T, no forcecast: the float32 and float64 overloads take their own dtype.
template <typename T>
using Array = py::array_t<T, py::array::c_style>;

std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

// A new C-contiguous array from NumPy (the product's buffer cache is not needed here).
template <typename T>
Array<T> empty(const std::vector<int64_t>& shape) {
  return Array<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

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

// The window over x (N, C, H, W), checked as the bindings check theirs (core/shapes.h), so
// that the bodies stay inside the arrays.
ConvShape window(const std::vector<int64_t>& x_shape, int64_t FH, int64_t FW, int64_t stride,
                 int64_t pad) {
  const std::string op = str_cat("bad window for ", shape_str(x_shape));
  FASTNN_CHECK(x_shape.size() == 4, op);
  return checked_window(op.c_str(), x_shape[0], x_shape[1], x_shape[2], x_shape[3], FH, FW,
                        stride, pad);
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

// Depthwise convolution (groups == C) of x (N, C, H, W) with W (FN, 1, FH, FW): the window of
// the shapes, checked so that the bodies stay inside the arrays.
template <typename T>
ConvShape depthwise_window(const Array<T>& x, const Array<T>& W, int64_t stride, int64_t pad) {
  FASTNN_CHECK(x.ndim() == 4 && W.ndim() == 4 && W.shape(1) == 1 && x.shape(1) >= 1 &&
                   W.shape(0) % x.shape(1) == 0,
               "depthwise: x ", shape_str(shape_of(x)), " and W ", shape_str(shape_of(W)));
  return window(shape_of(x), W.shape(2), W.shape(3), stride, pad);
}

template <typename T>
Array<T> depthwise_forward(Array<T> x, Array<T> W, std::optional<Array<T>> b, int64_t stride,
                           int64_t pad) {
  const auto s = depthwise_window(x, W, stride, pad);
  const int64_t FN = W.shape(0);
  FASTNN_CHECK(!b || b->size() == FN, "b size mismatch");
  auto out = empty<T>({s.N, FN, s.OH, s.OW});
  const T* bp = b ? b->data() : nullptr;
  for (int64_t o = 0; o < out.size(); ++o)
    out.mutable_data()[o] = body::depthwise_forward_element(x.data(), W.data(), bp, s, FN, o);
  return out;
}

// (dx or None, dW, db): dx per pixel, dW and db as the GPU's column sums (kReduceThreads
// strided shares per weight or filter, then combined).
template <typename T>
py::tuple depthwise_backward(Array<T> dout, Array<T> x, Array<T> W, int64_t stride, int64_t pad,
                             bool need_dx) {
  const auto s = depthwise_window(x, W, stride, pad);
  const int64_t FN = W.shape(0), P = s.OH * s.OW, K = s.FH * s.FW;
  FASTNN_CHECK(shape_of(dout) == std::vector<int64_t>({s.N, FN, s.OH, s.OW}),
               "dout shape mismatch");
  const auto db = column_sums<T>(body::DoutPlaneTerm<T>{dout.data(), FN, P}, s.N * P, FN);
  const auto dW = column_sums<T>(body::DepthwiseDwTerm<T>{dout.data(), x.data(), s, FN},
                                 s.N * P, FN * K);
  auto dW_a = empty<T>(shape_of(W));
  auto db_a = empty<T>({FN});
  std::copy(dW.begin(), dW.end(), dW_a.mutable_data());
  std::copy(db.begin(), db.end(), db_a.mutable_data());
  if (!need_dx) return py::make_tuple(py::none(), dW_a, db_a);
  auto dx = empty<T>(shape_of(x));
  for (int64_t i = 0; i < dx.size(); ++i)
    dx.mutable_data()[i] = body::depthwise_dx_element(dout.data(), W.data(), s, FN, i);
  return py::make_tuple(dx, dW_a, db_a);
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
  m.def("_body_depthwise_forward", &depthwise_forward<T>);
  m.def("_body_depthwise_backward", &depthwise_backward<T>);
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

// ---------------------------------------------------------------- recurrent (rnn, lstm, gru)
// One time step of a body of csrc/cuda/body/recurrent.h over its N*H elements; the test does
// the GEMMs and the time loop of csrc/cuda/{rnn,lstm,gru}.cu in NumPy. Bodies that update
// arrays in place work on copies, returned. None stands for a null pointer (zeros).

template <typename T>
using OptArray = std::optional<Array<T>>;

template <typename T>
const T* ptr_or_null(const OptArray<T>& a) {
  return a ? a->data() : nullptr;
}

template <typename T>
Array<T> copy_of(const Array<T>& a) {
  return py::array(a).attr("copy")();
}

Layout layout_of(bool torch) { return torch ? Layout::Torch : Layout::Book; }

// (N, H) of a step's gate block A (N, g*H); every other array must hold N*H elements.
template <typename T>
std::pair<int64_t, int64_t> step_size(const Array<T>& A, int64_t g,
                                      std::initializer_list<const py::array*> others) {
  FASTNN_CHECK(A.ndim() == 2 && A.shape(1) % g == 0, "A must be (N, ", g, "H)");
  const int64_t N = A.shape(0), H = A.shape(1) / g;
  for (const py::array* a : others)
    FASTNN_CHECK(!a || a->size() == N * H, "state size mismatch: expected ", N * H,
                 " elements, got ", a->size());
  return {N, H};
}

template <typename T>
const py::array* opt(const OptArray<T>& a) {
  return a ? &*a : nullptr;
}

// (T, N, P): the gradient seeds of the backward passes.
template <typename T>
Array<T> dh_seed(OptArray<T> dhs, OptArray<T> dhn, int64_t T_, int64_t N, int64_t P) {
  FASTNN_CHECK(T_ >= 1 && (!dhs || dhs->size() == T_ * N * P) && (!dhn || dhn->size() == N * P),
               "dh_seed: size mismatch");
  auto out = empty<T>({T_, N, P});
  for (int64_t i = 0; i < out.size(); ++i)
    out.mutable_data()[i] =
        body::dh_seed_element(ptr_or_null(dhs), ptr_or_null(dhn), (T_ - 1) * N * P, i);
  return out;
}

template <typename T>
Array<T> rnn_step_forward(Array<T> pre, bool relu) {
  auto h = copy_of(pre);
  for (int64_t i = 0; i < h.size(); ++i) body::rnn_forward_element(h.mutable_data(), relu, i);
  return h;
}

template <typename T>
Array<T> rnn_step_backward(Array<T> h, Array<T> dh, bool relu) {
  FASTNN_CHECK(h.size() == dh.size(), "size mismatch");
  auto dg = empty<T>(shape_of(h));
  for (int64_t i = 0; i < h.size(); ++i)
    body::rnn_backward_element(h.data(), dh.data(), dg.mutable_data(), relu, i);
  return dg;
}

// (gates, c, h_cell) from the pre-activations A (N, 4H).
template <typename T>
py::tuple lstm_step_forward(Array<T> A, OptArray<T> c_prev, bool torch) {
  const auto [N, H] = step_size(A, 4, {opt(c_prev)});
  auto gates = copy_of(A);
  auto c = empty<T>({N, H}), h = empty<T>({N, H});
  const auto k = body::LstmGates::of(layout_of(torch));
  for (int64_t i = 0; i < N * H; ++i)
    body::lstm_forward_element(k, gates.mutable_data(), ptr_or_null(c_prev), c.mutable_data(),
                               h.mutable_data(), H, i);
  return py::make_tuple(gates, c, h);
}

// (dA, the gradient on c_prev) from the activated gates A and the running dc.
template <typename T>
py::tuple lstm_step_backward(Array<T> A, Array<T> c, OptArray<T> c_prev, Array<T> dh,
                             Array<T> dc, bool torch) {
  const auto [N, H] = step_size(A, 4, {&c, opt(c_prev), &dh, &dc});
  auto dA = empty<T>(shape_of(A));
  auto dc_prev = copy_of(dc);
  const auto k = body::LstmGates::of(layout_of(torch));
  for (int64_t i = 0; i < N * H; ++i)
    body::lstm_backward_element(k, A.data(), c.data(), ptr_or_null(c_prev), dh.data(),
                                dc_prev.mutable_data(), dA.mutable_data(), H, i);
  return py::make_tuple(dA, dc_prev);
}

// (A with z, r activated, r * h_prev).
template <typename T>
py::tuple gru_book_step_forward_zr(Array<T> A, OptArray<T> h_prev) {
  const auto [N, H] = step_size(A, 3, {opt(h_prev)});
  auto a = copy_of(A);
  auto rh = empty<T>({N, H});
  const auto k = body::GruGates::of(Layout::Book);
  for (int64_t i = 0; i < N * H; ++i)
    body::gru_book_forward_zr_element(k, a.mutable_data(), ptr_or_null(h_prev),
                                      rh.mutable_data(), H, i);
  return py::make_tuple(a, rh);
}

// (A with n activated, h).
template <typename T>
py::tuple gru_book_step_forward_n(Array<T> A, OptArray<T> h_prev) {
  const auto [N, H] = step_size(A, 3, {opt(h_prev)});
  auto a = copy_of(A);
  auto h = empty<T>({N, H});
  const auto k = body::GruGates::of(Layout::Book);
  for (int64_t i = 0; i < N * H; ++i)
    body::gru_book_forward_n_element(k, a.mutable_data(), ptr_or_null(h_prev), h.mutable_data(),
                                     H, i);
  return py::make_tuple(a, h);
}

// (gates, aux, h) from the input part A and the hidden part hg (+ bh).
template <typename T>
py::tuple gru_torch_step_forward(Array<T> A, OptArray<T> hg, OptArray<T> bh,
                                 OptArray<T> h_prev) {
  const auto [N, H] = step_size(A, 3, {opt(h_prev)});
  FASTNN_CHECK((!hg || hg->size() == 3 * N * H) && (!bh || bh->size() == 3 * H),
               "hg/bh size mismatch");
  auto a = copy_of(A);
  auto aux = empty<T>({N, H}), h = empty<T>({N, H});
  const auto k = body::GruGates::of(Layout::Torch);
  for (int64_t i = 0; i < N * H; ++i)
    body::gru_torch_forward_element(k, a.mutable_data(), ptr_or_null(hg), ptr_or_null(bh),
                                    ptr_or_null(h_prev), aux.mutable_data(), h.mutable_data(), H,
                                    i);
  return py::make_tuple(a, aux, h);
}

// dA with its z and n blocks written (the r block zero).
template <typename T>
Array<T> gru_book_step_backward_zn(Array<T> A, OptArray<T> h_prev, Array<T> dh) {
  const auto [N, H] = step_size(A, 3, {opt(h_prev), &dh});
  auto dA = empty<T>(shape_of(A));
  std::fill(dA.mutable_data(), dA.mutable_data() + dA.size(), T(0));
  const auto k = body::GruGates::of(Layout::Book);
  for (int64_t i = 0; i < N * H; ++i)
    body::gru_book_backward_zn_element(k, A.data(), ptr_or_null(h_prev), dh.data(),
                                       dA.mutable_data(), H, i);
  return dA;
}

// (dA with its r block written, dh_prev + the direct gradient on h_prev).
template <typename T>
py::tuple gru_book_step_backward_r(Array<T> A, OptArray<T> h_prev, Array<T> dh, Array<T> drh,
                                   Array<T> dA, Array<T> dh_prev) {
  const auto [N, H] = step_size(A, 3, {opt(h_prev), &dh, &drh, &dh_prev});
  FASTNN_CHECK(dA.size() == A.size(), "dA size mismatch");
  auto da = copy_of(dA);
  auto dp = copy_of(dh_prev);
  const auto k = body::GruGates::of(Layout::Book);
  for (int64_t i = 0; i < N * H; ++i)
    body::gru_book_backward_r_element(k, A.data(), ptr_or_null(h_prev), dh.data(), drh.data(),
                                      da.mutable_data(), dp.mutable_data(), H, i);
  return py::make_tuple(da, dp);
}

// (dA, dAh, dh_prev + dh * z).
template <typename T>
py::tuple gru_torch_step_backward(Array<T> A, Array<T> aux, OptArray<T> h_prev, Array<T> dh,
                                  Array<T> dh_prev) {
  const auto [N, H] = step_size(A, 3, {&aux, opt(h_prev), &dh, &dh_prev});
  auto dA = empty<T>(shape_of(A)), dAh = empty<T>(shape_of(A));
  auto dp = copy_of(dh_prev);
  const auto k = body::GruGates::of(Layout::Torch);
  for (int64_t i = 0; i < N * H; ++i)
    body::gru_torch_backward_element(k, A.data(), aux.data(), ptr_or_null(h_prev), dh.data(),
                                     dA.mutable_data(), dAh.mutable_data(), dp.mutable_data(), H,
                                     i);
  return py::make_tuple(dA, dAh, dp);
}

template <typename T>
void define_recurrent(py::module_& m) {
  m.def("_body_dh_seed", &dh_seed<T>);
  m.def("_body_rnn_step_forward", &rnn_step_forward<T>);
  m.def("_body_rnn_step_backward", &rnn_step_backward<T>);
  m.def("_body_lstm_step_forward", &lstm_step_forward<T>);
  m.def("_body_lstm_step_backward", &lstm_step_backward<T>);
  m.def("_body_gru_book_step_forward_zr", &gru_book_step_forward_zr<T>);
  m.def("_body_gru_book_step_forward_n", &gru_book_step_forward_n<T>);
  m.def("_body_gru_torch_step_forward", &gru_torch_step_forward<T>);
  m.def("_body_gru_book_step_backward_zn", &gru_book_step_backward_zn<T>);
  m.def("_body_gru_book_step_backward_r", &gru_book_step_backward_r<T>);
  m.def("_body_gru_torch_step_backward", &gru_torch_step_backward<T>);
}

}  // namespace
}  // namespace fastnn::testing

PYBIND11_MODULE(_C_testing, m) {
  m.doc() = "fastnn test-only bindings: the CUDA kernels' per-element bodies in CPU loops";
  fastnn::testing::define<float>(m);
  fastnn::testing::define<double>(m);
  fastnn::testing::define_recurrent<float>(m);
  fastnn::testing::define_recurrent<double>(m);
}
