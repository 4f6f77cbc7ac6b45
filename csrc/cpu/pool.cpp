#include "cpu/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/parallel.h"

namespace fastnn::cpu {

// Every kernel here runs one task per (n, c) plane: planes never share input or output pixels.

template <typename T>
void maxpool2d_forward(const T* x, T* out, int32_t* arg, const ConvShape& s) {
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * P * s.FH * s.FW))
  for (int64_t plane = 0; plane < s.N * s.C; ++plane) {
    const T* xp = x + plane * HW;
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        T best = kNegInf;
        int32_t best_k = 0;
        bool first = true;
        for (int64_t fh = 0; fh < s.FH; ++fh) {
          const int64_t h = oh * s.stride - s.pad + fh;
          for (int64_t fw = 0; fw < s.FW; ++fw) {
            const int64_t w = ow * s.stride - s.pad + fw;
            const T v = (h >= 0 && h < s.H && w >= 0 && w < s.W) ? xp[h * s.W + w] : kNegInf;
            if (first || v > best || (std::isnan(v) && !std::isnan(best))) {
              best = v;
              best_k = static_cast<int32_t>(fh * s.FW + fw);
              first = false;
            }
          }
        }
        const int64_t o = plane * P + oh * s.OW + ow;
        out[o] = best;
        arg[o] = best_k;
      }
    }
  }
}

template <typename T>
void maxpool2d_backward(const T* dout, const int32_t* arg, T* dx, const ConvShape& s) {
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * (HW + P)))
  for (int64_t plane = 0; plane < s.N * s.C; ++plane) {
    T* dxp = dx + plane * HW;
    std::fill(dxp, dxp + HW, T(0));
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const int64_t o = plane * P + oh * s.OW + ow;
        const int64_t k = arg[o];
        if (k < 0 || k >= s.FH * s.FW) continue;  // not an index of this window
        const int64_t h = oh * s.stride - s.pad + k / s.FW;
        const int64_t w = ow * s.stride - s.pad + k % s.FW;
        if (h >= 0 && h < s.H && w >= 0 && w < s.W) dxp[h * s.W + w] += dout[o];
      }
    }
  }
}

template <typename T>
void avgpool2d_forward(const T* x, T* out, const ConvShape& s) {
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
  const T K = T(s.FH * s.FW);
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * P * s.FH * s.FW))
  for (int64_t plane = 0; plane < s.N * s.C; ++plane) {
    const T* xp = x + plane * HW;
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      const int64_t h0 = oh * s.stride - s.pad;
      const int64_t hlo = std::max<int64_t>(h0, 0), hhi = std::min<int64_t>(h0 + s.FH, s.H);
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const int64_t w0 = ow * s.stride - s.pad;
        const int64_t wlo = std::max<int64_t>(w0, 0), whi = std::min<int64_t>(w0 + s.FW, s.W);
        T sum = T(0);
        for (int64_t h = hlo; h < hhi; ++h)
          for (int64_t w = wlo; w < whi; ++w) sum += xp[h * s.W + w];
        out[plane * P + oh * s.OW + ow] = sum / K;
      }
    }
  }
}

template <typename T>
void avgpool2d_backward(const T* dout, T* dx, const ConvShape& s) {
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
  const T K = T(s.FH * s.FW);
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * P * s.FH * s.FW))
  for (int64_t plane = 0; plane < s.N * s.C; ++plane) {
    T* dxp = dx + plane * HW;
    std::fill(dxp, dxp + HW, T(0));
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      const int64_t h0 = oh * s.stride - s.pad;
      const int64_t hlo = std::max<int64_t>(h0, 0), hhi = std::min<int64_t>(h0 + s.FH, s.H);
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const int64_t w0 = ow * s.stride - s.pad;
        const int64_t wlo = std::max<int64_t>(w0, 0), whi = std::min<int64_t>(w0 + s.FW, s.W);
        const T g = dout[plane * P + oh * s.OW + ow] / K;
        for (int64_t h = hlo; h < hhi; ++h)
          for (int64_t w = wlo; w < whi; ++w) dxp[h * s.W + w] += g;
      }
    }
  }
}

#define FASTNN_INSTANTIATE(T)                                                                \
  template void maxpool2d_forward<T>(const T*, T*, int32_t*, const ConvShape&);              \
  template void maxpool2d_backward<T>(const T*, const int32_t*, T*, const ConvShape&);       \
  template void avgpool2d_forward<T>(const T*, T*, const ConvShape&);                        \
  template void avgpool2d_backward<T>(const T*, T*, const ConvShape&);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cpu
