// Device discovery and cuBLAS. The CUDA runtime is linked statically and loads the driver
// only when first used, so importing fastnn never needs a GPU; cuBLAS (PyPI's nvidia-cublas)
// is opened with dlopen on first use for the same reason: a missing library or device
// becomes a reason string or a Python exception, never an import failure.
#include <cublas_v2.h>
#include <dlfcn.h>

#include <limits>
#include <map>
#include <mutex>
#include <string>

#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace fastnn::cuda {
namespace {

struct Cublas {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasDgemm_v2) dgemm = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
  std::string error;  // why loading failed, "" when loaded
};

// The library's soname follows the major version of the headers we compiled against.
const Cublas& cublas() {
  static const Cublas lib = [] {
    Cublas c;
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
      const char* e = dlerror();
      c.error = "cannot load " + name + " (pip install nvidia-cublas): " + (e ? e : "");
      return c;
    }
    auto sym = [&](const char* s) {
      void* p = dlsym(h, s);
      if (!p && c.error.empty()) c.error = name + " lacks " + s;
      return p;
    };
    c.create = reinterpret_cast<decltype(c.create)>(sym("cublasCreate_v2"));
    c.set_stream = reinterpret_cast<decltype(c.set_stream)>(sym("cublasSetStream_v2"));
    c.sgemm = reinterpret_cast<decltype(c.sgemm)>(sym("cublasSgemm_v2"));
    c.dgemm = reinterpret_cast<decltype(c.dgemm)>(sym("cublasDgemm_v2"));
    c.status_string = reinterpret_cast<decltype(c.status_string)>(sym("cublasGetStatusString"));
    return c;
  }();
  return lib;
}

void check_cublas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS error in ") + what + ": " +
                             cublas().status_string(st));
}

// One handle per device, created on first use; the mutex also serialises set_stream + gemm
// so that Python threads on different streams never race on a handle.
std::mutex handle_mutex;

cublasHandle_t handle_for_current_device() {
  static std::map<int, cublasHandle_t> handles;
  const Cublas& c = cublas();
  if (!c.error.empty()) throw std::runtime_error(c.error);
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  auto it = handles.find(dev);
  if (it != handles.end()) return it->second;
  cublasHandle_t h = nullptr;
  check_cublas(c.create(&h), "cublasCreate");
  handles[dev] = h;
  return h;
}

}  // namespace

std::string unavailable_reason() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return std::string("no usable CUDA driver/device: ") + cudaGetErrorString(err);
  }
  if (count == 0) return "no CUDA device";
  const Cublas& c = cublas();
  return c.error;
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

template <typename T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, void* stream) {
  if (M <= 0 || N <= 0) return;
  for (int64_t d : {M, N, K, lda, ldb, ldc})
    if (d > std::numeric_limits<int>::max())
      throw std::invalid_argument("matrix dimension " + std::to_string(d) +
                                  " is too large for cuBLAS (max 2^31-1)");
  std::lock_guard<std::mutex> lock(handle_mutex);
  cublasHandle_t h = handle_for_current_device();
  const Cublas& c = cublas();
  check_cublas(c.set_stream(h, as_stream(stream)), "cublasSetStream");
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
  const cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  if (K <= 0) {  // cuBLAS needs k >= 1 for the product; C = beta * C is then a scale
    for_each(M * N, stream, [=] __device__(int64_t i) {
      const int64_t r = i / N, col = i % N;
      C[r * ldc + col] = beta == T(0) ? T(0) : beta * C[r * ldc + col];
    }, "gemm (k = 0)");
    return;
  }
  if constexpr (sizeof(T) == 4)
    check_cublas(c.sgemm(h, opB, opA, m, n, k, &alpha, B, static_cast<int>(ldb), A,
                         static_cast<int>(lda), &beta, C, static_cast<int>(ldc)), "cublasSgemm");
  else
    check_cublas(c.dgemm(h, opB, opA, m, n, k, &alpha, B, static_cast<int>(ldb), A,
                         static_cast<int>(lda), &beta, C, static_cast<int>(ldc)), "cublasDgemm");
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t, void*);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t, void*);

}  // namespace fastnn::cuda
