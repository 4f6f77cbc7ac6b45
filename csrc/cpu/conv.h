// Convolution (the book's Convolution layer) on NCHW arrays: GEMMs (OpenBLAS) + bias, by the
// fastest of three ways per shape: im2col columns; at stride 1, one GEMM per filter tap on the
// padded image (no columns); a 1x1 filter on the image itself. At stride 1, dx is computed as
// the convolution of dout with the flipped, transposed filters where that is cheaper than
// columns folded back by col2im (conv.cpp says when).
// W has shape (FN, C, FH, FW), read as the matrix Wm (FN, C*FH*FW); out has shape (N, FN, OH, OW).
//
// Grouped convolution: x's channels and W's FN filters are split into `groups` equal parts, and
// filter group g sees only channel group g. s then describes one group (s.C = channels per group,
// W of shape (FN, s.C, FH, FW), x of groups*s.C channels). One channel per group (depthwise, as
// in MobileNet) runs a direct kernel, since a 1-channel im2col makes GEMMs too thin to pay.
#pragma once
#include <cstdint>

#include "core/isa.h"
#include "cpu/im2col.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// out = conv(x, W) + b. b may be null (no bias). keep, when not null, receives a copy of x
// (N, groups*C, H, W), made in the same pass over x where the kernel can (depthwise).
template <typename T>
void conv2d_forward(const T* x, const T* W, const T* b, T* out, const ConvShape& s, int64_t FN,
                    int64_t groups, T* keep);

// From dout (N, FN, OH, OW): dx (N, C, H, W), dW (FN, C, FH, FW), db (FN,), all overwritten.
// dx may be null: only dW and db are computed.
template <typename T>
void conv2d_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db,
                     const ConvShape& s, int64_t FN, int64_t groups);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
