// Activations for kernels (gates of rnn/lstm/gru, sigmoid and SiLU): float uses a branch-free
// exp that `omp simd` loops vectorize (the libm call would stay scalar and dominate); double
// keeps libm for 1e-15 accuracy.
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

// exp(x) in float: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-7 polynomial
// (Cephes' expf coefficients, about 2 ulp), times 2^n built in the exponent bits. NaN propagates.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;  // a NaN fails both comparisons and flows through
  x = x > 88.0f ? 88.0f : x;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer n
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln2 split in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
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

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
