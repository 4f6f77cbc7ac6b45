// Geometry types shared by the kernels of every instruction set, the CUDA kernels and both
// bindings (they cross the kernel table of cpu/dispatch.h, so they live outside the per-level
// namespaces). Plain aggregates, so that CUDA kernels take them by value.
#pragma once
#include <cstdint>
#include <string>

#include "core/check.h"

// Host and device code: nvcc compiles it into the CUDA kernels too, g++ for the CPU only.
#if defined(__CUDACC__)
#define FASTNN_HD __host__ __device__ inline
#else
#define FASTNN_HD inline
#endif

namespace fastnn {

// Weight layout of a recurrent layer (see cpu/rnn.h; the CUDA kernels take the same): the
// book's Wx (D, gH) or torch.nn's weight_ih (gH, D).
enum class Layout { Book, Torch };

// Output size of a sliding window (callers check in + 2*pad >= filter).
FASTNN_HD int64_t window_out_size(int64_t in, int64_t filter, int64_t stride, int64_t pad) {
  return (in + 2 * pad - filter) / stride + 1;
}

// A sliding window over NCHW images (convolution, im2col, pooling; the book's names).
struct ConvShape {
  int64_t N, C, H, W, FH, FW, stride, pad, OH, OW;
  // The window with its output size; unchecked (the bindings use checked_window).
  FASTNN_HD static ConvShape of(int64_t N, int64_t C, int64_t H, int64_t W, int64_t FH,
                                int64_t FW, int64_t stride, int64_t pad) {
    return {N, C, H, W, FH, FW, stride, pad, window_out_size(H, FH, stride, pad),
            window_out_size(W, FW, stride, pad)};
  }
  FASTNN_HD int64_t rows() const { return N * OH * OW; }  // rows of col
  FASTNN_HD int64_t cols() const { return C * FH * FW; }  // columns of col
  FASTNN_HD bool empty_input() const { return N == 0 || C == 0 || H == 0 || W == 0; }
};

// The window of op (the name its errors start with), or ValueError: sizes that are negative,
// a window larger than the padded input, or one whose derived sizes overflow int64. Shared
// by the CPU and CUDA bindings, which Python calls after its own checks (fastnn/ops/meta.py,
// in the user's words); these keep direct _C calls from ever reading out of bounds.
inline ConvShape checked_window(const char* op, int64_t N, int64_t C, int64_t H, int64_t W,
                                int64_t FH, int64_t FW, int64_t stride, int64_t pad) {
  FASTNN_CHECK(N >= 0 && C >= 0 && H >= 0 && W >= 0, op, ": negative input size");
  FASTNN_CHECK(FH >= 1 && FW >= 1, op, ": window ", FH, "x", FW, " must be at least 1x1");
  FASTNN_CHECK(stride >= 1, op, ": stride must be >= 1, got ", stride);
  FASTNN_CHECK(pad >= 0, op, ": pad must be >= 0, got ", pad);
  // Every size derived below is computed without overflow: a wrapped product would size an
  // output smaller than the loops that fill it.
  const std::string o(op);
  const int64_t pad2 = checked_mul(2, pad, (o + ": 2*pad").c_str());
  const int64_t HP = checked_add(H, pad2, (o + ": H + 2*pad").c_str());
  const int64_t WP = checked_add(W, pad2, (o + ": W + 2*pad").c_str());
  FASTNN_CHECK(FH <= HP && FW <= WP, op, ": window ", FH, "x", FW,
               " is larger than the padded input ", HP, "x", WP);
  const ConvShape s = ConvShape::of(N, C, H, W, FH, FW, stride, pad);
  checked_mul(checked_mul(N, C, (o + ": N*C").c_str()), checked_mul(H, W, (o + ": H*W").c_str()),
              (o + ": N*C*H*W").c_str());
  const int64_t P = checked_mul(s.OH, s.OW, (o + ": OH*OW").c_str());
  checked_mul(N, P, (o + ": N*OH*OW").c_str());
  checked_mul(C, checked_mul(FH, FW, (o + ": FH*FW").c_str()), (o + ": C*FH*FW").c_str());
  return s;
}

// A convolution with FN filters multiplies (FN, C*FH*FW) by (C*FH*FW, OH*OW) blocks only when
// there are images, filters and channels; those sizes must then fit BLAS's 32-bit ints. Checked
// before the output is allocated, and not at all when there is nothing to multiply (an empty
// batch, no filters or no channels returns at once, whatever OH*OW is).
inline bool conv_multiplies(const ConvShape& s, int64_t FN) {
  return s.N > 0 && FN > 0 && s.cols() > 0;
}
inline void check_conv_blas_sizes(const ConvShape& s, int64_t FN) {
  if (!conv_multiplies(s, FN)) return;
  blas_int(FN, "FN");
  blas_int(s.cols(), "C*FH*FW");
  blas_int(s.OH * s.OW, "OH*OW");
}

}  // namespace fastnn
