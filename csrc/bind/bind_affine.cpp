#include "bind/registry.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

// x (N, D) is the batch already flattened by _ops; W (D, M); b (M,).
template <typename T>
Array<T> affine_forward(Array<T> x, Array<T> W, Array<T> b) {
  FASTNN_CHECK(x.ndim() == 2 && W.ndim() == 2 && b.ndim() == 1,
               "Affine: expected x (N, D), W (D, M) and b (M,), got x.shape=",
               shape_str(shape_of(x)), ", W.shape=", shape_str(shape_of(W)),
               ", b.shape=", shape_str(shape_of(b)));
  const int64_t N = x.shape(0), D = x.shape(1), M = W.shape(1);
  FASTNN_CHECK(W.shape(0) == D, "Affine: x has ", D, " features but W expects ", W.shape(0),
               " (x.shape=", shape_str(shape_of(x)), ", W.shape=", shape_str(shape_of(W)), ")");
  FASTNN_CHECK(b.shape(0) == M, "Affine: b has length ", b.shape(0), " but W has ", M,
               " columns (W.shape=", shape_str(shape_of(W)), ", b.shape=",
               shape_str(shape_of(b)), ")");
  auto out = empty<T>({N, M});
  py::gil_scoped_release nogil;
  cpu::affine_forward<T>(x.data(), W.data(), b.data(), out.mutable_data(), N, D, M);
  return out;
}

// Returns (dx (N, D), dW (D, M), db (M,)); dx is None when need_dx is false.
template <typename T>
py::tuple affine_backward(Array<T> dout, Array<T> x, Array<T> W, bool need_dx) {
  FASTNN_CHECK(dout.ndim() == 2 && x.ndim() == 2 && W.ndim() == 2,
               "Affine.backward: expected dout (N, M), x (N, D) and W (D, M), got dout.shape=",
               shape_str(shape_of(dout)), ", x.shape=", shape_str(shape_of(x)),
               ", W.shape=", shape_str(shape_of(W)));
  const int64_t N = x.shape(0), D = x.shape(1), M = W.shape(1);
  FASTNN_CHECK(W.shape(0) == D && dout.shape(0) == N && dout.shape(1) == M,
               "Affine.backward: dout.shape=", shape_str(shape_of(dout)), " does not match x.shape=",
               shape_str(shape_of(x)), " and W.shape=", shape_str(shape_of(W)));
  auto dx = need_dx ? empty<T>({N, D}) : Array<T>();
  auto dW = empty<T>({D, M});
  auto db = empty<T>({M});
  {
    T* dx_data = need_dx ? dx.mutable_data() : nullptr;
    py::gil_scoped_release nogil;
    cpu::affine_backward<T>(dout.data(), x.data(), W.data(), dx_data, dW.mutable_data(),
                         db.mutable_data(), N, D, M);
  }
  return py::make_tuple(need_dx ? py::object(dx) : py::none(), dW, db);
}

template <typename T>
void define(py::module_& m) {
  m.def("affine_forward", &affine_forward<T>, py::arg("x"), py::arg("W"), py::arg("b"));
  m.def("affine_backward", &affine_backward<T>, py::arg("dout"), py::arg("x"), py::arg("W"),
        py::arg("need_dx") = true);
}

void bind_affine(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("affine", &bind_affine);

}  // namespace
}  // namespace fastnn::bind
