#include "cpu/activation.h"

#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/parallel.h"
#include "cpu/fastmath.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

template <typename T>
void relu_forward(const T* x, T* y, bool* mask, int64_t n) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    const bool off = x[i] <= T(0);  // NaN is not <= 0: it passes through, as in NumPy
    mask[i] = off;
    y[i] = off ? T(0) : x[i];
  }
}

template <typename T>
void relu_backward(const T* dout, const bool* mask, T* dx, int64_t n) {
  // Branch-free select (a branch on a random mask mispredicts half the time): keep dout's bits
  // where the mask is 0, clear them (+0.0) where it is 1.
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const uint8_t* off = reinterpret_cast<const uint8_t*>(mask);
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, &dout[i], sizeof(T));
    b &= Bits(0) - Bits(off[i] == 0);
    std::memcpy(&dx[i], &b, sizeof(T));
  }
}

template <typename T>
void sigmoid_forward(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) y[i] = sigmoid(x[i]);
}

template <typename T>
void sigmoid_backward(const T* dout, const T* y, T* dx, int64_t n) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) dx[i] = dout[i] * (T(1) - y[i]) * y[i];
}

template <typename T>
void tanh_forward(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) y[i] = tanh_vec(x[i]);
}

template <typename T>
void tanh_backward(const T* dout, const T* y, T* dx, int64_t n) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) dx[i] = dout[i] * (T(1) - y[i] * y[i]);
}

template <typename T>
void relu6_forward(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    y[i] = v < T(0) ? T(0) : (v > T(6) ? T(6) : v);  // NaN fails both tests and passes through
  }
}

template <typename T>
void relu6_backward(const T* dout, const T* y, T* dx, int64_t n) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) dx[i] = (y[i] > T(0) && y[i] < T(6)) ? dout[i] : T(0);
}

template <typename T>
void silu_forward(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
}

template <typename T>
void silu_backward(const T* dout, const T* x, T* dx, int64_t n) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(x[i]);
    dx[i] = dout[i] * (s * (T(1) + x[i] * (T(1) - s)));
  }
}

#define FASTNN_INSTANTIATE(T)                                              \
  template void relu_forward<T>(const T*, T*, bool*, int64_t);             \
  template void relu_backward<T>(const T*, const bool*, T*, int64_t);      \
  template void sigmoid_forward<T>(const T*, T*, int64_t);                 \
  template void sigmoid_backward<T>(const T*, const T*, T*, int64_t);      \
  template void tanh_forward<T>(const T*, T*, int64_t);                    \
  template void tanh_backward<T>(const T*, const T*, T*, int64_t);          \
  template void relu6_forward<T>(const T*, T*, int64_t);                   \
  template void relu6_backward<T>(const T*, const T*, T*, int64_t);        \
  template void silu_forward<T>(const T*, T*, int64_t);                    \
  template void silu_backward<T>(const T*, const T*, T*, int64_t);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
