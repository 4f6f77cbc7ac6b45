// exp and the activations built on it, for kernels (softmax; gates of rnn/lstm/gru; sigmoid,
// tanh and SiLU): branch-free, so that `omp simd` loops vectorize them (a libm call stays
// scalar and dominates). The gates, sigmoid and SiLU keep libm in double, for 1e-15 accuracy;
// tanh_vec (the Tanh kernel) is within 3 ulp in double too.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/isa.h"

#ifndef FASTNN_ISA
#error "cpu/fastmath.h belongs to the kernels (compiled per instruction-set level)"
#endif

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// exp(x) for x <= 0 or NaN (softmax exponentiates x - max), written so loops vectorise:
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

// exp(x) in float: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-7 polynomial
// (Cephes' expf coefficients, about 2 ulp), times 2^n built in the exponent bits. NaN propagates.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;  // a NaN fails both comparisons and flows through
  x = x > 88.0f ? 88.0f : x;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer n
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln2 split in two parts
  const float p = ExpConst<float>::poly(r);
  uint32_t tb, sb;
  const float shifter_copy = shifter;
  std::memcpy(&tb, &t, 4);
  std::memcpy(&sb, &shifter_copy, 4);
  const uint32_t bits = (tb - sb + 127u) << 23;  // the low mantissa bits of t hold n
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// 1 / (1 + exp(-v)); in float, 0 below v = -88, where exp(-v) nears float overflow.
inline float sigmoid(float v) {
  const float s = 1.0f / (1.0f + exp_approx(-v));
  return v < -88.0f ? 0.0f : s;
}
inline double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

inline float tanh_act(float v) {
  const float e = exp_approx(-2.0f * std::fabs(v));
  return std::copysign((1.0f - e) / (1.0f + e), v);
}
inline double tanh_act(double v) { return std::tanh(v); }

// tanh within 2 ulp (float) and 3 ulp (double) of NumPy's, written so that loops vectorise
// (libm's tanh stays scalar: 16 ns an element). For |x| <= 0.625, where 1 - exp(-2|x|) would
// cancel, Cephes' odd polynomial (float) or rational function (double) of x^2; above,
// (1 - e) / (1 + e) with e = exp(-2|x|) <= 0.29 and x's sign. NaN propagates, +-inf gives
// +-1, -0 stays -0.
inline float tanh_near0(float x) {
  const float s = x * x;
  float p = -5.70498872745e-3f;
  p = p * s + 2.06390887954e-2f;
  p = p * s - 5.37397155531e-2f;
  p = p * s + 1.33314422036e-1f;
  p = p * s - 3.33332819422e-1f;
  return p * s * x + x;
}
inline double tanh_near0(double x) {
  const double s = x * x;
  const double p = (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s -
                   1.61468768441708447952e3;
  const double q = ((s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3) * s +
                   4.84406305325125486048e3;
  return x + x * (s * p / q);
}
template <typename T>
inline T tanh_vec(T v) {
  const T a = std::fabs(v);
  const T e = exp_nonpositive(T(-2) * a);
  const T far = std::copysign((T(1) - e) / (T(1) + e), v);
  const T near = tanh_near0(v);
  return a > T(0.625) ? far : (v == T(0) ? v : near);
}

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
