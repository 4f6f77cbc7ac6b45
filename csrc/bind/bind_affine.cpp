#include "bind/registry.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

// x (N, D) is the batch already flattened by ops; W (D, M), or W^T (M, D) when W_trans (the
// caller's W was a transposed view); b (M,).
template <typename T>
Array<T> affine_forward(Array<T> x, Array<T> W_, Array<T> b, bool W_trans) {
  // The checks read W's shape as (D, M) whichever way it is stored.
  const std::vector<int64_t> Wshape =
      W_trans && W_.ndim() == 2 ? std::vector<int64_t>{W_.shape(1), W_.shape(0)} : shape_of(W_);
  FASTNN_CHECK(x.ndim() == 2 && W_.ndim() == 2 && b.ndim() == 1,
               "Affine: expected x (N, D), W (D, M) and b (M,), got x.shape=",
               shape_str(shape_of(x)), ", W.shape=", shape_str(Wshape),
               ", b.shape=", shape_str(shape_of(b)));
  const int64_t N = x.shape(0), D = x.shape(1), M = Wshape[1];
  FASTNN_CHECK(Wshape[0] == D, "Affine: x has ", D, " features but W expects ", Wshape[0],
               " (x.shape=", shape_str(shape_of(x)), ", W.shape=", shape_str(Wshape), ")");
  FASTNN_CHECK(b.shape(0) == M, "Affine: b has length ", b.shape(0), " but W has ", M,
               " columns (W.shape=", shape_str(Wshape), ", b.shape=",
               shape_str(shape_of(b)), ")");
  auto out = empty<T>({N, M});
  py::gil_scoped_release nogil;
  cpu::affine_forward<T>(x.data(), W_.data(), b.data(), out.mutable_data(), N, D, M, W_trans);
  return out;
}

// Returns (dx (N, D), dW (D, M), db (M,)); dx is None when need_dx is false. With W_trans,
// W is given as W^T (M, D) and dW comes back as dW^T (M, D).
template <typename T>
py::tuple affine_backward(Array<T> dout, Array<T> x, Array<T> W_, bool need_dx, bool W_trans) {
  const std::vector<int64_t> Wshape =
      W_trans && W_.ndim() == 2 ? std::vector<int64_t>{W_.shape(1), W_.shape(0)} : shape_of(W_);
  FASTNN_CHECK(dout.ndim() == 2 && x.ndim() == 2 && W_.ndim() == 2,
               "Affine.backward: expected dout (N, M), x (N, D) and W (D, M), got dout.shape=",
               shape_str(shape_of(dout)), ", x.shape=", shape_str(shape_of(x)),
               ", W.shape=", shape_str(Wshape));
  const int64_t N = x.shape(0), D = x.shape(1), M = Wshape[1];
  FASTNN_CHECK(Wshape[0] == D && dout.shape(0) == N && dout.shape(1) == M,
               "Affine.backward: dout.shape=", shape_str(shape_of(dout)), " does not match x.shape=",
               shape_str(shape_of(x)), " and W.shape=", shape_str(Wshape));
  auto dx = need_dx ? empty<T>({N, D}) : Array<T>();
  auto dW = W_trans ? empty<T>({M, D}) : empty<T>({D, M});
  auto db = empty<T>({M});
  {
    T* dx_data = need_dx ? dx.mutable_data() : nullptr;
    py::gil_scoped_release nogil;
    cpu::affine_backward<T>(dout.data(), x.data(), W_.data(), dx_data, dW.mutable_data(),
                            db.mutable_data(), N, D, M, W_trans);
  }
  return py::make_tuple(need_dx ? py::object(dx) : py::none(), dW, db);
}

template <typename T>
void define(py::module_& m) {
  m.def("affine_forward", &affine_forward<T>, py::arg("x"), py::arg("W"), py::arg("b"),
        py::arg("W_trans") = false);
  m.def("affine_backward", &affine_backward<T>, py::arg("dout"), py::arg("x"), py::arg("W"),
        py::arg("need_dx") = true, py::arg("W_trans") = false);
}

void bind_affine(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("affine", &bind_affine);

}  // namespace
}  // namespace fastnn::bind
