#include "cpu/optim.h"

#include <cmath>

#include "core/parallel.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

template <typename T>
void sgd_update(T* p, const T* g, int64_t n, T lr) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) p[i] -= lr * g[i];
}

template <typename T>
void momentum_update(T* p, T* v, const T* g, int64_t n, T lr, T momentum) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    v[i] = momentum * v[i] - lr * g[i];
    p[i] += v[i];
  }
}

template <typename T>
void nesterov_update(T* p, T* v, const T* g, int64_t n, T lr, T momentum) {
  const T mm = momentum * momentum, step = (T(1) + momentum) * lr;
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    v[i] = momentum * v[i] - lr * g[i];
    p[i] += mm * v[i];
    p[i] -= step * g[i];
  }
}

template <typename T>
void adagrad_update(T* p, T* h, const T* g, int64_t n, T lr, T eps) {
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    h[i] += g[i] * g[i];
    p[i] -= lr * g[i] / (std::sqrt(h[i]) + eps);
  }
}

template <typename T>
void rmsprop_update(T* p, T* h, const T* g, int64_t n, T lr, T decay_rate, T eps) {
  const T keep = T(1) - decay_rate;
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    h[i] = decay_rate * h[i] + keep * g[i] * g[i];
    p[i] -= lr * g[i] / (std::sqrt(h[i]) + eps);
  }
}

template <typename T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t n, T lr_t, T beta1, T beta2, T eps) {
  const T a1 = T(1) - beta1, a2 = T(1) - beta2;
#pragma omp parallel for simd if (parallel: worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    m[i] += a1 * (g[i] - m[i]);
    v[i] += a2 * (g[i] * g[i] - v[i]);
    p[i] -= lr_t * m[i] / (std::sqrt(v[i]) + eps);
  }
}

#define FASTNN_INSTANTIATE(T)                                                     \
  template void sgd_update<T>(T*, const T*, int64_t, T);                          \
  template void momentum_update<T>(T*, T*, const T*, int64_t, T, T);              \
  template void nesterov_update<T>(T*, T*, const T*, int64_t, T, T);              \
  template void adagrad_update<T>(T*, T*, const T*, int64_t, T, T);               \
  template void rmsprop_update<T>(T*, T*, const T*, int64_t, T, T, T);            \
  template void adam_update<T>(T*, T*, T*, const T*, int64_t, T, T, T, T);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
