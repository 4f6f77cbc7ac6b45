// im2col / col2im with the book's layout: col has shape (N*OH*OW, C*FH*FW); row (n, oh, ow)
// holds the C*FH*FW input values under the filter at output position (oh, ow) of image n.
#pragma once
#include <cstdint>

namespace fastnn::cpu {

// Output size of a sliding window: (in + 2*pad - filter) / stride + 1 (callers check in+2*pad >= filter).
inline int64_t window_out_size(int64_t in, int64_t filter, int64_t stride, int64_t pad) {
  return (in + 2 * pad - filter) / stride + 1;
}

// Geometry shared by im2col, convolution and pooling.
struct ConvShape {
  int64_t N, C, H, W, FH, FW, stride, pad, OH, OW;
  ConvShape(int64_t N, int64_t C, int64_t H, int64_t W, int64_t FH, int64_t FW, int64_t stride,
            int64_t pad)
      : N(N), C(C), H(H), W(W), FH(FH), FW(FW), stride(stride), pad(pad),
        OH(window_out_size(H, FH, stride, pad)), OW(window_out_size(W, FW, stride, pad)) {}
  int64_t rows() const { return N * OH * OW; }       // rows of col
  int64_t cols() const { return C * FH * FW; }       // columns of col
};

// x (N, C, H, W) -> col (N*OH*OW, C*FH*FW); padded positions read as 0.
template <typename T> void im2col(const T* x, T* col, const ConvShape& s);
// col (N*OH*OW, C*FH*FW) -> x (N, C, H, W): x is overwritten with the sum of every column entry
// that came from each pixel (overlapping windows accumulate; padded positions are dropped).
template <typename T> void col2im(const T* col, T* x, const ConvShape& s);

}  // namespace fastnn::cpu
