#include "bind/recurrent.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

constexpr const char* kLayer = "LSTM";

// Sizes (H, P) from Wh and the optional projection Whr (P, H); P == H without it.
template <typename T>
std::pair<int64_t, int64_t> lstm_sizes(const Array<T>& Wh, const Opt<T>& Whr, bool torch_layout) {
  const int64_t H = hidden_size(kLayer, Wh, torch_layout, 4);
  int64_t P = H;
  if (Whr) {
    FASTNN_CHECK(torch_layout, kLayer, ": a projection (Whr) needs the torch layout");
    FASTNN_CHECK(Whr->ndim() == 2 && Whr->shape(1) == H, kLayer, ": Whr has shape ",
                 shape_str(shape_of(*Whr)), " but (P, ", H, ") was expected");
    P = Whr->shape(0);
  }
  return {H, P};
}

// x (T, N, D) time-major; returns (hs (T, N, P), cs (T, N, H), gates (T, N, 4H), hfull or None).
template <typename T>
py::tuple lstm_forward(Array<T> x, Opt<T> h0, Opt<T> c0, Array<T> Wx, Array<T> Wh, Opt<T> b,
                       Opt<T> Whr, bool torch_layout) {
  const auto s = seq_shape(kLayer, x);
  const auto [H, P] = lstm_sizes(Wh, Whr, torch_layout);
  check_shape(kLayer, "Wx", Wx, weight_shape(torch_layout, s.D, 4 * H));
  check_shape(kLayer, "Wh", Wh, weight_shape(torch_layout, P, 4 * H));
  check_shape(kLayer, "b", b, {4 * H});
  check_shape(kLayer, "h0", h0, {s.N, P});
  check_shape(kLayer, "c0", c0, {s.N, H});
  auto hs = empty<T>({s.T, s.N, P});
  auto cs = empty<T>({s.T, s.N, H});
  auto gates = empty<T>({s.T, s.N, 4 * H});
  py::object hfull = py::none();
  T* hfull_ptr = nullptr;
  if (Whr) {
    auto a = empty<T>({s.T, s.N, H});
    hfull_ptr = a.mutable_data();
    hfull = a;
  }
  {
    py::gil_scoped_release nogil;
    cpu::lstm_forward<T>(layout_of(torch_layout), x.data(), data_or_null(h0), data_or_null(c0),
                      Wx.data(), Wh.data(), data_or_null(b), data_or_null(Whr), s.T, s.N, s.D, H,
                      P, hs.mutable_data(), cs.mutable_data(), gates.mutable_data(), hfull_ptr);
  }
  return py::make_tuple(hs, cs, gates, hfull);
}

// Returns (dx, dh0, dc0, dWx, dWh, db, dWhr or None).
template <typename T>
py::tuple lstm_backward(Array<T> x, Opt<T> h0, Opt<T> c0, Array<T> Wx, Array<T> Wh, Opt<T> Whr,
                        Array<T> hs, Array<T> cs, Array<T> gates, Opt<T> hfull, Opt<T> dhs,
                        Opt<T> dhn, Opt<T> dcn, bool torch_layout) {
  const auto s = seq_shape(kLayer, x);
  const auto [H, P] = lstm_sizes(Wh, Whr, torch_layout);
  check_shape(kLayer, "Wx", Wx, weight_shape(torch_layout, s.D, 4 * H));
  check_shape(kLayer, "Wh", Wh, weight_shape(torch_layout, P, 4 * H));
  check_shape(kLayer, "h0", h0, {s.N, P});
  check_shape(kLayer, "c0", c0, {s.N, H});
  check_shape(kLayer, "hs", hs, {s.T, s.N, P});
  check_shape(kLayer, "cs", cs, {s.T, s.N, H});
  check_shape(kLayer, "gates", gates, {s.T, s.N, 4 * H});
  FASTNN_CHECK(bool(Whr) == bool(hfull), kLayer, ": hfull must be given exactly with Whr");
  check_shape(kLayer, "hfull", hfull, {s.T, s.N, H});
  check_shape(kLayer, "dhs", dhs, {s.T, s.N, P});
  check_shape(kLayer, "dhn", dhn, {s.N, P});
  check_shape(kLayer, "dcn", dcn, {s.N, H});
  auto dx = empty<T>(shape_of(x));
  auto dh0 = empty<T>({s.N, P});
  auto dc0 = empty<T>({s.N, H});
  auto dWx = empty<T>(shape_of(Wx));
  auto dWh = empty<T>(shape_of(Wh));
  auto db = empty<T>({4 * H});
  py::object dWhr = py::none();
  T* dWhr_ptr = nullptr;
  if (Whr) {
    auto a = empty<T>({P, H});
    dWhr_ptr = a.mutable_data();
    dWhr = a;
  }
  {
    py::gil_scoped_release nogil;
    cpu::lstm_backward<T>(layout_of(torch_layout), x.data(), data_or_null(h0), data_or_null(c0),
                       Wx.data(), Wh.data(), data_or_null(Whr), hs.data(), cs.data(),
                       gates.data(), data_or_null(hfull), data_or_null(dhs), data_or_null(dhn),
                       data_or_null(dcn), s.T, s.N, s.D, H, P, dx.mutable_data(),
                       dh0.mutable_data(), dc0.mutable_data(), dWx.mutable_data(),
                       dWh.mutable_data(), db.mutable_data(), dWhr_ptr);
  }
  return py::make_tuple(dx, dh0, dc0, dWx, dWh, db, dWhr);
}

template <typename T>
void define(py::module_& m) {
  m.def("lstm_forward", &lstm_forward<T>, py::arg("x"), py::arg("h0"), py::arg("c0"),
        py::arg("Wx"), py::arg("Wh"), py::arg("b"), py::arg("Whr"), py::arg("torch_layout"));
  m.def("lstm_backward", &lstm_backward<T>, py::arg("x"), py::arg("h0"), py::arg("c0"),
        py::arg("Wx"), py::arg("Wh"), py::arg("Whr"), py::arg("hs"), py::arg("cs"),
        py::arg("gates"), py::arg("hfull"), py::arg("dhs"), py::arg("dhn"), py::arg("dcn"),
        py::arg("torch_layout"));
}

void bind_lstm(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("lstm", &bind_lstm);

}  // namespace
}  // namespace fastnn::bind
