// gemm<T> over OpenBLAS cblas (scipy-openblas32 prefixes every symbol with scipy_).
// Row-major: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
//
// One thread pool: OpenBLAS always runs single-threaded (set_num_threads), and a GEMM big
// enough to share, called outside a parallel region, is split into blocks of rows (or columns)
// of C that fastnn's OpenMP threads take dynamically. OpenBLAS's own threading synchronises its
// threads several times per call, which on busy cores waits for a descheduled thread each time
// (measured 4-20x slower than one thread at 256x256x784 on 2 loaded cores); one dynamic loop
// waits at most once. Each element of C is computed by one block's call, whichever thread runs
// it, so results do not depend on timing.
#pragma once
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "core/check.h"
#include "core/isa.h"
#include "core/parallel.h"

#ifndef FASTNN_ISA
#error "core/blas.h belongs to the kernels (compiled per instruction-set level)"
#endif

namespace fastnn {
FASTNN_ISA_NAMESPACE {
namespace detail {

// OpenBLAS multiplies a GEMM with M*N*K <= 1e6 directly, without packing its operands (its
// "small matrix" path). On AVX-512 cores (SkylakeX and the cores that share its kernels; AMD
// Zen 4 gets them too) its float kernels for that path beat packing when B (K x N) is small,
// so a float GEMM with B untransposed goes in chunks of rows of C that stay on it. One call
// vs chunks, one thread: 16x512x128 (an LSTM step) 27.6-30.6 vs 18.2-19.5 us; 1600x64x512
// 1081 vs 916 us; 16x784x144 (a DeepConvNet convolution) 43 vs 32 us; 64x64x288 25 vs 20 us;
// 6400x30x25 158 vs 101 us; with A transposed (col2im's W^T @ dout) 144x784x16 47 vs 37 us,
// 576x49x64 45 vs 35 us. With a long K it stops paying (1000x120x1000: 2499 vs 2669 us), and
// elsewhere the path is generic C, so nothing is split there. (B transposed takes the unpacked
// path only for tiny C; not split.)
constexpr double kBlasSmallMNK = 1e6;
constexpr int64_t kUnpackedMaxK = 576;

inline bool blas_small_kernels_fast() {
  static const bool fast = [] {
    std::string core = scipy_openblas_get_corename();
    for (char& c : core) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return core == "skylakex" || core == "cooperlake" || core == "sapphirerapids";
  }();
  return fast;
}

// Rows per call that keep a float M x N x K GEMM (B untransposed) on the unpacked path where
// that is faster (a multiple of 8); 0 for one call.
inline int64_t unpacked_chunk_rows(int64_t M, int64_t N, int64_t K) {
  const double nk = double(N) * double(K);
  if (K > kUnpackedMaxK || nk == 0 || double(M) * nk <= kBlasSmallMNK ||
      !blas_small_kernels_fast())
    return 0;
  return 8 * static_cast<int64_t>(kBlasSmallMNK / (8 * nk));
}

inline void blas_gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                      float* C, int64_t ldc) {
  // With A transposed, chunks of 8 rows lost (784x256x256: 1124 vs 1193 us); 16 and up paid.
  const int64_t chunk = transB ? 0 : unpacked_chunk_rows(M, N, K);
  const int64_t step = chunk >= (transA ? 16 : 8) ? chunk : M;
  for (int64_t m0 = 0; m0 < M; m0 += step)
    scipy_cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                      transB ? CblasTrans : CblasNoTrans, int(std::min(step, M - m0)), int(N),
                      int(K), alpha, transA ? A + m0 : A + m0 * lda, int(lda), B, int(ldb), beta,
                      C + m0 * ldc, int(ldc));
}

inline void blas_gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha,
                      const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                      double* C, int64_t ldc) {
  scipy_cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans, int(M), int(N), int(K), alpha, A,
                    int(lda), B, int(ldb), beta, C, int(ldc));
}

inline void blas_transpose(int64_t rows, int64_t cols, const float* A, float* out) {
  scipy_cblas_somatcopy(CblasRowMajor, CblasTrans, int(rows), int(cols), 1.0f, A, int(cols), out,
                        int(rows));
}

inline void blas_transpose(int64_t rows, int64_t cols, const double* A, double* out) {
  scipy_cblas_domatcopy(CblasRowMajor, CblasTrans, int(rows), int(cols), 1.0, A, int(cols), out,
                        int(rows));
}

// Below this many flops one thread is faster than any split (~50 us of work).
constexpr double kGemmParallelFlops = double(1 << 22);
// Blocks are at least this many rows/columns of C (unless that leaves one per thread), and up
// to 4 per thread for balance. Every block packs its own copy of the shared operand, so small
// blocks cost: MLP 784-256-10 step 1.96 -> 1.84 ms (two paired runs) going from 32 to 128,
// where the 256-row GEMMs now split in 2 blocks instead of 8; large LSTM (700 x 650 x 2600
// GEMMs) 96-102 -> 92-98 ms and large GRU 77.5 -> 74.7 ms going from 128 to 512, with the
// SimpleConvNet, MLP and DeepConvNet steps within noise (0.95-1.04x).
constexpr int64_t kGemmMinBlock = 512;

// Set while a SerialGemmScope is alive on this thread.
inline thread_local bool gemm_serial = false;

}  // namespace detail

// Runs the GEMMs of the enclosing scope on the calling thread alone when serial is true: for a
// recurrent time loop whose per-step GEMMs are too small to repay a parallel region each.
class SerialGemmScope {
 public:
  explicit SerialGemmScope(bool serial) : saved_(detail::gemm_serial) {
    detail::gemm_serial = saved_ || serial;
  }
  ~SerialGemmScope() { detail::gemm_serial = saved_; }
  SerialGemmScope(const SerialGemmScope&) = delete;
  SerialGemmScope& operator=(const SerialGemmScope&) = delete;

 private:
  bool saved_;
};

template <typename T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  blas_int(M, "M"), blas_int(N, "N"), blas_int(K, "K");
  blas_int(lda, "lda"), blas_int(ldb, "ldb"), blas_int(ldc, "ldc");
  const int threads = omp_in_parallel() || detail::gemm_serial ? 1 : get_num_threads();
  const bool rows = M >= N;  // split the longer side of C
  const int64_t side = rows ? M : N;
  // A multiple of the thread count, so equal blocks end together.
  const int64_t blocks =
      threads * std::clamp<int64_t>(side / (detail::kGemmMinBlock * threads), 1, 4);
  if (threads == 1 || side < threads || 2.0 * double(M) * double(N) * double(K) <
                                        detail::kGemmParallelFlops) {
    detail::blas_gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int64_t step = (side + blocks - 1) / blocks;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t lo = i * step, len = std::min(step, side - lo);
    if (len <= 0) continue;
    if (rows) {  // rows lo.. of op(A) and C
      const T* Ai = transA ? A + lo : A + lo * lda;
      detail::blas_gemm(transA, transB, len, N, K, alpha, Ai, lda, B, ldb, beta, C + lo * ldc,
                        ldc);
    } else {  // columns lo.. of op(B) and C
      const T* Bi = transB ? B + lo * ldb : B + lo;
      detail::blas_gemm(transA, transB, M, len, K, alpha, A, lda, Bi, ldb, beta, C + lo, ldc);
    }
  }
}

// out (cols, rows) = A (rows, cols)^T, both contiguous.
template <typename T>
void transpose(int64_t rows, int64_t cols, const T* A, T* out) {
  blas_int(rows, "rows"), blas_int(cols, "cols");
  detail::blas_transpose(rows, cols, A, out);
}

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn
