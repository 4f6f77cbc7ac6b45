// Device-side helpers shared by the .cu files: error checks, a grid-stride launcher for the
// per-element bodies, the column reduction, scratch memory and the row-major cuBLAS GEMM.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/body/common.h"

namespace fastnn::cuda {

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " +
                             cudaGetErrorString(err));
}

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

template <typename F>
__global__ void each_kernel(int64_t n, F f) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    f(i);
}

// f(i) for i in [0, n) on the stream; f is a __device__ lambda calling one body.
template <typename F>
void for_each(int64_t n, void* stream, F f, const char* what) {
  if (n <= 0) return;
  constexpr int kThreads = 256;
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  const unsigned grid = static_cast<unsigned>(blocks < 65535 * 16 ? blocks : 65535 * 16);
  each_kernel<<<grid, kThreads, 0, as_stream(stream)>>>(n, f);
  check(cudaGetLastError(), what);
}

constexpr int kReduceThreads = 256;  // the CPU test loop splits columns the same way

// out[j] = sum over rows of f(r, j): one block per column, strided shares then a tree.
template <typename Acc, typename F>
__global__ void column_sum_kernel(F f, int64_t rows, int64_t cols, Acc* out) {
  __shared__ Acc buf[kReduceThreads];
  for (int64_t j = blockIdx.x; j < cols; j += gridDim.x) {
    buf[threadIdx.x] = body::column_partial<Acc>(f, rows, j, threadIdx.x, kReduceThreads);
    __syncthreads();
    for (int half = kReduceThreads / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) buf[threadIdx.x] += buf[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) out[j] = buf[0];
    __syncthreads();
  }
}

template <typename Acc, typename F>
void column_sum(const F& f, int64_t rows, int64_t cols, Acc* out, void* stream, const char* what) {
  if (cols <= 0) return;
  const unsigned grid = static_cast<unsigned>(cols < 65535 ? cols : 65535);
  column_sum_kernel<Acc><<<grid, kReduceThreads, 0, as_stream(stream)>>>(f, rows, cols, out);
  check(cudaGetLastError(), what);
}

// Stream-ordered scratch buffer of n elements, freed on the same stream.
template <typename T>
class Scratch {
 public:
  Scratch(int64_t n, void* stream) : stream_(as_stream(stream)) {
    if (n > 0) check(cudaMallocAsync(&p_, sizeof(T) * n, stream_), "cudaMallocAsync");
  }
  ~Scratch() {
    if (p_) cudaFreeAsync(p_, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
  cudaStream_t stream_;
};

// Row-major C (M, N) = alpha * op(A) op(B) + beta * C through cuBLAS (loaded on first use).
template <typename T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, void* stream);

}  // namespace fastnn::cuda
