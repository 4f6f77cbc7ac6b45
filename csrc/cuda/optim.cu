// In-place optimizer updates, one thread per element (bodies of body/optim.h).
#include "cuda/body/optim.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace fastnn::cuda {

template <typename T>
void sgd_update(T* p, const T* g, int64_t n, T lr, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) { body::sgd_element(p, g, lr, i); }, "sgd");
}

template <typename T>
void momentum_update(T* p, T* v, const T* g, int64_t n, T lr, T momentum, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) {
    body::momentum_element(p, v, g, lr, momentum, i);
  }, "momentum");
}

template <typename T>
void nesterov_update(T* p, T* v, const T* g, int64_t n, T lr, T momentum, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) {
    body::nesterov_element(p, v, g, lr, momentum, i);
  }, "nesterov");
}

template <typename T>
void adagrad_update(T* p, T* h, const T* g, int64_t n, T lr, T eps, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) { body::adagrad_element(p, h, g, lr, eps, i); },
           "adagrad");
}

template <typename T>
void rmsprop_update(T* p, T* h, const T* g, int64_t n, T lr, T decay_rate, T eps, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) {
    body::rmsprop_element(p, h, g, lr, decay_rate, eps, i);
  }, "rmsprop");
}

template <typename T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t n, T lr_t, T beta1, T beta2, T eps,
                 void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) {
    body::adam_element(p, m, v, g, lr_t, beta1, beta2, eps, i);
  }, "adam");
}

#define FASTNN_INSTANTIATE(T)                                                                 \
  template void sgd_update<T>(T*, const T*, int64_t, T, void*);                               \
  template void momentum_update<T>(T*, T*, const T*, int64_t, T, T, void*);                   \
  template void nesterov_update<T>(T*, T*, const T*, int64_t, T, T, void*);                   \
  template void adagrad_update<T>(T*, T*, const T*, int64_t, T, T, void*);                    \
  template void rmsprop_update<T>(T*, T*, const T*, int64_t, T, T, T, void*);                 \
  template void adam_update<T>(T*, T*, T*, const T*, int64_t, T, T, T, T, void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
