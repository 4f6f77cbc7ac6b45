// im2col and col2im, one element each. col has the book's layout (N*OH*OW, C*FH*FW).
#pragma once
#include "cuda/body/common.h"

namespace fastnn::body {

// col[idx] for idx in [0, N*OH*OW*C*FH*FW): the input pixel under the window, 0 in the padding.
template <typename T>
FASTNN_HD T im2col_element(const T* x, const ConvShape& s, int64_t idx) {
  const int64_t K = s.FH * s.FW, CK = s.C * K, P = s.OH * s.OW;
  const int64_t r = idx / CK, k = idx % CK;
  const int64_t n = r / P, oh = (r % P) / s.OW, ow = r % s.OW;
  const int64_t c = k / K, fh = (k % K) / s.FW, fw = k % s.FW;
  const int64_t h = oh * s.stride - s.pad + fh, w = ow * s.stride - s.pad + fw;
  if (h < 0 || h >= s.H || w < 0 || w >= s.W) return T(0);
  return x[((n * s.C + c) * s.H + h) * s.W + w];
}

// x[idx] for idx in [0, N*C*H*W): the sum of every col entry taken from that pixel. Each
// pixel gathers its own entries, so no two threads write the same place (no atomics).
template <typename T>
FASTNN_HD T col2im_element(const T* col, const ConvShape& s, int64_t idx) {
  const int64_t w = idx % s.W, h = (idx / s.W) % s.H, c = (idx / (s.W * s.H)) % s.C;
  const int64_t n = idx / (s.W * s.H * s.C);
  const int64_t K = s.FH * s.FW, CK = s.C * K;
  int64_t oh_lo, oh_hi, ow_lo, ow_hi;
  covering(h, s.FH, s.stride, s.pad, s.OH, oh_lo, oh_hi);
  covering(w, s.FW, s.stride, s.pad, s.OW, ow_lo, ow_hi);
  T sum = T(0);
  for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
    const int64_t fh = h + s.pad - oh * s.stride;
    for (int64_t ow = ow_lo; ow < ow_hi; ++ow) {
      const int64_t fw = w + s.pad - ow * s.stride;
      sum += col[((n * s.OH + oh) * s.OW + ow) * CK + c * K + fh * s.FW + fw];
    }
  }
  return sum;
}

// Convolution output out (N, FN, OH, OW) from the GEMM result rows (N*OH*OW, FN) plus b
// (b may be null); idx indexes out.
template <typename T>
FASTNN_HD T conv_out_element(const T* rows, const T* b, int64_t FN, int64_t P, int64_t idx) {
  const int64_t p = idx % P, fn = (idx / P) % FN, n = idx / (P * FN);
  const T v = rows[(n * P + p) * FN + fn];
  return b ? v + b[fn] : v;
}

// The reverse layout change for the backward: dout (N, FN, OH, OW) read as rows
// (N*OH*OW, FN); idx indexes the rows matrix.
template <typename T>
FASTNN_HD T conv_dout_row_element(const T* dout, int64_t FN, int64_t P, int64_t idx) {
  const int64_t fn = idx % FN, r = idx / FN, n = r / P, p = r % P;
  return dout[(n * FN + fn) * P + p];
}

}  // namespace fastnn::body
