#include "bind/recurrent.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

constexpr const char* kLayer = "RNN";

// x (T, N, D) time-major; returns hs (T, N, H).
template <typename T>
Array<T> rnn_forward(Array<T> x, Opt<T> h0, Array<T> Wx, Array<T> Wh, Opt<T> b, bool relu,
                     bool torch_layout) {
  const auto s = seq_shape(kLayer, x);
  const int64_t H = hidden_size(kLayer, Wh, torch_layout, 1);
  check_shape(kLayer, "Wx", Wx, weight_shape(torch_layout, s.D, H));
  check_shape(kLayer, "Wh", Wh, weight_shape(torch_layout, H, H));
  check_shape(kLayer, "b", b, {H});
  check_shape(kLayer, "h0", h0, {s.N, H});
  auto hs = empty<T>({s.T, s.N, H});
  py::gil_scoped_release nogil;
  cpu::rnn_forward<T>(layout_of(torch_layout), relu, x.data(), data_or_null(h0), Wx.data(),
                   Wh.data(), data_or_null(b), s.T, s.N, s.D, H, hs.mutable_data());
  return hs;
}

// Returns (dx, dh0, dWx, dWh, db).
template <typename T>
py::tuple rnn_backward(Array<T> x, Opt<T> h0, Array<T> Wx, Array<T> Wh, Array<T> hs,
                       Opt<T> dhs, Opt<T> dhn, bool relu, bool torch_layout) {
  const auto s = seq_shape(kLayer, x);
  const int64_t H = hidden_size(kLayer, Wh, torch_layout, 1);
  check_shape(kLayer, "Wx", Wx, weight_shape(torch_layout, s.D, H));
  check_shape(kLayer, "Wh", Wh, weight_shape(torch_layout, H, H));
  check_shape(kLayer, "h0", h0, {s.N, H});
  check_shape(kLayer, "hs", hs, {s.T, s.N, H});
  check_shape(kLayer, "dhs", dhs, {s.T, s.N, H});
  check_shape(kLayer, "dhn", dhn, {s.N, H});
  auto dx = empty<T>(shape_of(x));
  auto dh0 = empty<T>({s.N, H});
  auto dWx = empty<T>(shape_of(Wx));
  auto dWh = empty<T>(shape_of(Wh));
  auto db = empty<T>({H});
  {
    py::gil_scoped_release nogil;
    cpu::rnn_backward<T>(layout_of(torch_layout), relu, x.data(), data_or_null(h0), Wx.data(),
                      Wh.data(), hs.data(), data_or_null(dhs), data_or_null(dhn), s.T, s.N, s.D,
                      H, dx.mutable_data(), dh0.mutable_data(), dWx.mutable_data(),
                      dWh.mutable_data(), db.mutable_data());
  }
  return py::make_tuple(dx, dh0, dWx, dWh, db);
}

template <typename T>
void define(py::module_& m) {
  m.def("rnn_forward", &rnn_forward<T>, py::arg("x"), py::arg("h0"), py::arg("Wx"),
        py::arg("Wh"), py::arg("b"), py::arg("relu"), py::arg("torch_layout"));
  m.def("rnn_backward", &rnn_backward<T>, py::arg("x"), py::arg("h0"), py::arg("Wx"),
        py::arg("Wh"), py::arg("hs"), py::arg("dhs"), py::arg("dhn"), py::arg("relu"),
        py::arg("torch_layout"));
}

void bind_rnn(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("rnn", &bind_rnn);

}  // namespace
}  // namespace fastnn::bind
