// Geometry types shared by the kernels of every instruction set and the bindings (they cross
// the kernel table of cpu/dispatch.h, so they live outside the per-level namespaces).
#pragma once
#include <cstdint>

#include "core/check.h"

namespace fastnn {

// Weight layout of a recurrent layer (see cpu/rnn.h): the book's Wx (D, gH) or torch.nn's
// weight_ih (gH, D).
enum class Layout { Book, Torch };

// Output size of a sliding window (callers check in + 2*pad >= filter).
inline int64_t window_out_size(int64_t in, int64_t filter, int64_t stride, int64_t pad) {
  return (in + 2 * pad - filter) / stride + 1;
}

// A sliding window over NCHW images (convolution, im2col, pooling).
struct ConvShape {
  int64_t N, C, H, W, FH, FW, stride, pad, OH, OW;
  ConvShape(int64_t N, int64_t C, int64_t H, int64_t W, int64_t FH, int64_t FW, int64_t stride,
            int64_t pad)
      : N(N), C(C), H(H), W(W), FH(FH), FW(FW), stride(stride), pad(pad),
        OH(window_out_size(H, FH, stride, pad)), OW(window_out_size(W, FW, stride, pad)) {}
  int64_t rows() const { return N * OH * OW; }       // rows of col
  int64_t cols() const { return C * FH * FW; }       // columns of col
  bool empty_input() const { return N == 0 || C == 0 || H == 0 || W == 0; }
};

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
