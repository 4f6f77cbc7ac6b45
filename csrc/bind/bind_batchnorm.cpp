#include "bind/registry.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

// x (N, D) is the batch already flattened by ops; every parameter has length D.
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

// ---- per-channel normalization: x is (N, C, S) as ops reshaped it; the checks here guard
// memory only (the user's messages come from ops).

template <typename T>
void check_ncs(const Array<T>& x, const char* op) {
  FASTNN_CHECK(x.ndim() == 3, op, ": expected x of shape (N, C, S), got x.shape=",
               shape_str(shape_of(x)));
}

template <typename T>
void check_len(const Array<T>& p, int64_t n, const char* op, const char* name) {
  FASTNN_CHECK(p.ndim() == 1 && p.shape(0) == n, op, ": ", name, ".shape=",
               shape_str(shape_of(p)), ", expected (", n, ",)");
}

template <typename T>
void check_same(const Array<T>& a, const Array<T>& b, const char* op) {
  FASTNN_CHECK(shape_of(a) == shape_of(b), op, ": dout.shape=", shape_str(shape_of(a)),
               " differs from the forward's ", shape_str(shape_of(b)));
}

// Returns (out, xn, mean, var, inv_std).
template <typename T>
py::tuple channel_batchnorm_forward(Array<T> x, Array<T> gamma, Array<T> beta, double eps) {
  check_ncs(x, "channel_batchnorm_forward");
  const int64_t N = x.shape(0), C = x.shape(1), S = x.shape(2);
  check_len(gamma, C, "channel_batchnorm_forward", "gamma");
  check_len(beta, C, "channel_batchnorm_forward", "beta");
  auto out = empty<T>({N, C, S}), xn = empty<T>({N, C, S});
  auto mean = empty<T>({C}), var = empty<T>({C}), inv_std = empty<T>({C});
  {
    py::gil_scoped_release nogil;
    cpu::channel_batchnorm_forward<T>(x.data(), gamma.data(), beta.data(), out.mutable_data(),
                                      xn.mutable_data(), mean.mutable_data(), var.mutable_data(),
                                      inv_std.mutable_data(), N, C, S, eps);
  }
  return py::make_tuple(out, xn, mean, var, inv_std);
}

// Returns (dx, dgamma, dbeta).
template <typename T>
py::tuple channel_batchnorm_backward(Array<T> dout, Array<T> xn, Array<T> gamma,
                                     Array<T> inv_std) {
  check_ncs(dout, "channel_batchnorm_backward");
  check_same(dout, xn, "channel_batchnorm_backward");
  const int64_t N = dout.shape(0), C = dout.shape(1), S = dout.shape(2);
  check_len(gamma, C, "channel_batchnorm_backward", "gamma");
  check_len(inv_std, C, "channel_batchnorm_backward", "inv_std");
  auto dx = empty<T>({N, C, S}), dgamma = empty<T>({C}), dbeta = empty<T>({C});
  {
    py::gil_scoped_release nogil;
    cpu::channel_batchnorm_backward<T>(dout.data(), xn.data(), gamma.data(), inv_std.data(),
                                       dx.mutable_data(), dgamma.mutable_data(),
                                       dbeta.mutable_data(), N, C, S);
  }
  return py::make_tuple(dx, dgamma, dbeta);
}

template <typename T>
Array<T> channel_affine(Array<T> x, Array<T> scale, Array<T> shift) {
  check_ncs(x, "channel_affine");
  const int64_t N = x.shape(0), C = x.shape(1), S = x.shape(2);
  check_len(scale, C, "channel_affine", "scale");
  check_len(shift, C, "channel_affine", "shift");
  auto out = empty<T>({N, C, S});
  py::gil_scoped_release nogil;
  cpu::channel_affine<T>(x.data(), scale.data(), shift.data(), out.mutable_data(), N, C, S);
  return out;
}

// Returns (out, xn, inv_std (N*G,)).
template <typename T>
py::tuple group_norm_forward(Array<T> x, Array<T> gamma, Array<T> beta, int64_t groups,
                             double eps) {
  check_ncs(x, "group_norm_forward");
  const int64_t N = x.shape(0), C = x.shape(1), S = x.shape(2);
  FASTNN_CHECK(groups >= 1 && C % groups == 0, "group_norm_forward: ", C,
               " channels do not split into ", groups, " groups");
  check_len(gamma, C, "group_norm_forward", "gamma");
  check_len(beta, C, "group_norm_forward", "beta");
  auto out = empty<T>({N, C, S}), xn = empty<T>({N, C, S}), inv_std = empty<T>({N * groups});
  {
    py::gil_scoped_release nogil;
    cpu::group_norm_forward<T>(x.data(), gamma.data(), beta.data(), out.mutable_data(),
                               xn.mutable_data(), inv_std.mutable_data(), N, C, S, groups, eps);
  }
  return py::make_tuple(out, xn, inv_std);
}

// Returns (dx, dgamma, dbeta).
template <typename T>
py::tuple group_norm_backward(Array<T> dout, Array<T> xn, Array<T> gamma, Array<T> inv_std,
                              int64_t groups) {
  check_ncs(dout, "group_norm_backward");
  check_same(dout, xn, "group_norm_backward");
  const int64_t N = dout.shape(0), C = dout.shape(1), S = dout.shape(2);
  FASTNN_CHECK(groups >= 1 && C % groups == 0, "group_norm_backward: ", C,
               " channels do not split into ", groups, " groups");
  check_len(gamma, C, "group_norm_backward", "gamma");
  check_len(inv_std, N * groups, "group_norm_backward", "inv_std");
  auto dx = empty<T>({N, C, S}), dgamma = empty<T>({C}), dbeta = empty<T>({C});
  {
    py::gil_scoped_release nogil;
    cpu::group_norm_backward<T>(dout.data(), xn.data(), gamma.data(), inv_std.data(),
                                dx.mutable_data(), dgamma.mutable_data(), dbeta.mutable_data(),
                                N, C, S, groups);
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
  m.def("channel_batchnorm_forward", &channel_batchnorm_forward<T>, py::arg("x"),
        py::arg("gamma"), py::arg("beta"), py::arg("eps"));
  m.def("channel_batchnorm_backward", &channel_batchnorm_backward<T>, py::arg("dout"),
        py::arg("xn"), py::arg("gamma"), py::arg("inv_std"));
  m.def("channel_affine", &channel_affine<T>, py::arg("x"), py::arg("scale"), py::arg("shift"));
  m.def("group_norm_forward", &group_norm_forward<T>, py::arg("x"), py::arg("gamma"),
        py::arg("beta"), py::arg("groups"), py::arg("eps"));
  m.def("group_norm_backward", &group_norm_backward<T>, py::arg("dout"), py::arg("xn"),
        py::arg("gamma"), py::arg("inv_std"), py::arg("groups"));
}

void bind_batchnorm(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("batchnorm", &bind_batchnorm);

}  // namespace
}  // namespace fastnn::bind
