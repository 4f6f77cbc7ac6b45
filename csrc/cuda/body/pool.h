// Max and average pooling, one output element (forward) or one input pixel (backward, a
// gather over the windows covering it, so no atomics). Same semantics as csrc/cpu/pool.cpp.
#pragma once
#include "cuda/body/common.h"

namespace fastnn::body {

// Output o of (N, C, OH, OW): the window maximum (padding is -inf; a NaN wins, the first
// one) and its window-local index fh*FW + fw, the first on ties, as np.max/np.argmax.
template <typename T>
FASTNN_HD void maxpool_forward_element(const T* x, T* out, int32_t* arg, const ConvShape& s,
                                       int64_t o) {
  const int64_t ow = o % s.OW, oh = (o / s.OW) % s.OH, plane = o / (s.OW * s.OH);
  const T* xp = x + plane * s.H * s.W;
  const int64_t h0 = oh * s.stride - s.pad, w0 = ow * s.stride - s.pad;
  T best = neg_inf<T>();
  int64_t best_k = 0;
  for (int64_t fh = 0; fh < s.FH; ++fh) {
    const int64_t h = h0 + fh;
    for (int64_t fw = 0; fw < s.FW; ++fw) {
      const int64_t w = w0 + fw;
      const T v = (h >= 0 && h < s.H && w >= 0 && w < s.W) ? xp[h * s.W + w] : neg_inf<T>();
      if (v != v) {
        out[o] = v;
        arg[o] = static_cast<int32_t>(fh * s.FW + fw);
        return;
      }
      if (v > best) {
        best = v;
        best_k = fh * s.FW + fw;
      }
    }
  }
  out[o] = best;
  arg[o] = static_cast<int32_t>(best_k);
}

// dx[idx] of (N, C, H, W): the dout of every window whose argmax is this pixel.
template <typename T>
FASTNN_HD T maxpool_backward_element(const T* dout, const int32_t* arg, const ConvShape& s,
                                     int64_t idx) {
  const int64_t w = idx % s.W, h = (idx / s.W) % s.H, plane = idx / (s.W * s.H);
  int64_t oh_lo, oh_hi, ow_lo, ow_hi;
  covering(h, s.FH, s.stride, s.pad, s.OH, oh_lo, oh_hi);
  covering(w, s.FW, s.stride, s.pad, s.OW, ow_lo, ow_hi);
  T sum = T(0);
  for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
    const int64_t fh = h + s.pad - oh * s.stride;
    for (int64_t ow = ow_lo; ow < ow_hi; ++ow) {
      const int64_t o = (plane * s.OH + oh) * s.OW + ow;
      if (arg[o] == fh * s.FW + (w + s.pad - ow * s.stride)) sum += dout[o];
    }
  }
  return sum;
}

// Output o: the window mean with padding counted as zeros (divisor always FH*FW).
template <typename T>
FASTNN_HD T avgpool_forward_element(const T* x, const ConvShape& s, int64_t o) {
  const int64_t ow = o % s.OW, oh = (o / s.OW) % s.OH, plane = o / (s.OW * s.OH);
  const T* xp = x + plane * s.H * s.W;
  const int64_t h0 = oh * s.stride - s.pad, w0 = ow * s.stride - s.pad;
  const int64_t hlo = max64(h0, 0), hhi = min64(h0 + s.FH, s.H);
  const int64_t wlo = max64(w0, 0), whi = min64(w0 + s.FW, s.W);
  T sum = T(0);
  for (int64_t h = hlo; h < hhi; ++h)
    for (int64_t w = wlo; w < whi; ++w) sum += xp[h * s.W + w];
  return sum / T(s.FH * s.FW);
}

// dx[idx]: dout / (FH*FW) from every window covering the pixel.
template <typename T>
FASTNN_HD T avgpool_backward_element(const T* dout, const ConvShape& s, int64_t idx) {
  const int64_t w = idx % s.W, h = (idx / s.W) % s.H, plane = idx / (s.W * s.H);
  int64_t oh_lo, oh_hi, ow_lo, ow_hi;
  covering(h, s.FH, s.stride, s.pad, s.OH, oh_lo, oh_hi);
  covering(w, s.FW, s.stride, s.pad, s.OW, ow_lo, ow_hi);
  const T K = T(s.FH * s.FW);
  T sum = T(0);
  for (int64_t oh = oh_lo; oh < oh_hi; ++oh)
    for (int64_t ow = ow_lo; ow < ow_hi; ++ow) sum += dout[(plane * s.OH + oh) * s.OW + ow] / K;
  return sum;
}

}  // namespace fastnn::body
