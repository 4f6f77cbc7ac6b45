// Softmax (one thread per row) and softmax-cross-entropy; the loss is left as per-row
// values that the caller sums on the device (no host round trip).
#include "cuda/body/softmax.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace fastnn::cuda {

template <typename T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t C, void* stream) {
  for_each(rows, stream, [=] __device__(int64_t i) { body::softmax_row(x, y, C, i); },
           "softmax_forward");
}

template <typename T>
void softmax_cross_entropy_forward(const T* x, const int64_t* t, T* y, T* row_loss, int64_t N,
                                   int64_t C, double eps, bool has_ignore, int64_t ignore_label,
                                   void* stream) {
  const T e = static_cast<T>(eps);
  for_each(N, stream, [=] __device__(int64_t i) {
    body::softmax_row(x, y, C, i);
    row_loss[i] = body::cross_entropy_row(y, t, C, e, has_ignore, ignore_label, i);
  }, "softmax_cross_entropy_forward");
}

template <typename T>
void softmax_cross_entropy_backward(const T* y, const int64_t* t, T* dx, int64_t N, int64_t C,
                                    double scale, bool has_ignore, int64_t ignore_label,
                                    void* stream) {
  const T s = static_cast<T>(scale);
  for_each(N * C, stream, [=] __device__(int64_t i) {
    dx[i] = body::softmax_ce_backward_element(y, t, C, s, has_ignore, ignore_label, i);
  }, "softmax_cross_entropy_backward");
}

template <typename T>
void softmax_cross_entropy_backward_dense(const T* y, const T* t, T* dx, int64_t n, double scale,
                                          void* stream) {
  const T s = static_cast<T>(scale);
  for_each(n, stream, [=] __device__(int64_t i) {
    dx[i] = body::softmax_ce_backward_dense_element(y, t, s, i);
  }, "softmax_cross_entropy_backward_dense");
}

#define FASTNN_INSTANTIATE(T)                                                                  \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t, void*);                     \
  template void softmax_cross_entropy_forward<T>(const T*, const int64_t*, T*, T*, int64_t,    \
                                                 int64_t, double, bool, int64_t, void*);       \
  template void softmax_cross_entropy_backward<T>(const T*, const int64_t*, T*, int64_t,       \
                                                  int64_t, double, bool, int64_t, void*);      \
  template void softmax_cross_entropy_backward_dense<T>(const T*, const T*, T*, int64_t,       \
                                                        double, void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
