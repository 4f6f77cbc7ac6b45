#include "cpu/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/buffers.h"
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

// ---- per-channel normalization

namespace {

// Sums of values near zero (deviations from the mean, gradients) run in T over blocks of
// kSumBlock elements (full-width vectors; a block's rounding error stays near T's epsilon)
// and add up in double across blocks.
constexpr int64_t kSumBlock = 256;

// Sum of a[0:n] in double, added to s: data far from zero (mean 1e4, spread 1) would lose
// the mean's low digits in float partial sums, the more so where they do not vectorise.
template <typename T>
inline void run_sum(const T* a, int64_t n, double& s) {
  double p = 0.0;
#pragma omp simd reduction(+ : p)
  for (int64_t i = 0; i < n; ++i) p += a[i];
  s += p;
}

// Sum of (a[i] - mu)^2, added to s: the variance about the mean already known (two passes; a
// one-pass shifted sum lost 1e-3 relative in float when its shift was an outlier).
template <typename T>
inline void run_sq_dev(const T* a, T mu, int64_t n, double& s) {
  for (int64_t i0 = 0; i0 < n; i0 += kSumBlock) {
    const int64_t i1 = std::min(n, i0 + kSumBlock);
    T q = 0;
#pragma omp simd reduction(+ : q)
    for (int64_t i = i0; i < i1; ++i) {
      const T d = a[i] - mu;
      q += d * d;
    }
    s += q;
  }
}

// Sums of d[i] and d[i] * xn[i], added to sd and sdx.
template <typename T>
inline void run_sums2(const T* d, const T* xn, int64_t n, double& sd, double& sdx) {
  for (int64_t i0 = 0; i0 < n; i0 += kSumBlock) {
    const int64_t i1 = std::min(n, i0 + kSumBlock);
    T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
    for (int64_t i = i0; i < i1; ++i) {
      a += d[i];
      b += d[i] * xn[i];
    }
    sd += a;
    sdx += b;
  }
}

// xn = (x - mu) * inv, out = g * xn + b over a run.
template <typename T>
inline void run_normalize(const T* x, T mu, T inv, T g, T b, T* xn, T* out, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T v = (x[i] - mu) * inv;
    xn[i] = v;
    out[i] = g * v + b;
  }
}

}  // namespace

template <typename T>
void channel_batchnorm_forward(const T* x, const T* gamma, const T* beta, T* out, T* xn, T* mean,
                               T* var, T* inv_std, int64_t N, int64_t C, int64_t S, double eps) {
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static) if (worth_parallel(N * C * S) && C > 1)
  for (int64_t c = 0; c < C; ++c) {
    double s1 = 0.0, s2 = 0.0;
    for (int64_t n = 0; n < N; ++n) run_sum(x + (n * C + c) * S, S, s1);
    const T mu = static_cast<T>(s1 / M);
    for (int64_t n = 0; n < N; ++n) run_sq_dev(x + (n * C + c) * S, mu, S, s2);
    const T v = static_cast<T>(s2 / M);
    const T inv = T(1) / std::sqrt(v + static_cast<T>(eps));
    mean[c] = mu;
    var[c] = v;
    inv_std[c] = inv;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c) * S;
      run_normalize(x + o, mu, inv, gamma[c], beta[c], xn + o, out + o, S);
    }
  }
}

template <typename T>
void channel_batchnorm_backward(const T* dout, const T* xn, const T* gamma, const T* inv_std,
                                T* dx, T* dgamma, T* dbeta, int64_t N, int64_t C, int64_t S) {
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static) if (worth_parallel(N * C * S) && C > 1)
  for (int64_t c = 0; c < C; ++c) {
    double sd = 0.0, sdx = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c) * S;
      run_sums2(dout + o, xn + o, S, sd, sdx);
    }
    dbeta[c] = static_cast<T>(sd);
    dgamma[c] = static_cast<T>(sdx);
    if (M == 0) continue;
    const T a = gamma[c] * inv_std[c], md = static_cast<T>(sd / M), mdx = static_cast<T>(sdx / M);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c) * S;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) dx[o + i] = a * (dout[o + i] - md - xn[o + i] * mdx);
    }
  }
}

