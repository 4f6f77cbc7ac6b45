// Shape checks shared by the im2col, conv and pool bindings (fastnn/ops/meta.py checks first, in the
// user's words; these keep direct _C calls from ever reading out of bounds).
#pragma once
#include <pybind11/stl.h>

#include <string>

#include "bind/registry.h"
#include "core/shapes.h"

namespace fastnn::bind {

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
  const ConvShape s(N, C, H, W, FH, FW, stride, pad);
  checked_mul(checked_mul(N, C, (o + ": N*C").c_str()), checked_mul(H, W, (o + ": H*W").c_str()),
              (o + ": N*C*H*W").c_str());
  const int64_t P = checked_mul(s.OH, s.OW, (o + ": OH*OW").c_str());
  checked_mul(N, P, (o + ": N*OH*OW").c_str());
  checked_mul(C, checked_mul(FH, FW, (o + ": FH*FW").c_str()), (o + ": C*FH*FW").c_str());
  return s;
}

template <typename T>
ConvShape checked_window(const char* op, const Array<T>& x, int64_t FH, int64_t FW,
                              int64_t stride, int64_t pad) {
  FASTNN_CHECK(x.ndim() == 4, op, ": x must be 4-D (N, C, H, W), got shape ",
               shape_str(shape_of(x)));
  return checked_window(op, x.shape(0), x.shape(1), x.shape(2), x.shape(3), FH, FW, stride, pad);
}

}  // namespace fastnn::bind
