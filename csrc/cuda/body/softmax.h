// Softmax and softmax-cross-entropy bodies (same formulas as csrc/cpu/softmax.cpp). A label
// outside [0, C) that is not ignore_label cannot raise on the device: its row's loss and
// gradient are NaN instead of a read out of bounds.
#pragma once
#include "cuda/body/common.h"

namespace fastnn::body {

// Row i of y = softmax(x) over rows of length C, the row maximum subtracted first; a NaN in
// the row makes the whole row NaN (through the sum), as in NumPy.
template <typename T>
FASTNN_HD void softmax_row(const T* x, T* y, int64_t C, int64_t i) {
  const T* xi = x + i * C;
  T* yi = y + i * C;
  T m = neg_inf<T>();
  for (int64_t j = 0; j < C; ++j) m = xi[j] > m ? xi[j] : m;
  T sum = T(0);
  for (int64_t j = 0; j < C; ++j) {
    yi[j] = hd_exp(xi[j] - m);
    sum += yi[j];
  }
  for (int64_t j = 0; j < C; ++j) yi[j] /= sum;
}

FASTNN_HD bool label_ignored(bool has_ignore, int64_t ignore_label, int64_t t) {
  return has_ignore && t == ignore_label;
}

// -log(y[i, t_i] + eps) for row i of the softmax output y (N, C); 0 for an ignored row.
template <typename T>
FASTNN_HD T cross_entropy_row(const T* y, const int64_t* t, int64_t C, T eps, bool has_ignore,
                              int64_t ignore_label, int64_t i) {
  const int64_t ti = t[i];
  if (label_ignored(has_ignore, ignore_label, ti)) return T(0);
  if (ti < 0 || ti >= C) return quiet_nan<T>();
  return -hd_log(y[i * C + ti] + eps);
}

// dx[idx] = (y - onehot(t)) * scale for idx in [0, N*C); 0 on ignored rows. dx may alias y.
template <typename T>
FASTNN_HD T softmax_ce_backward_element(const T* y, const int64_t* t, int64_t C, T scale,
                                        bool has_ignore, int64_t ignore_label, int64_t idx) {
  const int64_t i = idx / C, j = idx % C, ti = t[i];
  if (label_ignored(has_ignore, ignore_label, ti)) return T(0);
  if (ti < 0 || ti >= C) return quiet_nan<T>();
  return (j == ti ? y[idx] - T(1) : y[idx]) * scale;
}

// Dense (one-hot or soft) targets: dx = (y - t) * scale.
template <typename T>
FASTNN_HD T softmax_ce_backward_dense_element(const T* y, const T* t, T scale, int64_t idx) {
  return (y[idx] - t[idx]) * scale;
}

}  // namespace fastnn::body
