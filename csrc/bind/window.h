// Shape checks of the im2col, conv and pool bindings: core/shapes.h's checked_window (shared
// with the CUDA binding), and the same for an x array. fastnn/ops/meta.py checks first, in the
// user's words; these keep direct _C calls from ever reading out of bounds.
#pragma once
#include <pybind11/stl.h>

#include "bind/registry.h"
#include "core/shapes.h"

namespace fastnn::bind {

using fastnn::checked_window;

// The window over x (N, C, H, W).
template <typename T>
ConvShape checked_window(const char* op, const Array<T>& x, int64_t FH, int64_t FW,
                         int64_t stride, int64_t pad) {
  FASTNN_CHECK(x.ndim() == 4, op, ": x must be 4-D (N, C, H, W), got shape ",
               shape_str(shape_of(x)));
  return checked_window(op, x.shape(0), x.shape(1), x.shape(2), x.shape(3), FH, FW, stride, pad);
}

}  // namespace fastnn::bind
