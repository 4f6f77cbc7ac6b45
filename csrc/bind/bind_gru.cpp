#include "bind/recurrent.h"
#include "cpu/dispatch.h"

namespace fastnn::bind {
namespace {

constexpr const char* kLayer = "GRU";

// x (T, N, D) time-major; returns (hs (T, N, H), gates (T, N, 3H), aux (T, N, H)).
template <typename T>
py::tuple gru_forward(Array<T> x, Opt<T> h0, Array<T> Wx, Array<T> Wh, Opt<T> bx, Opt<T> bh,
                      bool torch_layout) {
  const auto s = seq_shape(kLayer, x);
  const int64_t H = hidden_size(kLayer, Wh, torch_layout, 3);
  check_shape(kLayer, "Wx", Wx, weight_shape(torch_layout, s.D, 3 * H));
  check_shape(kLayer, "Wh", Wh, weight_shape(torch_layout, H, 3 * H));
  check_shape(kLayer, "bx", bx, {3 * H});
  check_shape(kLayer, "bh", bh, {3 * H});
  FASTNN_CHECK(torch_layout || !bh, kLayer, ": the book's GRU has a single bias");
  check_shape(kLayer, "h0", h0, {s.N, H});
  auto hs = empty<T>({s.T, s.N, H});
  auto gates = empty<T>({s.T, s.N, 3 * H});
  auto aux = empty<T>({s.T, s.N, H});
  {
    py::gil_scoped_release nogil;
    cpu::gru_forward<T>(layout_of(torch_layout), x.data(), data_or_null(h0), Wx.data(), Wh.data(),
                     data_or_null(bx), data_or_null(bh), s.T, s.N, s.D, H, hs.mutable_data(),
                     gates.mutable_data(), aux.mutable_data());
  }
  return py::make_tuple(hs, gates, aux);
}

// Returns (dx, dh0, dWx, dWh, dbx, dbh or None).
template <typename T>
py::tuple gru_backward(Array<T> x, Opt<T> h0, Array<T> Wx, Array<T> Wh, Array<T> hs,
                       Array<T> gates, Array<T> aux, Opt<T> dhs, Opt<T> dhn, bool torch_layout) {
  const auto s = seq_shape(kLayer, x);
  const int64_t H = hidden_size(kLayer, Wh, torch_layout, 3);
  check_shape(kLayer, "Wx", Wx, weight_shape(torch_layout, s.D, 3 * H));
  check_shape(kLayer, "Wh", Wh, weight_shape(torch_layout, H, 3 * H));
  check_shape(kLayer, "h0", h0, {s.N, H});
  check_shape(kLayer, "hs", hs, {s.T, s.N, H});
  check_shape(kLayer, "gates", gates, {s.T, s.N, 3 * H});
  check_shape(kLayer, "aux", aux, {s.T, s.N, H});
  check_shape(kLayer, "dhs", dhs, {s.T, s.N, H});
  check_shape(kLayer, "dhn", dhn, {s.N, H});
  auto dx = empty<T>(shape_of(x));
  auto dh0 = empty<T>({s.N, H});
  auto dWx = empty<T>(shape_of(Wx));
  auto dWh = empty<T>(shape_of(Wh));
  auto dbx = empty<T>({3 * H});
  py::object dbh = py::none();
  T* dbh_ptr = nullptr;
  if (torch_layout) {
    auto a = empty<T>({3 * H});
    dbh_ptr = a.mutable_data();
    dbh = a;
  }
  {
    py::gil_scoped_release nogil;
    cpu::gru_backward<T>(layout_of(torch_layout), x.data(), data_or_null(h0), Wx.data(), Wh.data(),
                      hs.data(), gates.data(), aux.data(), data_or_null(dhs), data_or_null(dhn),
                      s.T, s.N, s.D, H, dx.mutable_data(), dh0.mutable_data(),
                      dWx.mutable_data(), dWh.mutable_data(), dbx.mutable_data(), dbh_ptr);
  }
  return py::make_tuple(dx, dh0, dWx, dWh, dbx, dbh);
}

template <typename T>
void define(py::module_& m) {
  m.def("gru_forward", &gru_forward<T>, py::arg("x"), py::arg("h0"), py::arg("Wx"),
        py::arg("Wh"), py::arg("bx"), py::arg("bh"), py::arg("torch_layout"));
  m.def("gru_backward", &gru_backward<T>, py::arg("x"), py::arg("h0"), py::arg("Wx"),
        py::arg("Wh"), py::arg("hs"), py::arg("gates"), py::arg("aux"), py::arg("dhs"),
        py::arg("dhn"), py::arg("torch_layout"));
}

void bind_gru(py::module_& m) {
  define<float>(m);
  define<double>(m);
}

Registrar reg("gru", &bind_gru);

}  // namespace
}  // namespace fastnn::bind
