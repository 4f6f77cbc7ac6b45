#pragma once
#include <cstdint>

#include "core/isa.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// In-place parameter updates of the book's common/optimizer.py, one fused pass over n elements
// (p: parameter, g: gradient, v/h/m: optimizer state of the same size).

// SGD: p -= lr * g
template <typename T> void sgd_update(T* p, const T* g, int64_t n, T lr);
// Momentum: v = momentum * v - lr * g; p += v
template <typename T> void momentum_update(T* p, T* v, const T* g, int64_t n, T lr, T momentum);
// Nesterov (the book's form): v = momentum * v - lr * g;
// p += momentum^2 * v - (1 + momentum) * lr * g
template <typename T> void nesterov_update(T* p, T* v, const T* g, int64_t n, T lr, T momentum);
// AdaGrad: h += g^2; p -= lr * g / (sqrt(h) + eps)
template <typename T> void adagrad_update(T* p, T* h, const T* g, int64_t n, T lr, T eps);
// RMSprop: h = decay_rate * h + (1 - decay_rate) * g^2; p -= lr * g / (sqrt(h) + eps)
template <typename T>
void rmsprop_update(T* p, T* h, const T* g, int64_t n, T lr, T decay_rate, T eps);
// Adam (the book's form, lr_t already bias-corrected by the caller):
// m += (1 - beta1) * (g - m); v += (1 - beta2) * (g^2 - v); p -= lr_t * m / (sqrt(v) + eps)
template <typename T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t n, T lr_t, T beta1, T beta2, T eps);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
