// Affine on x (N, D), W (D, M): out = x @ W + b; dx = dout @ W^T (skipped when dx is null),
// dW = x^T @ dout, db = column sums of dout. GEMMs in cuBLAS.
#include "cuda/body/affine.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace fastnn::cuda {

template <typename T>
void affine_forward(const T* x, const T* W, const T* b, T* out, int64_t N, int64_t D, int64_t M,
                    void* stream) {
  gemm<T>(false, false, N, M, D, T(1), x, D, W, M, T(0), out, M, stream);
  for_each(N * M, stream, [=] __device__(int64_t i) { body::bias_add_element(out, b, M, i); },
           "affine_forward (bias)");
}

template <typename T>
void affine_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db, int64_t N,
                     int64_t D, int64_t M, void* stream) {
  if (dx != nullptr) gemm<T>(false, true, N, D, M, T(1), dout, M, W, M, T(0), dx, D, stream);
  gemm<T>(true, false, D, M, N, T(1), x, D, dout, M, T(0), dW, M, stream);
  column_sum<T>(body::Elem<T>{dout, M}, N, M, db, stream, "affine_backward (db)");
}

#define FASTNN_INSTANTIATE(T)                                                                 \
  template void affine_forward<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, \
                                  void*);                                                     \
  template void affine_backward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, \
                                   int64_t, void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
