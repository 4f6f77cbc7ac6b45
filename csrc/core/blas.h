// gemm<T> over OpenBLAS cblas (scipy-openblas32 prefixes every symbol with scipy_).
// Row-major: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
#pragma once
#include <cblas.h>

#include "core/check.h"

namespace fastnn {

inline void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc) {
  if (M == 0 || N == 0) return;
  scipy_cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans, blas_int(M, "M"), blas_int(N, "N"),
                    blas_int(K, "K"), alpha, A, blas_int(lda, "lda"), B, blas_int(ldb, "ldb"),
                    beta, C, blas_int(ldc, "ldc"));
}

inline void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha,
                 const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                 double* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  scipy_cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans, blas_int(M, "M"), blas_int(N, "N"),
                    blas_int(K, "K"), alpha, A, blas_int(lda, "lda"), B, blas_int(ldb, "ldb"),
                    beta, C, blas_int(ldc, "ldc"));
}

}  // namespace fastnn
