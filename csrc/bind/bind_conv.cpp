#include <limits>

#include "bind/registry.h"
#include "bind/window.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

// The window of one group (C = channels per group: see cpu/conv.h).
ConvShape conv_shape(const py::array& x, const py::array& W, int64_t stride, int64_t pad,
                     int64_t groups) {
  FASTNN_CHECK(W.ndim() == 4, "Convolution: W must be 4-D (FN, C, FH, FW), got shape ",
               shape_str(shape_of(W)));
  FASTNN_CHECK(x.ndim() == 4, "Convolution: x must be 4-D (N, C, H, W), got shape ",
               shape_str(shape_of(x)));
  FASTNN_CHECK(groups >= 1, "Convolution: groups must be >= 1, got ", groups);
  FASTNN_CHECK(W.shape(0) % groups == 0, "Convolution: FN = ", W.shape(0),
               " filters do not split into ", groups, " groups");
  FASTNN_CHECK(x.shape(1) % groups == 0 && x.shape(1) / groups == W.shape(1),
               "Convolution: x has ", x.shape(1), " channels but W expects ", W.shape(1),
               " per group x ", groups, " groups");
  return checked_window("Convolution", x.shape(0), W.shape(1), x.shape(2), x.shape(3),
                        W.shape(2), W.shape(3), stride, pad);
}

// keep, when given, receives a copy of x: exactly a C-contiguous writeable array of x's shape
// and dtype (bind/registry.h inplace).
template <typename T>
Array<T> conv2d_forward(Array<T> x, Array<T> W, std::optional<Array<T>> b, int64_t stride,
                        int64_t pad, int64_t groups, py::object keep) {
  const auto s = conv_shape(x, W, stride, pad, groups);
  const int64_t FN = W.shape(0);
  FASTNN_CHECK(!b || b->size() == FN, "Convolution: b has ", b ? b->size() : 0,
               " elements but W has FN = ", FN, " filters");
  Array<T> kept = keep.is_none() ? Array<T>() : inplace<T>(keep, "Convolution", "keep", "x's");
  FASTNN_CHECK(keep.is_none() || shape_of(kept) == shape_of(x), "Convolution: keep.shape=",
               shape_str(shape_of(kept)), " differs from x.shape=", shape_str(shape_of(x)));
  check_conv_blas_sizes(s, FN);  // before the output is allocated
  auto out = empty<T>({s.N, FN, s.OH, s.OW});
  const T* bp = b ? b->data() : nullptr;
  T* kp = keep.is_none() ? nullptr : kept.mutable_data();
  py::gil_scoped_release nogil;
  cpu::conv2d_forward<T>(x.data(), W.data(), bp, out.mutable_data(), s, FN, groups, kp);
  return out;
}

// The outputs of a convolution's backward: dx (only when need_dx), dW and db, as returned to
// Python: (dx or None, dW, db).
template <typename T>
struct Grads {
  bool need_dx;
  Array<T> dx, dW, db;
  Grads(const Array<T>& x, const Array<T>& W, bool need_dx)
      : need_dx(need_dx), dx(need_dx ? empty<T>(shape_of(x)) : Array<T>()),
        dW(empty<T>(shape_of(W))), db(empty<T>({W.shape(0)})) {}
  T* dx_data() { return need_dx ? dx.mutable_data() : nullptr; }
  py::tuple tuple() const { return py::make_tuple(need_dx ? py::object(dx) : py::none(), dW, db); }
};

// Returns (dx, dW, db); dx is None when need_dx is false.
template <typename T>
py::tuple conv2d_backward(Array<T> dout, Array<T> x, Array<T> W, int64_t stride, int64_t pad,
                          bool need_dx, int64_t groups) {
  const auto s = conv_shape(x, W, stride, pad, groups);
  const int64_t FN = W.shape(0);
  const std::vector<int64_t> expect{s.N, FN, s.OH, s.OW};
  FASTNN_CHECK(shape_of(dout) == expect, "Convolution.backward: dout has shape ",
               shape_str(shape_of(dout)), " but the forward output had shape ", shape_str(expect));
  check_conv_blas_sizes(s, FN);
  Grads<T> g(x, W, need_dx);
  {
    py::gil_scoped_release nogil;
    cpu::conv2d_backward<T>(dout.data(), x.data(), W.data(), g.dx_data(), g.dW.mutable_data(),
                            g.db.mutable_data(), s, FN, groups);
  }
  return g.tuple();
}

using IndexArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

// The pooling window over the convolution's (OH, OW) output planes, checked like Pooling's.
ConvShape pool_shape(const ConvShape& s, int64_t FN, int64_t PH, int64_t PW, int64_t pstride) {
  const auto ps = checked_window("Pooling", s.N, FN, s.OH, s.OW, PH, PW, pstride, 0);
  FASTNN_CHECK(PH * PW <= std::numeric_limits<int32_t>::max(), "Pooling: a ", PH, "x", PW,
               " window has more cells than its int32 argmax can index");
  return ps;
}

