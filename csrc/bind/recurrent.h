// Helpers shared by bind_rnn.cpp, bind_lstm.cpp and bind_gru.cpp.
#pragma once
#include <pybind11/stl.h>

#include <optional>

#include "bind/registry.h"
#include "core/shapes.h"

namespace fastnn::bind {

template <typename T>
using Opt = std::optional<Array<T>>;

template <typename T>
const T* data_or_null(const Opt<T>& a) {
  return a ? a->data() : nullptr;
}

inline Layout layout_of(bool torch_layout) {
  return torch_layout ? Layout::Torch : Layout::Book;
}

inline void check_shape(const char* layer, const char* name, const py::array& a,
                        const std::vector<int64_t>& want) {
  FASTNN_CHECK(shape_of(a) == want, layer, ": ", name, " has shape ", shape_str(shape_of(a)),
               " but ", shape_str(want), " was expected");
}

template <typename T>
void check_shape(const char* layer, const char* name, const Opt<T>& a,
                 const std::vector<int64_t>& want) {
  if (a) check_shape(layer, name, *a, want);
}

// Shape of a weight whose gate dimension is G: (K, G) in the book's layout, (G, K) in torch's.
inline std::vector<int64_t> weight_shape(bool torch_layout, int64_t K, int64_t G) {
  return torch_layout ? std::vector<int64_t>{G, K} : std::vector<int64_t>{K, G};
}

// (T, N, D) from a time-major sequence x.
struct SeqShape {
  int64_t T, N, D;
};

inline SeqShape seq_shape(const char* layer, const py::array& x) {
  FASTNN_CHECK(x.ndim() == 3, layer, ": x must be 3-D (T, N, D), got shape ",
               shape_str(shape_of(x)));
  return {x.shape(0), x.shape(1), x.shape(2)};
}

// Hidden size H from Wh, whose gate dimension is g * H.
inline int64_t hidden_size(const char* layer, const py::array& Wh, bool torch_layout, int64_t g) {
  FASTNN_CHECK(Wh.ndim() == 2, layer, ": Wh must be 2-D, got shape ", shape_str(shape_of(Wh)));
  const int64_t G = torch_layout ? Wh.shape(0) : Wh.shape(1);
  FASTNN_CHECK(G % g == 0 && G > 0, layer, ": Wh has shape ", shape_str(shape_of(Wh)),
               ", whose gate dimension is not a positive multiple of ", g);
  return G / g;
}

}  // namespace fastnn::bind
