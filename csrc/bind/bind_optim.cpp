#include "bind/registry.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

// Updated in place: exactly T and C-contiguous (no forcecast, which would update a copy).
template <typename T>
using InOut = py::array_t<T, py::array::c_style>;

template <typename T>
T* writable(InOut<T>& a, const py::array& p, const char* opt, const char* name) {
  FASTNN_CHECK(a.writeable(), opt, ": ", name, " is read-only");
  FASTNN_CHECK(a.size() == p.size(), opt, ": ", name, " has shape ", shape_str(shape_of(a)),
               " but the parameter has shape ", shape_str(shape_of(p)));
  return a.mutable_data();
}

template <typename T>
const T* grad_of(const Array<T>& g, const py::array& p, const char* opt) {
  FASTNN_CHECK(g.size() == p.size(), opt, ": gradient has shape ", shape_str(shape_of(g)),
               " but the parameter has shape ", shape_str(shape_of(p)));
  return g.data();
}

template <typename T>
void sgd(InOut<T> p, Array<T> g, T lr) {
  T* pp = writable(p, p, "SGD", "param");
  const T* gp = grad_of(g, p, "SGD");
  py::gil_scoped_release nogil;
  cpu::sgd_update<T>(pp, gp, p.size(), lr);
}

template <typename T, void (*Fn)(T*, T*, const T*, int64_t, T, T)>
void one_state(InOut<T> p, InOut<T> s, Array<T> g, T a, T b, const char* opt) {
  T* pp = writable(p, p, opt, "param");
  T* sp = writable(s, p, opt, "state");
  const T* gp = grad_of(g, p, opt);
  py::gil_scoped_release nogil;
  Fn(pp, sp, gp, p.size(), a, b);
}

template <typename T>
void rmsprop(InOut<T> p, InOut<T> h, Array<T> g, T lr, T decay_rate, T eps) {
  T* pp = writable(p, p, "RMSprop", "param");
  T* hp = writable(h, p, "RMSprop", "h");
  const T* gp = grad_of(g, p, "RMSprop");
  py::gil_scoped_release nogil;
  cpu::rmsprop_update<T>(pp, hp, gp, p.size(), lr, decay_rate, eps);
}

template <typename T>
void adam(InOut<T> p, InOut<T> m, InOut<T> v, Array<T> g, T lr_t, T beta1, T beta2, T eps) {
  T* pp = writable(p, p, "Adam", "param");
  T* mp = writable(m, p, "Adam", "m");
  T* vp = writable(v, p, "Adam", "v");
  const T* gp = grad_of(g, p, "Adam");
  py::gil_scoped_release nogil;
  cpu::adam_update<T>(pp, mp, vp, gp, p.size(), lr_t, beta1, beta2, eps);
}

template <typename T>
void define(py::module_& m) {
  m.def("sgd_update", &sgd<T>, py::arg("p"), py::arg("g"), py::arg("lr"));
  m.def("momentum_update", &one_state<T, cpu::momentum_update<T>>, py::arg("p"), py::arg("v"),
        py::arg("g"), py::arg("lr"), py::arg("momentum"), py::arg("opt") = "Momentum");
  m.def("nesterov_update", &one_state<T, cpu::nesterov_update<T>>, py::arg("p"), py::arg("v"),
        py::arg("g"), py::arg("lr"), py::arg("momentum"), py::arg("opt") = "Nesterov");
  m.def("adagrad_update", &one_state<T, cpu::adagrad_update<T>>, py::arg("p"), py::arg("h"),
        py::arg("g"), py::arg("lr"), py::arg("eps"), py::arg("opt") = "AdaGrad");
  m.def("rmsprop_update", &rmsprop<T>, py::arg("p"), py::arg("h"), py::arg("g"), py::arg("lr"),
        py::arg("decay_rate"), py::arg("eps"));
  m.def("adam_update", &adam<T>, py::arg("p"), py::arg("m"), py::arg("v"), py::arg("g"),
        py::arg("lr_t"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"));
}

void bind_optim(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("optim", &bind_optim);

}  // namespace
}  // namespace fastnn::bind
