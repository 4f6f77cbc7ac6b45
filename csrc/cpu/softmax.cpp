#include "cpu/softmax.h"

#include <algorithm>
#include <cmath>

#include "core/parallel.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

namespace {

// exp(x) for x <= 0 or NaN (softmax only exponentiates x - max), written so loops vectorise:
// x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two for an exact reduction), exp(r) by a
// polynomial, 2^n from exponent bits. Results below the smallest normal number become 0.
template <typename T> struct ExpConst;
template <> struct ExpConst<float> {
  using Bits = int32_t;
  static constexpr float lo = -87.0f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  static constexpr int mantissa = 23, bias = 127;
  static inline float poly(float r) {  // minimax exp(r) - 1 - r on |r| <= ln2/2 (Cephes expf)
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1.0f;
  }
};
template <> struct ExpConst<double> {
  using Bits = int64_t;
  static constexpr double lo = -708.0, ln2_hi = 6.93147180369123816490e-01,
                          ln2_lo = 1.90821492927058770002e-10;
  static constexpr int mantissa = 52, bias = 1023;
  static inline double poly(double r) {  // Taylor series to r^13: error < 1e-17 on |r| <= 0.35
    double p = 1.0 / 6227020800.0;
    constexpr double inv_fact[] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                   1.0 / 362880.0,    1.0 / 40320.0,    1.0 / 5040.0,
                                   1.0 / 720.0,       1.0 / 120.0,      1.0 / 24.0,
                                   1.0 / 6.0,         0.5,              1.0,
                                   1.0};
    for (double c : inv_fact) p = p * r + c;
    return p;
  }
};

template <typename T>
inline T exp_nonpositive(T x) {
  using E = ExpConst<T>;
  using Bits = typename E::Bits;
  const T lo = E::lo, zero = 0;  // values, not references: keeps the selects vectorisable
  T xc = x >= lo ? x : lo;        // NaN -> lo here; it is re-attached at the end
  xc = xc < zero ? xc : zero;
  // n = round(xc / ln2) by adding and removing 1.5 * 2^mantissa (std::floor is a libm call).
  const T shifter = T(1.5) * T(Bits(1) << E::mantissa);
  const T n = (xc * T(1.4426950408889634) + shifter) - shifter;
  const T r = (xc - n * E::ln2_hi) - n * E::ln2_lo;
  const Bits bits = (static_cast<Bits>(n) + E::bias) << E::mantissa;
  const T y = E::poly(r) * __builtin_bit_cast(T, bits);  // 2^n
  return x < lo ? zero : (x != x ? x : y);
}

// One row of softmax. A NaN anywhere makes the whole row NaN (through the sum), as in NumPy.
template <typename T>
inline void softmax_row(const T* x, T* y, int64_t C) {
  if (C == 0) return;
  T m = x[0];
#pragma omp simd reduction(max : m)
  for (int64_t j = 1; j < C; ++j) m = x[j] > m ? x[j] : m;
  // Partial sums in T over short blocks, added in double: long rows (vocabularies) stay
  // accurate and the exp loop stays vectorised.
  constexpr int64_t kBlock = 256;
  double sum = 0;
  for (int64_t j0 = 0; j0 < C; j0 += kBlock) {
    const int64_t j1 = std::min(C, j0 + kBlock);
    T part = 0;
#pragma omp simd reduction(+ : part)
    for (int64_t j = j0; j < j1; ++j) {
      y[j] = exp_nonpositive(x[j] - m);
      part += y[j];
    }
    sum += part;
  }
  const T inv = static_cast<T>(1.0 / sum);
#pragma omp simd
  for (int64_t j = 0; j < C; ++j) y[j] *= inv;
}

inline bool ignored(bool has_ignore, int64_t ignore_label, int64_t label) {
  return has_ignore && label == ignore_label;
}

}  // namespace

template <typename T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t C) {
#pragma omp parallel for if (worth_parallel(rows * C))
  for (int64_t i = 0; i < rows; ++i) softmax_row(x + i * C, y + i * C, C);
}

template <typename T>
double softmax_cross_entropy_forward(const T* x, const int64_t* t, T* y, int64_t N, int64_t C,
                                     double eps, bool has_ignore, int64_t ignore_label,
                                     int64_t* count) {
  double loss = 0;
  int64_t n = 0;
#pragma omp parallel for reduction(+ : loss, n) if (worth_parallel(N * C))
  for (int64_t i = 0; i < N; ++i) {
    softmax_row(x + i * C, y + i * C, C);
    if (ignored(has_ignore, ignore_label, t[i])) continue;
    loss -= static_cast<double>(std::log(y[i * C + t[i]] + static_cast<T>(eps)));
    ++n;
  }
  *count = n;
  return loss;
}

template <typename T>
void softmax_cross_entropy_backward(const T* y, const int64_t* t, T* dx, int64_t N, int64_t C,
                                    double scale, bool has_ignore, int64_t ignore_label) {
  const T s = static_cast<T>(scale);
#pragma omp parallel for if (worth_parallel(N * C))
  for (int64_t i = 0; i < N; ++i) {
    const T* yi = y + i * C;
    T* dxi = dx + i * C;
    if (ignored(has_ignore, ignore_label, t[i])) {
      for (int64_t j = 0; j < C; ++j) dxi[j] = T(0);
      continue;
    }
    const T y_label = yi[t[i]];  // read first: dx may alias y
#pragma omp simd
    for (int64_t j = 0; j < C; ++j) dxi[j] = yi[j] * s;
    dxi[t[i]] = (y_label - T(1)) * s;
  }
}

template <typename T>
void softmax_cross_entropy_backward_dense(const T* y, const T* t, T* dx, int64_t n, double scale) {
  const T s = static_cast<T>(scale);
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) dx[i] = (y[i] - t[i]) * s;
}

#define FASTNN_INSTANTIATE(T)                                                                 \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t);                           \
  template double softmax_cross_entropy_forward<T>(const T*, const int64_t*, T*, int64_t,     \
                                                   int64_t, double, bool, int64_t, int64_t*); \
  template void softmax_cross_entropy_backward<T>(const T*, const int64_t*, T*, int64_t,      \
                                                  int64_t, double, bool, int64_t);            \
  template void softmax_cross_entropy_backward_dense<T>(const T*, const T*, T*, int64_t, double);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
