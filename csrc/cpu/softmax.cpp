#include "cpu/softmax.h"

#include <cmath>

#include "core/parallel.h"

namespace fastnn::cpu {

namespace {

// One row of softmax. A NaN anywhere makes the whole row NaN, as in NumPy.
template <typename T>
inline void softmax_row(const T* x, T* y, int64_t C) {
  if (C == 0) return;
  T m = x[0];
  for (int64_t j = 1; j < C; ++j) m = (x[j] > m || std::isnan(x[j])) ? x[j] : m;
  T sum = 0;
  for (int64_t j = 0; j < C; ++j) {
    y[j] = std::exp(x[j] - m);
    sum += y[j];
  }
  const T inv = T(1) / sum;
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
#pragma omp parallel for simd if (worth_parallel(n))
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

}  // namespace fastnn::cpu
