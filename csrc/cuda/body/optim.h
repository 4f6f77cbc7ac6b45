// One element of each in-place optimizer update (formulas of csrc/cpu/optim.h).
#pragma once
#include "cuda/body/common.h"

namespace fastnn::body {

template <typename T>
FASTNN_HD void sgd_element(T* p, const T* g, T lr, int64_t i) {
  p[i] -= lr * g[i];
}

template <typename T>
FASTNN_HD void momentum_element(T* p, T* v, const T* g, T lr, T momentum, int64_t i) {
  v[i] = momentum * v[i] - lr * g[i];
  p[i] += v[i];
}

template <typename T>
FASTNN_HD void nesterov_element(T* p, T* v, const T* g, T lr, T momentum, int64_t i) {
  v[i] = momentum * v[i] - lr * g[i];
  p[i] += momentum * momentum * v[i];
  p[i] -= (T(1) + momentum) * lr * g[i];
}

template <typename T>
FASTNN_HD void adagrad_element(T* p, T* h, const T* g, T lr, T eps, int64_t i) {
  h[i] += g[i] * g[i];
  p[i] -= lr * g[i] / (hd_sqrt(h[i]) + eps);
}

template <typename T>
FASTNN_HD void rmsprop_element(T* p, T* h, const T* g, T lr, T decay_rate, T eps, int64_t i) {
  h[i] = decay_rate * h[i] + (T(1) - decay_rate) * g[i] * g[i];
  p[i] -= lr * g[i] / (hd_sqrt(h[i]) + eps);
}

template <typename T>
FASTNN_HD void adam_element(T* p, T* m, T* v, const T* g, T lr_t, T beta1, T beta2, T eps,
                            int64_t i) {
  m[i] += (T(1) - beta1) * (g[i] - m[i]);
  v[i] += (T(1) - beta2) * (g[i] * g[i] - v[i]);
  p[i] -= lr_t * m[i] / (hd_sqrt(v[i]) + eps);
}

}  // namespace fastnn::body
