// Max and average pooling on NCHW arrays; windows of pool_h x pool_w (FH x FW in ConvShape),
// output (N, C, OH, OW) with OH = (H + 2*pad - FH) / stride + 1.
#pragma once
#include <cstdint>

#include "core/isa.h"
#include "cpu/im2col.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// Max pooling; padded positions count as -inf. arg (N, C, OH, OW) receives the index of the
// maximum within its window, fh * FW + fw, the first one on ties; like np.max/np.argmax, a
// window holding NaN gives NaN and the index of its first NaN.
template <typename T> void maxpool2d_forward(const T* x, T* out, int32_t* arg, const ConvShape& s);
// dx (N, C, H, W) is overwritten: each dout goes to its window's argmax (overlaps accumulate).
template <typename T>
void maxpool2d_backward(const T* dout, const int32_t* arg, T* dx, const ConvShape& s);

// Average pooling; padded positions count as zeros and the divisor is always FH*FW
// (count_include_pad=True).
template <typename T> void avgpool2d_forward(const T* x, T* out, const ConvShape& s);
// dx is overwritten: each pixel receives dout / (FH*FW) from every window covering it.
template <typename T> void avgpool2d_backward(const T* dout, T* dx, const ConvShape& s);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
