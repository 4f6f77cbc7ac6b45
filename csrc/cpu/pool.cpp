#include "cpu/pool.h"

#include <algorithm>
#include <limits>
#include <type_traits>

#include "core/parallel.h"
#include "cpu/pool_plane.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

namespace {

using namespace pooling;

// Average pooling sums the window's cells inside the image in row-major order and divides by
// FH * FW (padding counts as zeros). kFH, kFW, kS as for maxpool_plane: windows inside the image
// take the compile-time path, which the compiler vectorizes over the output row.
template <int kFH, int kFW, int kS, typename T>
void avgpool_plane(const T* xp, T* out, const ConvShape& s) {
  const int64_t FH = kFH ? kFH : s.FH, FW = kFW ? kFW : s.FW, S = kS ? kS : s.stride;
  const int64_t H = s.H, W = s.W, OW = s.OW, pad = s.pad;
  const Span rows(H, FH, S, pad, s.OH), cols(W, FW, S, pad, OW);
  const T K = T(FH * FW);
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    T* o = out + oh * OW;
    const int64_t h0 = oh * S - pad;
    const bool row_inside = oh >= rows.lo && oh < rows.hi;
    if (row_inside) {
      const T* __restrict x0 = xp + h0 * W + cols.lo * S - pad;
      T* __restrict o0 = o + cols.lo;
      for (int64_t j = 0; j < cols.hi - cols.lo; ++j) {
        T sum = T(0);
        for (int64_t fh = 0; fh < FH; ++fh)
          for (int64_t fw = 0; fw < FW; ++fw) sum += x0[j * S + fh * W + fw];
        o0[j] = sum / K;
      }
    }
    const int64_t fh_lo = std::max<int64_t>(-h0, 0), fh_hi = std::min(FH, H - h0);
    for (int64_t ow = 0; ow < OW; ++ow) {
      if (row_inside && ow >= cols.lo && ow < cols.hi) continue;
      const int64_t w0 = ow * S - pad;
      const int64_t fw_lo = std::max<int64_t>(-w0, 0), fw_hi = std::min(FW, W - w0);
      T sum = T(0);
      for (int64_t fh = fh_lo; fh < fh_hi; ++fh)
        for (int64_t fw = fw_lo; fw < fw_hi; ++fw) sum += xp[(h0 + fh) * W + w0 + fw];
      o[ow] = sum / K;
    }
  }
}

// dx of one plane: every window cell inside the image gets dout / (FH * FW).
template <int kFH, int kFW, int kS, typename T>
void avgpool_backward_plane(const T* dout, T* dxp, const ConvShape& s) {
  const int64_t FH = kFH ? kFH : s.FH, FW = kFW ? kFW : s.FW, S = kS ? kS : s.stride;
  const int64_t H = s.H, W = s.W, OW = s.OW, pad = s.pad;
  const T K = T(FH * FW);
  std::fill(dxp, dxp + H * W, T(0));
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    const int64_t h0 = oh * S - pad;
    const int64_t fh_lo = std::max<int64_t>(-h0, 0), fh_hi = std::min(FH, H - h0);
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t w0 = ow * S - pad;
      const int64_t fw_lo = std::max<int64_t>(-w0, 0), fw_hi = std::min(FW, W - w0);
      const T g = dout[oh * OW + ow] / K;
      for (int64_t fh = fh_lo; fh < fh_hi; ++fh)
        for (int64_t fw = fw_lo; fw < fw_hi; ++fw) dxp[(h0 + fh) * W + w0 + fw] += g;
    }
  }
}

}  // namespace

// Every kernel here runs one task per (n, c) plane: planes never share input or output pixels.

template <typename T>
void maxpool2d_forward(const T* x, T* out, int32_t* arg, const ConvShape& s) {
  if (s.N == 0 || s.C == 0) return;  // empty output
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
  if (s.FH == 2 && s.FW == 2 && s.stride == 2 && s.pad == 0) {
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * P * 4))
    for (int64_t plane = 0; plane < s.N * s.C; ++plane)
      maxpool_2x2_plane<false>(x + plane * HW, out + plane * P, arg + plane * P, s.W, s.OH, s.OW);
    return;
  }
  with_window(s, [&](auto FH, auto FW, auto S) {
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * P * s.FH * s.FW))
    for (int64_t plane = 0; plane < s.N * s.C; ++plane)
      maxpool_plane<FH, FW, S>(x + plane * HW, out + plane * P, arg + plane * P, s);
  });
}

template <typename T>
void maxpool2d_backward(const T* dout, const int32_t* arg, T* dx, const ConvShape& s) {
  if (s.empty_input()) return;  // empty dx
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
  const T* no_gate = nullptr;
  if (s.FH == 2 && s.FW == 2 && s.stride == 2 && s.pad == 0) {
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * (HW + P)))
    for (int64_t plane = 0; plane < s.N * s.C; ++plane)
      maxpool_2x2_backward_plane(dout + plane * P, arg + plane * P, no_gate, dx + plane * HW, s.H,
                                 s.W, s.OH, s.OW);
    return;
  }
  with_window(s, [&](auto FH, auto FW, auto S) {
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * (HW + P)))
    for (int64_t plane = 0; plane < s.N * s.C; ++plane)
      maxpool_backward_plane<FH, FW, S>(dout + plane * P, arg + plane * P, no_gate,
                                        dx + plane * HW, s);
  });
}

template <typename T>
void avgpool2d_forward(const T* x, T* out, const ConvShape& s) {
  if (s.N == 0 || s.C == 0) return;  // empty output
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
  with_window(s, [&](auto FH, auto FW, auto S) {
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * P * s.FH * s.FW))
    for (int64_t plane = 0; plane < s.N * s.C; ++plane)
      avgpool_plane<FH, FW, S>(x + plane * HW, out + plane * P, s);
  });
}

template <typename T>
void avgpool2d_backward(const T* dout, T* dx, const ConvShape& s) {
  if (s.empty_input()) return;  // empty dx
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
  with_window(s, [&](auto FH, auto FW, auto S) {
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * (HW + P * s.FH * s.FW)))
    for (int64_t plane = 0; plane < s.N * s.C; ++plane)
      avgpool_backward_plane<FH, FW, S>(dout + plane * P, dx + plane * HW, s);
  });
}

#define FASTNN_INSTANTIATE(T)                                                                \
  template void maxpool2d_forward<T>(const T*, T*, int32_t*, const ConvShape&);              \
  template void maxpool2d_backward<T>(const T*, const int32_t*, T*, const ConvShape&);       \
  template void avgpool2d_forward<T>(const T*, T*, const ConvShape&);                        \
  template void avgpool2d_backward<T>(const T*, T*, const ConvShape&);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
