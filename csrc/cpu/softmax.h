#pragma once
#include <cstdint>

#include "core/isa.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// Softmax over each row of x (rows, C), with the row maximum subtracted before exp.
template <typename T> void softmax_forward(const T* x, T* y, int64_t rows, int64_t C);

// y = softmax(x) for x (N, C) and integer labels t (N,) already checked to lie in [0, C)
// (rows whose label equals ignore_label, when has_ignore, are skipped). Returns the sum over
// the remaining rows of -log(y[i, t[i]] + eps), computed in T and accumulated in double;
// *count receives how many rows were summed.
template <typename T>
double softmax_cross_entropy_forward(const T* x, const int64_t* t, T* y, int64_t N, int64_t C,
                                     double eps, bool has_ignore, int64_t ignore_label,
                                     int64_t* count);

// dx = (y - onehot(t)) * scale, and 0 on ignored rows. dx may alias y.
template <typename T>
void softmax_cross_entropy_backward(const T* y, const int64_t* t, T* dx, int64_t N, int64_t C,
                                    double scale, bool has_ignore, int64_t ignore_label);

// dx = (y - t) * scale for dense (one-hot or soft) targets t of y's shape; n elements.
template <typename T>
void softmax_cross_entropy_backward_dense(const T* y, const T* t, T* dx, int64_t n, double scale);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
