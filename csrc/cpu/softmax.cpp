#include "cpu/softmax.h"

#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "cpu/fastmath.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

namespace {

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
