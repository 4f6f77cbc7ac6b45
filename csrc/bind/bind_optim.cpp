#include "bind/registry.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

// The parameter and the optimizer state are updated in place: each must be exactly a
// C-contiguous, writeable float32 or float64 array (the state of the parameter's dtype), as
// converting one would update a temporary copy (bind/registry.h inplace). One entry point per
// rule, typed by the parameter. The gradient is only read: anything NumPy casts safely to the
// parameter's dtype is taken.

template <typename T>
T* state(const py::handle& a, const Array<T>& p, const char* opt, const char* name) {
  auto s = inplace<T>(a, opt, name, "the parameter's");
  FASTNN_CHECK(s.size() == p.size(), opt, ": ", name, " has shape ", shape_str(shape_of(s)),
               " but the parameter has shape ", shape_str(shape_of(p)));
  return s.mutable_data();
}

template <typename T>
Array<T> grad_of(const py::handle& g, const Array<T>& p, const char* opt) {
  auto a = input_as<T>(g, opt, "the gradient", "the parameter's");
  FASTNN_CHECK(a.size() == p.size(), opt, ": gradient has shape ", shape_str(shape_of(a)),
               " but the parameter has shape ", shape_str(shape_of(p)));
  return a;
}

template <typename T>
void sgd_t(const py::handle& p_, const py::handle& g_, double lr) {
  auto p = inplace<T>(p_, "SGD", "param", "its");
  auto g = grad_of<T>(g_, p, "SGD");
  py::gil_scoped_release nogil;
  cpu::sgd_update<T>(p.mutable_data(), g.data(), p.size(), T(lr));
}

template <typename T, void (*Fn)(T*, T*, const T*, int64_t, T, T)>
void one_state_t(const py::handle& p_, const py::handle& s_, const py::handle& g_, double a,
                 double b, const char* opt, const char* name) {
  auto p = inplace<T>(p_, opt, "param", "its");
  T* s = state<T>(s_, p, opt, name);
  auto g = grad_of<T>(g_, p, opt);
  py::gil_scoped_release nogil;
  Fn(p.mutable_data(), s, g.data(), p.size(), T(a), T(b));
}

template <typename T>
void rmsprop_t(const py::handle& p_, const py::handle& h_, const py::handle& g_, double lr,
               double decay_rate, double eps) {
  auto p = inplace<T>(p_, "RMSprop", "param", "its");
  T* h = state<T>(h_, p, "RMSprop", "h");
  auto g = grad_of<T>(g_, p, "RMSprop");
  py::gil_scoped_release nogil;
  cpu::rmsprop_update<T>(p.mutable_data(), h, g.data(), p.size(), T(lr), T(decay_rate), T(eps));
}

template <typename T>
void adam_t(const py::handle& p_, const py::handle& m_, const py::handle& v_,
            const py::handle& g_, double lr_t, double beta1, double beta2, double eps) {
  auto p = inplace<T>(p_, "Adam", "param", "its");
  T* m = state<T>(m_, p, "Adam", "m");
  T* v = state<T>(v_, p, "Adam", "v");
  auto g = grad_of<T>(g_, p, "Adam");
  py::gil_scoped_release nogil;
  cpu::adam_update<T>(p.mutable_data(), m, v, g.data(), p.size(), T(lr_t), T(beta1), T(beta2),
                      T(eps));
}

// momentum_update / nesterov_update / adagrad_update: one state array named `name`.
template <typename T>
using OneState = void (*)(T*, T*, const T*, int64_t, T, T);

template <OneState<float> F32, OneState<double> F64>
void def_one_state(py::module_& m, const char* fn, const char* opt, const char* name,
                   const char* a, const char* b) {
  m.def(
      fn,
      [opt, name](py::object p, py::object s, py::object g, double x, double y) {
        if (inplace_is_double(p, opt, "param"))
          one_state_t<double, F64>(p, s, g, x, y, opt, name);
        else
          one_state_t<float, F32>(p, s, g, x, y, opt, name);
      },
      py::arg("p"), py::arg(name), py::arg("g"), py::arg(a), py::arg(b));
}

void bind_optim(py::module_& m) {
  m.def(
      "sgd_update",
      [](py::object p, py::object g, double lr) {
        inplace_is_double(p, "SGD", "param") ? sgd_t<double>(p, g, lr) : sgd_t<float>(p, g, lr);
      },
      py::arg("p"), py::arg("g"), py::arg("lr"));
  def_one_state<cpu::momentum_update<float>, cpu::momentum_update<double>>(
      m, "momentum_update", "Momentum", "v", "lr", "momentum");
  def_one_state<cpu::nesterov_update<float>, cpu::nesterov_update<double>>(
      m, "nesterov_update", "Nesterov", "v", "lr", "momentum");
  def_one_state<cpu::adagrad_update<float>, cpu::adagrad_update<double>>(
      m, "adagrad_update", "AdaGrad", "h", "lr", "eps");
  m.def(
      "rmsprop_update",
      [](py::object p, py::object h, py::object g, double lr, double decay_rate, double eps) {
        if (inplace_is_double(p, "RMSprop", "param"))
          rmsprop_t<double>(p, h, g, lr, decay_rate, eps);
        else
          rmsprop_t<float>(p, h, g, lr, decay_rate, eps);
      },
      py::arg("p"), py::arg("h"), py::arg("g"), py::arg("lr"), py::arg("decay_rate"),
      py::arg("eps"));
  m.def(
      "adam_update",
      [](py::object p, py::object m_, py::object v, py::object g, double lr_t, double beta1,
         double beta2, double eps) {
        if (inplace_is_double(p, "Adam", "param"))
          adam_t<double>(p, m_, v, g, lr_t, beta1, beta2, eps);
        else
          adam_t<float>(p, m_, v, g, lr_t, beta1, beta2, eps);
      },
      py::arg("p"), py::arg("m"), py::arg("v"), py::arg("g"), py::arg("lr_t"), py::arg("beta1"),
      py::arg("beta2"), py::arg("eps"));
}

Registrar reg("optim", &bind_optim);

}  // namespace
}  // namespace fastnn::bind
