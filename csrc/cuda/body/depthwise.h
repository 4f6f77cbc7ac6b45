// Depthwise convolution (groups == C), direct: x (N, C, H, W), W (FN, 1, FH, FW), b (FN,),
// out (N, FN, OH, OW); F = FN / C filters per channel, filter f reads channel f / F. s.C is
// the number of input channels. Same semantics as csrc/cpu/conv.cpp's depthwise path: padding
// is zeros that are multiplied like pixels (0 * inf is NaN there, as in NumPy's im2col).
#pragma once
#include "cuda/body/common.h"

namespace fastnn::body {

// x[n, c, h, w], or 0 outside the plane (the padding).
template <typename T>
FASTNN_HD T pixel_or_zero(const T* x, const ConvShape& s, int64_t n, int64_t c, int64_t h,
                          int64_t w) {
  if (h < 0 || h >= s.H || w < 0 || w >= s.W) return T(0);
  return x[((n * s.C + c) * s.H + h) * s.W + w];
}

// out[o] for o in [0, N*FN*OH*OW): b[f] (0 when b is null) + the taps of filter f over its
// channel's window.
template <typename T>
FASTNN_HD T depthwise_forward_element(const T* x, const T* W, const T* b, const ConvShape& s,
                                      int64_t FN, int64_t o) {
  const int64_t ow = o % s.OW, oh = (o / s.OW) % s.OH, f = (o / (s.OW * s.OH)) % FN;
  const int64_t n = o / (s.OW * s.OH * FN), c = f / (FN / s.C);
  const int64_t h0 = oh * s.stride - s.pad, w0 = ow * s.stride - s.pad;
  const T* w = W + f * s.FH * s.FW;
  T sum = b ? b[f] : T(0);
  for (int64_t fh = 0; fh < s.FH; ++fh)
    for (int64_t fw = 0; fw < s.FW; ++fw)
      sum += w[fh * s.FW + fw] * pixel_or_zero(x, s, n, c, h0 + fh, w0 + fw);
  return sum;
}

// dx[idx] for idx in [0, N*C*H*W): the sum over the F filters of the pixel's channel and the
// output positions whose window covers it of dout * tap. Each pixel gathers its own terms, so
// no two threads write the same place (no atomics).
template <typename T>
FASTNN_HD T depthwise_dx_element(const T* dout, const T* W, const ConvShape& s, int64_t FN,
                                 int64_t idx) {
  const int64_t w = idx % s.W, h = (idx / s.W) % s.H, c = (idx / (s.W * s.H)) % s.C;
  const int64_t n = idx / (s.W * s.H * s.C), F = FN / s.C, P = s.OH * s.OW;
  int64_t oh_lo, oh_hi, ow_lo, ow_hi;
  covering(h, s.FH, s.stride, s.pad, s.OH, oh_lo, oh_hi);
  covering(w, s.FW, s.stride, s.pad, s.OW, ow_lo, ow_hi);
  T sum = T(0);
  for (int64_t f = c * F; f < (c + 1) * F; ++f) {
    const T* d = dout + (n * FN + f) * P;
    const T* wf = W + f * s.FH * s.FW;
    for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
      const int64_t fh = h + s.pad - oh * s.stride;
      for (int64_t ow = ow_lo; ow < ow_hi; ++ow)
        sum += d[oh * s.OW + ow] * wf[fh * s.FW + (w + s.pad - ow * s.stride)];
    }
  }
  return sum;
}

// The terms of dW as a (rows, cols) = (N*OH*OW, FN*FH*FW) matrix for column_partial: term
// (r, j) is dout[n, f, oh, ow] * xpad[n, f / F, oh*stride - pad + fh, ow*stride - pad + fw]
// for r = (n, oh, ow) and j = (f, fh, fw); dW[j] is the sum of column j.
template <typename T>
struct DepthwiseDwTerm {
  const T* dout;
  const T* x;
  ConvShape s;
  int64_t FN;
  FASTNN_HD T operator()(int64_t r, int64_t j) const {
    const int64_t P = s.OH * s.OW, K = s.FH * s.FW;
    const int64_t n = r / P, p = r % P, oh = p / s.OW, ow = p % s.OW;
    const int64_t f = j / K, fh = (j % K) / s.FW, fw = j % s.FW, c = f / (FN / s.C);
    return dout[(n * FN + f) * P + p] *
           pixel_or_zero(x, s, n, c, oh * s.stride - s.pad + fh, ow * s.stride - s.pad + fw);
  }
};

// dout (N, FN, P) as a (rows, cols) = (N*P, FN) matrix for column_partial: db[f] is the sum
// of column f.
template <typename T>
struct DoutPlaneTerm {
  const T* dout;
  int64_t FN, P;
  FASTNN_HD T operator()(int64_t r, int64_t f) const {
    return dout[((r / P) * FN + f) * P + r % P];
  }
};

}  // namespace fastnn::body