// Returns (out, arg) of Pooling(relu(Convolution(x))): see cpu/conv.h.
template <typename T>
py::tuple conv2d_relu_maxpool_forward(Array<T> x, Array<T> W, std::optional<Array<T>> b,
                                      int64_t stride, int64_t pad, int64_t PH, int64_t PW,
                                      int64_t pstride, py::object keep) {
  const auto s = conv_shape(x, W, stride, pad, 1);
  const int64_t FN = W.shape(0);
  FASTNN_CHECK(!b || b->size() == FN, "Convolution: b has ", b ? b->size() : 0,
               " elements but W has FN = ", FN, " filters");
  const auto ps = pool_shape(s, FN, PH, PW, pstride);
  Array<T> kept = keep.is_none() ? Array<T>() : inplace<T>(keep, "Convolution", "keep", "x's");
  FASTNN_CHECK(keep.is_none() || shape_of(kept) == shape_of(x), "Convolution: keep.shape=",
               shape_str(shape_of(kept)), " differs from x.shape=", shape_str(shape_of(x)));
  check_conv_blas_sizes(s, FN);  // before the output is allocated
  auto out = empty<T>({s.N, FN, ps.OH, ps.OW});
  auto arg = empty<int32_t>({s.N, FN, ps.OH, ps.OW});
  {
    const T* bp = b ? b->data() : nullptr;
    T* kp = keep.is_none() ? nullptr : kept.mutable_data();
    py::gil_scoped_release nogil;
    cpu::conv2d_relu_maxpool_forward<T>(x.data(), W.data(), bp, out.mutable_data(),
                                        arg.mutable_data(), s, FN,
                                        cpu::PoolWindow{PH, PW, pstride}, kp);
  }
  return py::make_tuple(out, arg);
}

// Returns (dx, dW, db) from the gradient of the pooled output; dx is None when need_dx is false.
template <typename T>
py::tuple conv2d_relu_maxpool_backward(Array<T> dout, IndexArray arg, Array<T> out, Array<T> x,
                                       Array<T> W, int64_t stride, int64_t pad, int64_t PH,
                                       int64_t PW, int64_t pstride, bool need_dx) {
  const auto s = conv_shape(x, W, stride, pad, 1);
  const int64_t FN = W.shape(0);
  const auto ps = pool_shape(s, FN, PH, PW, pstride);
  const std::vector<int64_t> expect{s.N, FN, ps.OH, ps.OW};
  FASTNN_CHECK(shape_of(dout) == expect, "Pooling.backward: dout has shape ",
               shape_str(shape_of(dout)), " but the forward output had shape ", shape_str(expect));
  FASTNN_CHECK(shape_of(arg) == expect && shape_of(out) == expect,
               "Pooling.backward: arg and out must have the forward output's shape ",
               shape_str(expect));
  check_conv_blas_sizes(s, FN);
  Grads<T> g(x, W, need_dx);
  {
    py::gil_scoped_release nogil;
    cpu::conv2d_relu_maxpool_backward<T>(dout.data(), arg.data(), out.data(), x.data(), W.data(),
                                         g.dx_data(), g.dW.mutable_data(), g.db.mutable_data(), s,
                                         FN, cpu::PoolWindow{PH, PW, pstride});
  }
  return g.tuple();
}

template <typename T>
void define(py::module_& m) {
  m.def("conv2d_forward", &conv2d_forward<T>, py::arg("x"), py::arg("W"), py::arg("b"),
        py::arg("stride"), py::arg("pad"), py::arg("groups") = 1, py::arg("keep") = py::none());
  m.def("conv2d_backward", &conv2d_backward<T>, py::arg("dout"), py::arg("x"), py::arg("W"),
        py::arg("stride"), py::arg("pad"), py::arg("need_dx") = true, py::arg("groups") = 1);
  m.def("conv2d_relu_maxpool_forward", &conv2d_relu_maxpool_forward<T>, py::arg("x"),
        py::arg("W"), py::arg("b"), py::arg("stride"), py::arg("pad"), py::arg("pool_h"),
        py::arg("pool_w"), py::arg("pool_stride"), py::arg("keep") = py::none());
  m.def("conv2d_relu_maxpool_backward", &conv2d_relu_maxpool_backward<T>, py::arg("dout"),
        py::arg("arg"), py::arg("out"), py::arg("x"), py::arg("W"), py::arg("stride"),
        py::arg("pad"), py::arg("pool_h"), py::arg("pool_w"), py::arg("pool_stride"),
        py::arg("need_dx") = true);
}

void bind_conv(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("conv", &bind_conv);

}  // namespace
}  // namespace fastnn::bind
