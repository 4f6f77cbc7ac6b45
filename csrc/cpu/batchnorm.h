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

// ---- Per-channel normalization of x (N, C, S): S = H*W (or L, or 1), channel c of sample n
// is the contiguous run x[(n*C + c)*S : +S]. Statistics are means over the elements of a
// normalization set (the mean summed in double; deviations and gradients in partial sums of 256
// elements in T, added up in double); var is the biased variance (mean of squares about the
// mean), inv_std = 1 / sqrt(var + eps), xn = (x - mean) * inv_std.

// Batch norm over channels (BatchNorm1d/2d training): the set of channel c is all n and s.
// out = gamma[c] * xn + beta[c]; mean, var, inv_std have C entries. N*S == 0 gives NaN
// statistics and an empty output.
template <typename T>
void channel_batchnorm_forward(const T* x, const T* gamma, const T* beta, T* out, T* xn, T* mean,
                               T* var, T* inv_std, int64_t N, int64_t C, int64_t S, double eps);

// Its backward: dbeta = sum dout, dgamma = sum dout * xn over the set, and
// dx = gamma * inv_std * (dout - dbeta / M - xn * dgamma / M), M = N*S.
template <typename T>
void channel_batchnorm_backward(const T* dout, const T* xn, const T* gamma, const T* inv_std,
                                T* dx, T* dgamma, T* dbeta, int64_t N, int64_t C, int64_t S);

// out = scale[c] * x + shift[c]: batch norm at inference with scale = gamma * inv_std of the
// running variance and shift = beta - scale * running_mean.
template <typename T>
void channel_affine(const T* x, const T* scale, const T* shift, T* out, int64_t N, int64_t C,
                    int64_t S);

// Group norm: the C channels form G groups of C/G consecutive channels, and the set of
// (n, g) is its channels' S elements each (contiguous); inv_std has N*G entries. Then
// out = gamma[c] * xn + beta[c].
template <typename T>
void group_norm_forward(const T* x, const T* gamma, const T* beta, T* out, T* xn, T* inv_std,
                        int64_t N, int64_t C, int64_t S, int64_t G, double eps);

// dgamma[c] = sum over n, s of dout * xn, dbeta[c] = sum of dout; with dxn = gamma[c] * dout,
// dx = inv_std * (dxn - mean(dxn) - xn * mean(dxn * xn)), means over the set of (n, g).
template <typename T>
void group_norm_backward(const T* dout, const T* xn, const T* gamma, const T* inv_std, T* dx,
                         T* dgamma, T* dbeta, int64_t N, int64_t C, int64_t S, int64_t G);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
