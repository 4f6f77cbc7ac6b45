// Batch normalization over the rows of x (N, D), per column, in three kinds of step: column
// sums (column_partial in common.h, accumulated in double for the statistics), a per-column
// finish, and a per-element map. Formulas of csrc/cpu/batchnorm.cpp.
#pragma once
#include "cuda/body/common.h"

namespace fastnn::body {

// Column j's statistics from sum_x = sum x[:, j] and sum_sq = sum (x[:, j] - mu[j])^2 where
// mu[j] = sum_x / N: std = sqrt(var + eps) and the new running averages. N == 0 keeps the
// running averages and gives std = NaN.
template <typename T>
FASTNN_HD void batchnorm_column_stats(double sum_sq, const T* mu, const T* running_mean,
                                      const T* running_var, T* std, T* new_running_mean,
                                      T* new_running_var, int64_t N, double momentum,
                                      double eps, int64_t j) {
  if (N == 0) {
    new_running_mean[j] = running_mean[j];
    new_running_var[j] = running_var[j];
    std[j] = quiet_nan<T>();
    return;
  }
  const T var = static_cast<T>(sum_sq / N);
  std[j] = hd_sqrt(var + static_cast<T>(eps));
  const T m = static_cast<T>(momentum), one_m = static_cast<T>(1.0 - momentum);
  new_running_mean[j] = m * running_mean[j] + one_m * mu[j];
  new_running_var[j] = m * running_var[j] + one_m * var;
}

// Element idx of (N, D): xc = x - mu, xn = xc / std, out = gamma * xn + beta.
template <typename T>
FASTNN_HD void batchnorm_normalize_element(const T* x, const T* mu, const T* std, const T* gamma,
                                           const T* beta, T* xc, T* xn, T* out, int64_t D,
                                           int64_t idx) {
  const int64_t j = idx % D;
  xc[idx] = x[idx] - mu[j];
  xn[idx] = xc[idx] / std[j];
  out[idx] = gamma[j] * xn[idx] + beta[j];
}

template <typename T>
FASTNN_HD T batchnorm_infer_element(const T* x, const T* gamma, const T* beta,
                                    const T* running_mean, const T* running_var, T eps, int64_t D,
                                    int64_t idx) {
  const int64_t j = idx % D;
  return gamma[j] * ((x[idx] - running_mean[j]) / hd_sqrt(running_var[j] + eps)) + beta[j];
}

// Backward, per column, from the column sums of dout, xc * dout and xc:
// dx = a * dout + c * xc - dmu_n with a = gamma / std, c = (2 / N) * dvar,
// dvar = 0.5 * dstd / std, dstd = -gamma * sum(dout * xc) / std^2, dmu_n = sum(dxc) / N.
template <typename T>
FASTNN_HD void batchnorm_backward_column(const T* gamma, const T* std, const T* s_dout,
                                         const T* s_xc_dout, const T* s_xc, T* a, T* c, T* dmu_n,
                                         int64_t N, int64_t j) {
  const T dstd = -gamma[j] * s_xc_dout[j] / (std[j] * std[j]);
  const T dvar = T(0.5) * dstd / std[j];
  a[j] = gamma[j] / std[j];
  c[j] = T(2) / T(N) * dvar;
  dmu_n[j] = (a[j] * s_dout[j] + c[j] * s_xc[j]) / T(N);
}

template <typename T>
FASTNN_HD T batchnorm_backward_element(const T* dout, const T* xc, const T* a, const T* c,
                                       const T* dmu_n, int64_t D, int64_t idx) {
  const int64_t j = idx % D;
  return a[j] * dout[idx] + c[j] * xc[idx] - dmu_n[j];
}

}  // namespace fastnn::body
