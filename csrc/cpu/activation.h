#pragma once
#include <cstdint>

#include "core/isa.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// Relu: y = x where x > 0 else 0; mask[i] = 1 where x <= 0 (the book's Relu.mask).
template <typename T> void relu_forward(const T* x, T* y, bool* mask, int64_t n);
// dx = dout where mask == 0 else 0 (dx may alias dout, as the book's layer writes into dout).
template <typename T> void relu_backward(const T* dout, const bool* mask, T* dx, int64_t n);

// Sigmoid: y = 1 / (1 + exp(-x)); dx = dout * (1 - y) * y.
template <typename T> void sigmoid_forward(const T* x, T* y, int64_t n);
template <typename T> void sigmoid_backward(const T* dout, const T* y, T* dx, int64_t n);

// Tanh: y = tanh(x); dx = dout * (1 - y^2).
template <typename T> void tanh_forward(const T* x, T* y, int64_t n);
template <typename T> void tanh_backward(const T* dout, const T* y, T* dx, int64_t n);

// ReLU6 (MobileNet): y = min(max(x, 0), 6); dx = dout where 0 < y < 6, else 0 (NaN x gives
// NaN y and a zero gradient).
template <typename T> void relu6_forward(const T* x, T* y, int64_t n);
template <typename T> void relu6_backward(const T* dout, const T* y, T* dx, int64_t n);

// SiLU (swish): y = x * s, s = 1 / (1 + exp(-x)); dx = dout * s * (1 + x * (1 - s)), s
// recomputed from the forward input x.
template <typename T> void silu_forward(const T* x, T* y, int64_t n);
template <typename T> void silu_backward(const T* dout, const T* x, T* dx, int64_t n);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
