// Stand-in for csrc/cuda/launch.cuh (first on the include path) that runs the host code of
// csrc/cuda/{rnn,lstm,gru}.cu on the CPU: for_each as a loop, Scratch as malloc (NaN-filled),
// gemm as a naive row-major product that aborts where cuBLAS would reject the leading
// dimensions. Same semantics as the real helpers (k = 0 scales C by beta; null scratch for 0).
#pragma once
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "cuda/body/common.h"

#define __device__

enum cudaError_t { cudaSuccess = 0 };
enum cudaMemcpyKind { cudaMemcpyDeviceToDevice = 3 };
typedef void* cudaStream_t;
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind,
                                   cudaStream_t) {
  std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t) {
  std::memset(d, v, n);
  return cudaSuccess;
}

namespace fastnn::cuda {

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(what);
}
inline cudaStream_t as_stream(void* s) { return s; }

extern long g_launches, g_gemms;

template <typename F>
void for_each(int64_t n, void* stream, F f, const char* what) {
  if (n <= 0) return;
  ++g_launches;
  for (int64_t i = 0; i < n; ++i) f(i);
}

template <typename Acc, typename F>
void column_sum(const F& f, int64_t rows, int64_t cols, Acc* out, void* stream, const char* what) {
  if (cols <= 0) return;
  for (int64_t j = 0; j < cols; ++j) out[j] = body::column_partial<Acc>(f, rows, j, 0, 1);
}

template <typename T>
class Scratch {
 public:
  Scratch(int64_t n, void*) {
    if (n > 0) p_ = static_cast<T*>(std::malloc(sizeof(T) * n));
    if (p_) for (int64_t i = 0; i < n; ++i) p_[i] = std::numeric_limits<T>::quiet_NaN();
  }
  ~Scratch() { std::free(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
};

template <typename T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, void* stream) {
  if (M <= 0 || N <= 0) return;
  ++g_gemms;
  if (K <= 0) {
    for (int64_t r = 0; r < M; ++r)
      for (int64_t c = 0; c < N; ++c)
        C[r * ldc + c] = beta == T(0) ? T(0) : beta * C[r * ldc + c];
    return;
  }
  // cuBLAS's rules, in row-major terms: every leading dimension covers its row.
  if (!(ldc >= N && lda >= (transA ? M : K) && ldb >= (transB ? K : N)) || !A || !B || !C) {
    std::fprintf(stderr, "bad gemm: tA=%d tB=%d M=%ld N=%ld K=%ld lda=%ld ldb=%ld ldc=%ld\n",
                 transA, transB, (long)M, (long)N, (long)K, (long)lda, (long)ldb, (long)ldc);
    std::abort();
  }
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += (transA ? A[k * lda + m] : A[m * lda + k]) *
               (transB ? B[n * ldb + k] : B[k * ldb + n]);
      T& c = C[m * ldc + n];
      c = alpha * acc + (beta == T(0) ? T(0) : beta * c);
    }
}

}  // namespace fastnn::cuda
