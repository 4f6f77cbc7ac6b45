// Shared by the per-element bodies: each body is a __host__ __device__ function that nvcc
// compiles into the CUDA kernels (csrc/cuda/*.cu) and g++ into a CPU loop (the test-only module
// _C_testing, tests/native/bind_cuda_bodies.cpp) that the tests compare with fastnn.reference.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/shapes.h"  // FASTNN_HD, ConvShape (the sliding windows), Layout

namespace fastnn::body {

// Math that resolves to CUDA's device functions under nvcc and to <cmath> on the host.
#if defined(__CUDA_ARCH__)
template <typename T> __device__ inline T hd_exp(T x) { return exp(x); }
template <typename T> __device__ inline T hd_log(T x) { return log(x); }
template <typename T> __device__ inline T hd_tanh(T x) { return tanh(x); }
template <typename T> __device__ inline T hd_sqrt(T x) { return sqrt(x); }
#else
template <typename T> inline T hd_exp(T x) { return std::exp(x); }
template <typename T> inline T hd_log(T x) { return std::log(x); }
template <typename T> inline T hd_tanh(T x) { return std::tanh(x); }
template <typename T> inline T hd_sqrt(T x) { return std::sqrt(x); }
#endif

template <typename T> FASTNN_HD T neg_inf() { return -std::numeric_limits<T>::infinity(); }
template <typename T> FASTNN_HD T quiet_nan() { return std::numeric_limits<T>::quiet_NaN(); }
FASTNN_HD int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
FASTNN_HD int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// The output positions [lo, hi) along one axis whose window covers input position i.
FASTNN_HD void covering(int64_t i, int64_t F, int64_t stride, int64_t pad, int64_t O,
                        int64_t& lo, int64_t& hi) {
  const int64_t p = i + pad;  // i in padded coordinates; o covers p when o*stride in (p-F, p]
  lo = p - F < 0 ? 0 : (p - F) / stride + 1;
  hi = min64(p / stride + 1, O);
}

// Sum over rows r0, r0+step, ... < rows of f(r, j): one thread's share of a column reduction
// (the GPU combines the shares of a block; the CPU test runs r0 = 0, step = 1).
template <typename T, typename F>
FASTNN_HD T column_partial(const F& f, int64_t rows, int64_t j, int64_t r0, int64_t step) {
  T s = T(0);
  for (int64_t r = r0; r < rows; r += step) s += f(r, j);
  return s;
}

// Element (r, j) of a row-major (rows, cols) matrix, for column_partial.
template <typename T>
struct Elem {
  const T* a;
  int64_t cols;
  FASTNN_HD T operator()(int64_t r, int64_t j) const { return a[r * cols + j]; }
};

// a[r, j] * b[r, j].
template <typename T>
struct ElemProduct {
  const T* a;
  const T* b;
  int64_t cols;
  FASTNN_HD T operator()(int64_t r, int64_t j) const { return a[r * cols + j] * b[r * cols + j]; }
};

// (a[r, j] - mu[j])^2.
template <typename T>
struct ElemSqDev {
  const T* a;
  const T* mu;
  int64_t cols;
  FASTNN_HD T operator()(int64_t r, int64_t j) const {
    const T d = a[r * cols + j] - mu[j];
    return d * d;
  }
};

}  // namespace fastnn::body
