#include "cpu/affine.h"

#include <algorithm>

#include "core/blas.h"
#include "core/parallel.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

template <typename T>
void affine_forward(const T* x, const T* W, const T* b, T* out, int64_t N, int64_t D, int64_t M,
                    bool W_trans) {
  // Every row starts as b; the GEMM then accumulates x @ W on top (beta = 1).
#pragma omp parallel for if (worth_parallel(N * M))
  for (int64_t i = 0; i < N; ++i) std::copy(b, b + M, out + i * M);
  if (D > 0) gemm(false, W_trans, N, M, D, T(1), x, D, W, W_trans ? D : M, T(1), out, M);
}

template <typename T>
void affine_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db, int64_t N,
                     int64_t D, int64_t M, bool W_trans) {
  // dx may be null: the caller does not need it (a network's first layer).
  // BLAS rejects a zero leading dimension, so the empty sums are written directly.
  if (M == 0) {
    if (dx) std::fill(dx, dx + N * D, T(0));
    return;
  }
  if (N == 0) {
    std::fill(dW, dW + D * M, T(0));
    std::fill(db, db + M, T(0));
    return;
  }
  if (D > 0 && W_trans) {
    if (dx) gemm(false, false, N, D, M, T(1), dout, M, W, D, T(0), dx, D);  // dout @ (W^T)
    gemm(true, false, M, D, N, T(1), dout, M, x, D, T(0), dW, D);           // dW^T = dout^T @ x
  } else if (D > 0) {
    if (dx) gemm(false, true, N, D, M, T(1), dout, M, W, M, T(0), dx, D);  // dout @ W^T
    gemm(true, false, D, M, N, T(1), x, D, dout, M, T(0), dW, M);          // x^T @ dout
  }
  // db: column sums of dout, rows added in order; threads split the columns.
  constexpr int64_t kCols = 256;
  const int64_t blocks = (M + kCols - 1) / kCols;
#pragma omp parallel for if (worth_parallel(N * M) && blocks > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kCols, j1 = std::min(M, j0 + kCols);
    std::fill(db + j0, db + j1, T(0));
    for (int64_t i = 0; i < N; ++i) {
      const T* row = dout + i * M;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) db[j] += row[j];
    }
  }
}

#define FASTNN_INSTANTIATE(T)                                                                 \
  template void affine_forward<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t,  \
                                  bool);                                                        \
  template void affine_backward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, \
                                   int64_t, bool);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
