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

// A max pooling window (no padding) over each filter's (OH, OW) output plane.
struct PoolWindow {
  int64_t FH, FW, stride;
};

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

// The book's Convolution -> Relu -> Pooling (groups 1, pool pad 0) in one pass per image:
// out (N, FN, PH, PW) and arg as maxpool2d_forward (cpu/pool.h) gives for relu(conv(x, W) + b),
// which never leaves the thread's cache. keep as for conv2d_forward.
template <typename T>
void conv2d_relu_maxpool_forward(const T* x, const T* W, const T* b, T* out, int32_t* arg,
                                 const ConvShape& s, int64_t FN, const PoolWindow& pw, T* keep);

// Its backward from dout (N, FN, PH, PW), the forward's arg and out: dx (may be null), dW and
// db as conv2d_backward gives for the gradient that the pooling and the ReLU pass back.
template <typename T>
void conv2d_relu_maxpool_backward(const T* dout, const int32_t* arg, const T* out, const T* x,
                                  const T* W, T* dx, T* dW, T* db, const ConvShape& s,
                                  int64_t FN, const PoolWindow& pw);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
