// im2col / col2im with the book's layout: col has shape (N*OH*OW, C*FH*FW); row (n, oh, ow)
// holds the C*FH*FW input values under the filter at output position (oh, ow) of image n.
#pragma once
#include <cstdint>

#include "core/isa.h"
#include "core/shapes.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// x (N, C, H, W) -> col (N*OH*OW, C*FH*FW); padded positions read as 0.
template <typename T> void im2col(const T* x, T* col, const ConvShape& s);
// col (N*OH*OW, C*FH*FW) -> x (N, C, H, W): x is overwritten with the sum of every column entry
// that came from each pixel (overlapping windows accumulate; padded positions are dropped).
template <typename T> void col2im(const T* col, T* x, const ConvShape& s);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