template <typename T>
void channel_affine(const T* x, const T* scale, const T* shift, T* out, int64_t N, int64_t C,
                    int64_t S) {
#pragma omp parallel for schedule(static) if (worth_parallel(N * C * S))
  for (int64_t r = 0; r < N * C; ++r) {
    const int64_t c = r % C;
    const T a = scale[c], b = shift[c];
#pragma omp simd
    for (int64_t i = 0; i < S; ++i) out[r * S + i] = a * x[r * S + i] + b;
  }
}

template <typename T>
void group_norm_forward(const T* x, const T* gamma, const T* beta, T* out, T* xn, T* inv_std,
                        int64_t N, int64_t C, int64_t S, int64_t G, double eps) {
  const int64_t Cg = C / G, len = Cg * S;
#pragma omp parallel for schedule(static) if (worth_parallel(N * C * S) && N * G > 1)
  for (int64_t ng = 0; ng < N * G; ++ng) {
    const int64_t o = ng * len, c0 = (ng % G) * Cg;
    double s1 = 0.0, s2 = 0.0;
    run_sum(x + o, len, s1);
    const T mu = static_cast<T>(s1 / static_cast<double>(len));
    run_sq_dev(x + o, mu, len, s2);
    const T v = static_cast<T>(s2 / static_cast<double>(len));
    const T inv = T(1) / std::sqrt(v + static_cast<T>(eps));
    inv_std[ng] = inv;
    for (int64_t c = 0; c < Cg; ++c)
      run_normalize(x + o + c * S, mu, inv, gamma[c0 + c], beta[c0 + c], xn + o + c * S,
                    out + o + c * S, S);
  }
}

template <typename T>
void group_norm_backward(const T* dout, const T* xn, const T* gamma, const T* inv_std, T* dx,
                         T* dgamma, T* dbeta, int64_t N, int64_t C, int64_t S, int64_t G) {
  const int64_t Cg = C / G, len = Cg * S;
  // sums[2 r], sums[2 r + 1]: sums of dout and dout * xn over row r = (n, c), read once.
  buffers::Scratch<double> sums(static_cast<std::size_t>(2 * N * C));
  double* rs = sums.data();
  const bool par = worth_parallel(N * C * S);
#pragma omp parallel if (par)
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N * C; ++r) {
      rs[2 * r] = rs[2 * r + 1] = 0.0;
      run_sums2(dout + r * S, xn + r * S, S, rs[2 * r], rs[2 * r + 1]);
    }
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      double sd = 0.0, sdx = 0.0;
      for (int64_t n = 0; n < N; ++n) {
        sd += rs[2 * (n * C + c)];
        sdx += rs[2 * (n * C + c) + 1];
      }
      dbeta[c] = static_cast<T>(sd);
      dgamma[c] = static_cast<T>(sdx);
    }
#pragma omp for schedule(static)
    for (int64_t ng = 0; ng < N * G; ++ng) {
      const int64_t o = ng * len, c0 = (ng % G) * Cg, r0 = ng * Cg;
      double sg = 0.0, sgx = 0.0;  // sums of dxn = gamma * dout and of dxn * xn
      for (int64_t k = 0; k < Cg; ++k) {
        sg += gamma[c0 + k] * rs[2 * (r0 + k)];
        sgx += gamma[c0 + k] * rs[2 * (r0 + k) + 1];
      }
      const T inv = inv_std[ng], mg = static_cast<T>(sg / static_cast<double>(len)),
              mgx = static_cast<T>(sgx / static_cast<double>(len));
      for (int64_t k = 0; k < Cg; ++k) {
        const T g = gamma[c0 + k];
        const int64_t ok = o + k * S;
#pragma omp simd
        for (int64_t i = 0; i < S; ++i)
          dx[ok + i] = inv * (g * dout[ok + i] - mg - xn[ok + i] * mgx);
      }
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
                                      T*, int64_t, int64_t);                                   \
  template void channel_batchnorm_forward<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, \
                                             int64_t, int64_t, int64_t, double);               \
  template void channel_batchnorm_backward<T>(const T*, const T*, const T*, const T*, T*, T*,  \
                                              T*, int64_t, int64_t, int64_t);                  \
  template void channel_affine<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t); \
  template void group_norm_forward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t,       \
                                      int64_t, int64_t, int64_t, double);                      \
  template void group_norm_backward<T>(const T*, const T*, const T*, const T*, T*, T*, T*,     \
                                       int64_t, int64_t, int64_t, int64_t);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
