#pragma once
#include <cstdint>

#include "core/isa.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// Batch normalization over the rows of x (N, D), per column (the book flattens 4-D input to
// (N, C*H*W) first). eps is the book's 10e-7, inside std = sqrt(var + eps).

// Training: batch mean mu and variance var (mean of xc^2); xc = x - mu, std, xn = xc / std,
// out = gamma * xn + beta; the running averages become
// momentum * running + (1 - momentum) * batch statistic, written to new_running_{mean,var}.
// An empty batch (N == 0) leaves the running averages as they were and std = NaN.
template <typename T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* out, T* xc, T* xn, T* std,
                             T* new_running_mean, T* new_running_var, int64_t N, int64_t D,
                             double momentum, double eps);

// Inference: out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.
template <typename T>
void batchnorm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* out, int64_t N, int64_t D, double eps);

// Backward through the training forward: dbeta = sum dout, dgamma = sum xn * dout, and dx by
// the book's chain (dxn -> dxc, dstd -> dvar -> dxc, dmu -> dx).
template <typename T>
void batchnorm_backward(const T* dout, const T* gamma, const T* xc, const T* xn, const T* std,
                        T* dx, T* dgamma, T* dbeta, int64_t N, int64_t D);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
