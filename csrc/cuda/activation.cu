// Relu, Sigmoid, Tanh: one thread per element running the bodies of body/activation.h.
#include "cuda/body/activation.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace fastnn::cuda {

template <typename T>
void relu_forward(const T* x, T* y, bool* mask, int64_t n, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) { body::relu_forward(x, y, mask, i); },
           "relu_forward");
}

template <typename T>
void relu_backward(const T* dout, const bool* mask, T* dx, int64_t n, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) { body::relu_backward(dout, mask, dx, i); },
           "relu_backward");
}

template <typename T>
void sigmoid_forward(const T* x, T* y, int64_t n, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) { body::sigmoid_forward(x, y, i); },
           "sigmoid_forward");
}

template <typename T>
void sigmoid_backward(const T* dout, const T* y, T* dx, int64_t n, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) { body::sigmoid_backward(dout, y, dx, i); },
           "sigmoid_backward");
}

template <typename T>
void tanh_forward(const T* x, T* y, int64_t n, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) { body::tanh_forward(x, y, i); },
           "tanh_forward");
}

template <typename T>
void tanh_backward(const T* dout, const T* y, T* dx, int64_t n, void* stream) {
  for_each(n, stream, [=] __device__(int64_t i) { body::tanh_backward(dout, y, dx, i); },
           "tanh_backward");
}

#define FASTNN_INSTANTIATE(T)                                                    \
  template void relu_forward<T>(const T*, T*, bool*, int64_t, void*);            \
  template void relu_backward<T>(const T*, const bool*, T*, int64_t, void*);     \
  template void sigmoid_forward<T>(const T*, T*, int64_t, void*);                \
  template void sigmoid_backward<T>(const T*, const T*, T*, int64_t, void*);     \
  template void tanh_forward<T>(const T*, T*, int64_t, void*);                   \
  template void tanh_backward<T>(const T*, const T*, T*, int64_t, void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
