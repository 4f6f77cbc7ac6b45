// Geometry types shared by the kernels of every instruction set and the bindings (they cross
// the kernel table of cpu/dispatch.h, so they live outside the per-level namespaces).
#pragma once
#include <cstdint>

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
};

}  // namespace fastnn
