#include "bind/registry.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

// x (N, D) is the batch already flattened by _ops; every parameter has length D.
template <typename T>
void check_params(const Array<T>& x, std::initializer_list<std::pair<const char*, const Array<T>*>> ps) {
  FASTNN_CHECK(x.ndim() == 2, "BatchNormalization: expected x of shape (N, D), got x.shape=",
               shape_str(shape_of(x)));
  for (auto& [name, p] : ps)
    FASTNN_CHECK(p->ndim() == 1 && p->shape(0) == x.shape(1), "BatchNormalization: ", name,
                 ".shape=", shape_str(shape_of(*p)), " but x has ", x.shape(1),
                 " features per sample (x.shape=", shape_str(shape_of(x)), ")");
}

// Returns (out, xc, xn, std, new_running_mean, new_running_var).
template <typename T>
py::tuple batchnorm_forward_train(Array<T> x, Array<T> gamma, Array<T> beta,
                                  Array<T> running_mean, Array<T> running_var, double momentum,
                                  double eps) {
  check_params(x, {{"gamma", &gamma}, {"beta", &beta}, {"running_mean", &running_mean},
                   {"running_var", &running_var}});
  const int64_t N = x.shape(0), D = x.shape(1);
  auto out = empty<T>({N, D}), xc = empty<T>({N, D}), xn = empty<T>({N, D});
  auto std = empty<T>({D}), rm = empty<T>({D}), rv = empty<T>({D});
  {
    py::gil_scoped_release nogil;
    cpu::batchnorm_forward_train<T>(x.data(), gamma.data(), beta.data(), running_mean.data(),
                                 running_var.data(), out.mutable_data(), xc.mutable_data(),
                                 xn.mutable_data(), std.mutable_data(), rm.mutable_data(),
                                 rv.mutable_data(), N, D, momentum, eps);
  }
  return py::make_tuple(out, xc, xn, std, rm, rv);
}

template <typename T>
Array<T> batchnorm_forward_infer(Array<T> x, Array<T> gamma, Array<T> beta,
                                 Array<T> running_mean, Array<T> running_var, double eps) {
  check_params(x, {{"gamma", &gamma}, {"beta", &beta}, {"running_mean", &running_mean},
                   {"running_var", &running_var}});
  const int64_t N = x.shape(0), D = x.shape(1);
  auto out = empty<T>({N, D});
  py::gil_scoped_release nogil;
  cpu::batchnorm_forward_infer<T>(x.data(), gamma.data(), beta.data(), running_mean.data(),
                               running_var.data(), out.mutable_data(), N, D, eps);
  return out;
}

// Returns (dx, dgamma, dbeta).
template <typename T>
py::tuple batchnorm_backward(Array<T> dout, Array<T> gamma, Array<T> xc, Array<T> xn,
                             Array<T> std) {
  check_params(dout, {{"gamma", &gamma}, {"std", &std}});
  FASTNN_CHECK(shape_of(xc) == shape_of(dout) && shape_of(xn) == shape_of(dout),
               "BatchNormalization.backward: dout.shape=", shape_str(shape_of(dout)),
               " differs from the forward's ", shape_str(shape_of(xc)));
  const int64_t N = dout.shape(0), D = dout.shape(1);
  auto dx = empty<T>({N, D}), dgamma = empty<T>({D}), dbeta = empty<T>({D});
  {
    py::gil_scoped_release nogil;
    cpu::batchnorm_backward<T>(dout.data(), gamma.data(), xc.data(), xn.data(), std.data(),
                            dx.mutable_data(), dgamma.mutable_data(), dbeta.mutable_data(), N, D);
  }
  return py::make_tuple(dx, dgamma, dbeta);
}

template <typename T>
void define(py::module_& m) {
  m.def("batchnorm_forward_train", &batchnorm_forward_train<T>, py::arg("x"), py::arg("gamma"),
        py::arg("beta"), py::arg("running_mean"), py::arg("running_var"), py::arg("momentum"),
        py::arg("eps"));
  m.def("batchnorm_forward_infer", &batchnorm_forward_infer<T>, py::arg("x"), py::arg("gamma"),
        py::arg("beta"), py::arg("running_mean"), py::arg("running_var"), py::arg("eps"));
  m.def("batchnorm_backward", &batchnorm_backward<T>, py::arg("dout"), py::arg("gamma"),
        py::arg("xc"), py::arg("xn"), py::arg("std"));
}

void bind_batchnorm(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("batchnorm", &bind_batchnorm);

}  // namespace
}  // namespace fastnn::bind
