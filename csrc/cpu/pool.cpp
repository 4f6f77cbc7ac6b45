#include "cpu/pool.h"

#include <algorithm>
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
      const int64_t h0 = oh * s.stride - s.pad;
      const int64_t hlo = std::max<int64_t>(h0, 0), hhi = std::min<int64_t>(h0 + s.FH, s.H);
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const int64_t w0 = ow * s.stride - s.pad;
        const int64_t wlo = std::max<int64_t>(w0, 0), whi = std::min<int64_t>(w0 + s.FW, s.W);
        // Pass 1, branch free: the maximum of the pixels inside the image and whether any is
        // NaN (std::max skips a NaN v). Pass 2 finds the first pixel in window order that
        // is the maximum (the first NaN when there is one), as np.argmax does.
        T best = kNegInf;
        bool nan = false;
        for (int64_t h = hlo; h < hhi; ++h) {
          for (int64_t w = wlo; w < whi; ++w) {
            const T v = xp[h * s.W + w];
            nan |= v != v;
            best = std::max(best, v);
          }
        }
        if (nan) best = std::numeric_limits<T>::quiet_NaN();
        int64_t best_k = 0;
        if (hhi - hlo == s.FH && whi - wlo == s.FW) {
          // Window inside the image: branch-free search (the winner's position is random).
          best_k = s.FH * s.FW;
          for (int64_t fh = s.FH - 1; fh >= 0; --fh) {
            const T* row = xp + (h0 + fh) * s.W + w0;
            for (int64_t fw = s.FW - 1; fw >= 0; --fw) {
              const bool match = (row[fw] == best) | (nan & (row[fw] != row[fw]));
              best_k += (fh * s.FW + fw - best_k) & -static_cast<int64_t>(match);
            }
          }
        } else {
          // Padded cells count as -inf, so when best is -inf the first -inf cell wins, padded
          // or not; the scan always stops inside the window.
          for (int64_t h = h0; h < h0 + s.FH; ++h) {
            const bool row_inside = h >= hlo && h < hhi;
            int64_t w = w0;
            for (; w < w0 + s.FW; ++w) {
              const T v = (row_inside && w >= wlo && w < whi) ? xp[h * s.W + w] : kNegInf;
              if (nan ? v != v : v == best) break;
            }
            best_k += w - w0;
            if (w < w0 + s.FW) break;
          }
        }
        const int64_t o = plane * P + oh * s.OW + ow;
        out[o] = best;
        arg[o] = static_cast<int32_t>(best_k);
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
