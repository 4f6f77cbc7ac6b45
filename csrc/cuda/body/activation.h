// Per-element bodies of Relu, Sigmoid, Tanh (same formulas as csrc/cpu/activation.cpp).
#pragma once
#include "cuda/body/common.h"

namespace fastnn::body {

// NaN is not <= 0: it passes through, as in NumPy.
template <typename T>
FASTNN_HD void relu_forward(const T* x, T* y, bool* mask, int64_t i) {
  const bool off = x[i] <= T(0);
  mask[i] = off;
  y[i] = off ? T(0) : x[i];
}

template <typename T>
FASTNN_HD void relu_backward(const T* dout, const bool* mask, T* dx, int64_t i) {
  dx[i] = mask[i] ? T(0) : dout[i];
}

template <typename T>
FASTNN_HD void sigmoid_forward(const T* x, T* y, int64_t i) {
  y[i] = T(1) / (T(1) + hd_exp(-x[i]));
}

template <typename T>
FASTNN_HD void sigmoid_backward(const T* dout, const T* y, T* dx, int64_t i) {
  dx[i] = dout[i] * (T(1) - y[i]) * y[i];
}

template <typename T>
FASTNN_HD void tanh_forward(const T* x, T* y, int64_t i) {
  y[i] = hd_tanh(x[i]);
}

template <typename T>
FASTNN_HD void tanh_backward(const T* dout, const T* y, T* dx, int64_t i) {
  dx[i] = dout[i] * (T(1) - y[i] * y[i]);
}

}  // namespace fastnn::body
