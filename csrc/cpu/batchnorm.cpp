#include "cpu/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/parallel.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

namespace {
// Columns are handled in blocks: each thread owns a block and walks all rows of it, so the
// per-column sums need no atomics and the inner loop runs along contiguous memory.
constexpr int64_t kCols = 64;
inline int64_t num_blocks(int64_t D) { return (D + kCols - 1) / kCols; }
}  // namespace

template <typename T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* out, T* xc, T* xn, T* std,
                             T* new_running_mean, T* new_running_var, int64_t N, int64_t D,
                             double momentum, double eps) {
  if (N == 0) {
    std::copy(running_mean, running_mean + D, new_running_mean);
    std::copy(running_var, running_var + D, new_running_var);
    std::fill(std, std + D, std::numeric_limits<T>::quiet_NaN());
    return;
  }
  const T m = static_cast<T>(momentum), one_m = static_cast<T>(1.0 - momentum);
  const T e = static_cast<T>(eps);
  const int64_t blocks = num_blocks(D);
#pragma omp parallel for if (worth_parallel(N * D) && blocks > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kCols, w = std::min(D, j0 + kCols) - j0;
    double acc[kCols];
    T mu[kCols];
    std::fill(acc, acc + w, 0.0);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t k = 0; k < w; ++k) acc[k] += x[i * D + j0 + k];
    for (int64_t k = 0; k < w; ++k) {
      mu[k] = static_cast<T>(acc[k] / N);
      acc[k] = 0.0;
    }
    for (int64_t i = 0; i < N; ++i)
      for (int64_t k = 0; k < w; ++k) {
        const T c = x[i * D + j0 + k] - mu[k];
        xc[i * D + j0 + k] = c;
        acc[k] += static_cast<double>(c) * c;
      }
    for (int64_t k = 0; k < w; ++k) {
      const int64_t j = j0 + k;
      const T var = static_cast<T>(acc[k] / N);
      std[j] = std::sqrt(var + e);
      new_running_mean[j] = m * running_mean[j] + one_m * mu[k];
      new_running_var[j] = m * running_var[j] + one_m * var;
    }
    for (int64_t i = 0; i < N; ++i)
      for (int64_t k = 0; k < w; ++k) {
        const int64_t ij = i * D + j0 + k, j = j0 + k;
        xn[ij] = xc[ij] / std[j];
        out[ij] = gamma[j] * xn[ij] + beta[j];
      }
  }
}

template <typename T>
void batchnorm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* out, int64_t N, int64_t D, double eps) {
  const T e = static_cast<T>(eps);
#pragma omp parallel for if (worth_parallel(N * D))
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < D; ++j)
      out[i * D + j] =
          gamma[j] * ((x[i * D + j] - running_mean[j]) / std::sqrt(running_var[j] + e)) + beta[j];
}

template <typename T>
void batchnorm_backward(const T* dout, const T* gamma, const T* xc, const T* xn, const T* std,
                        T* dx, T* dgamma, T* dbeta, int64_t N, int64_t D) {
  const int64_t blocks = num_blocks(D);
#pragma omp parallel for if (worth_parallel(N * D) && blocks > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kCols, w = std::min(D, j0 + kCols) - j0;
    // Column sums of dout, xn * dout, xc * dout and xc.
    T s_dout[kCols], s_xn_dout[kCols], s_xc_dout[kCols], s_xc[kCols];
    std::fill(s_dout, s_dout + w, T(0));
    std::fill(s_xn_dout, s_xn_dout + w, T(0));
    std::fill(s_xc_dout, s_xc_dout + w, T(0));
    std::fill(s_xc, s_xc + w, T(0));
    for (int64_t i = 0; i < N; ++i)
      for (int64_t k = 0; k < w; ++k) {
        const int64_t ij = i * D + j0 + k;
        s_dout[k] += dout[ij];
        s_xn_dout[k] += xn[ij] * dout[ij];
        s_xc_dout[k] += xc[ij] * dout[ij];
        s_xc[k] += xc[ij];
      }
    // dxc = gamma * dout / std + (2 / N) * xc * dvar, with dvar = 0.5 * dstd / std and
    // dstd = -gamma * sum(dout * xc) / std^2; dmu = sum dxc; dx = dxc - dmu / N.
    T a[kCols], c[kCols], dmu_n[kCols];
    for (int64_t k = 0; k < w; ++k) {
      const int64_t j = j0 + k;
      dbeta[j] = s_dout[k];
      dgamma[j] = s_xn_dout[k];
      const T dstd = -gamma[j] * s_xc_dout[k] / (std[j] * std[j]);
      const T dvar = T(0.5) * dstd / std[j];
      a[k] = gamma[j] / std[j];
      c[k] = T(2) / T(N) * dvar;
      dmu_n[k] = (a[k] * s_dout[k] + c[k] * s_xc[k]) / T(N);
    }
    for (int64_t i = 0; i < N; ++i)
      for (int64_t k = 0; k < w; ++k) {
        const int64_t ij = i * D + j0 + k;
        dx[ij] = a[k] * dout[ij] + c[k] * xc[ij] - dmu_n[k];
      }
  }
}

#define FASTNN_INSTANTIATE(T)                                                                  \
  template void batchnorm_forward_train<T>(const T*, const T*, const T*, const T*, const T*,   \
                                           T*, T*, T*, T*, T*, T*, int64_t, int64_t, double,   \
                                           double);                                            \
  template void batchnorm_forward_infer<T>(const T*, const T*, const T*, const T*, const T*,   \
                                           T*, int64_t, int64_t, double);                      \
  template void batchnorm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, \
                                      T*, int64_t, int64_t);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
