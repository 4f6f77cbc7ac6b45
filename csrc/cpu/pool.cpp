#include "cpu/pool.h"

#include <algorithm>
#include <limits>
#include <type_traits>

#include "core/parallel.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

namespace {

// [lo, hi): the output positions along one axis whose windows lie inside [0, size).
struct Span {
  int64_t lo, hi;
  Span(int64_t size, int64_t F, int64_t stride, int64_t pad, int64_t out) {
    lo = std::min((pad + stride - 1) / stride, out);
    hi = size + pad < F ? lo : std::clamp((size + pad - F) / stride + 1, lo, out);
  }
};

// Max pooling scans each window in row-major order from best = -inf, arg = 0, and cell k with
// value v wins when v > best: the first maximum wins ties, as in np.argmax. Padding (-inf) never
// wins, so a window may skip its padded cells: when every cell is -inf the answer is cell 0
// either way.

// The exact scan: a NaN also wins while best is not NaN, so the first NaN wins, like np.max.
template <typename T>
inline void fold_max(T v, int64_t k, T& best, int32_t& arg) {
  const bool take = v > best || (v != v && best == best);
  best = take ? v : best;
  arg = take ? static_cast<int32_t>(k) : arg;
}

// n windows of one output row, all inside the image, window j's cell (0, 0) at x[j * stride].
// kFH, kFW, kS > 0 fix the window and stride at compile time (0: read from s), so the compiler
// unrolls the window and vectorizes over j. The scan ignores NaN (exact only for windows
// without NaN); the return value says whether any cell was NaN. Written with masks and std::max,
// which GCC vectorizes and keeps branch free in the scalar remainder.
template <int kFH, int kFW, int kS, typename T>
bool max_inside(const T* __restrict x, T* __restrict out, int32_t* __restrict arg, int64_t n,
                const ConvShape& s) {
  const int64_t FH = kFH ? kFH : s.FH, FW = kFW ? kFW : s.FW, S = kS ? kS : s.stride;
  const int64_t W = s.W;
  int32_t nan = 0;  // not bool: GCC 12 vectorizes no loop with a 1-byte flag beside floats
  for (int64_t j = 0; j < n; ++j) {
    T best = -std::numeric_limits<T>::infinity();
    int32_t k = 0;
    for (int64_t fh = 0; fh < FH; ++fh) {
      for (int64_t fw = 0; fw < FW; ++fw) {
        const T v = x[j * S + fh * W + fw];
        nan |= v != v;
        const int32_t wins = -static_cast<int32_t>(v > best);  // all ones or zero
        k = (k & ~wins) | (static_cast<int32_t>(fh * FW + fw) & wins);
        best = std::max(best, v);
      }
    }
    out[j] = best;
    arg[j] = k;
  }
  return nan != 0;
}

template <int kFH, int kFW, int kS, typename T>
void maxpool_plane(const T* xp, T* out, int32_t* arg, const ConvShape& s) {
  const int64_t FH = kFH ? kFH : s.FH, FW = kFW ? kFW : s.FW, S = kS ? kS : s.stride;
  const int64_t H = s.H, W = s.W, OW = s.OW, pad = s.pad;
  const Span rows(H, FH, S, pad, s.OH), cols(W, FW, S, pad, OW);
  constexpr int64_t kVec = 32 / sizeof(T);  // windows in a 256-bit vector
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    T* o = out + oh * OW;
    int32_t* a = arg + oh * OW;
    const int64_t h0 = oh * S - pad;
    // Windows inside the image first; a NaN among them sends them to the exact scan below.
    bool inside_done = false;
    if (oh >= rows.lo && oh < rows.hi && cols.lo < cols.hi) {
      // The compiler finishes a vectorized loop with scalar windows. When the windows tile the
      // row (FW a multiple of the stride), those past the last multiple of kVec are redone as
      // the row's last kVec ones instead, in vector code. Otherwise the vector loop would stop
      // short of the row's end anyway (it reads past the last window), so it does not pay.
      const int64_t n = cols.hi - cols.lo, tail = FW % S == 0 && n > kVec ? n % kVec : 0;
      const T* x0 = xp + h0 * W + cols.lo * S - pad;
      bool nan = max_inside<kFH, kFW, kS>(x0, o + cols.lo, a + cols.lo, n - tail, s);
      if (tail)
        nan |= max_inside<kFH, kFW, kS>(x0 + (n - kVec) * S, o + cols.hi - kVec,
                                        a + cols.hi - kVec, kVec, s);
      inside_done = !nan;
    }
    const int64_t fh_lo = std::max<int64_t>(-h0, 0), fh_hi = std::min(FH, H - h0);
    for (int64_t ow = 0; ow < OW; ++ow) {
      if (inside_done && ow >= cols.lo && ow < cols.hi) continue;
      // Only the window's cells inside the image.
      const int64_t w0 = ow * S - pad;
      const int64_t fw_lo = std::max<int64_t>(-w0, 0), fw_hi = std::min(FW, W - w0);
      T best = -std::numeric_limits<T>::infinity();
      int32_t k = 0;
      for (int64_t fh = fh_lo; fh < fh_hi; ++fh)
        for (int64_t fw = fw_lo; fw < fw_hi; ++fw)
          fold_max(xp[(h0 + fh) * W + w0 + fw], fh * FW + fw, best, k);
      o[ow] = best;
      a[ow] = k;
    }
  }
}

// dx of one plane: each dout to its window's argmax. kFH, kFW, kS as for maxpool_plane (a
// compile-time FW turns k / FW into a shift or a multiply).
template <int kFH, int kFW, int kS, typename T>
void maxpool_backward_plane(const T* dout, const int32_t* arg, T* dxp, const ConvShape& s) {
  const int64_t FH = kFH ? kFH : s.FH, FW = kFW ? kFW : s.FW, S = kS ? kS : s.stride;
  const int64_t H = s.H, W = s.W, OW = s.OW, pad = s.pad;
  std::fill(dxp, dxp + H * W, T(0));
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int32_t k = arg[oh * OW + ow];
      if (k < 0 || k >= FH * FW) continue;  // not an index of this window
      const int64_t h = oh * S - pad + k / FW, w = ow * S - pad + k % FW;
      if (h >= 0 && h < H && w >= 0 && w < W) dxp[h * W + w] += dout[oh * OW + ow];
    }
  }
}

// Calls body(kFH, kFW, kS) (std::integral_constant) with the window and stride fixed at
// compile time for the common 2x2 and 3x3 windows, 0 (read them from s) otherwise.
template <typename Body>
void with_window(const ConvShape& s, Body&& body) {
  using zero = std::integral_constant<int, 0>;
  using two = std::integral_constant<int, 2>;
  using three = std::integral_constant<int, 3>;
  if (s.FH == 2 && s.FW == 2 && s.stride == 2) return body(two(), two(), two());
  if (s.FH == 2 && s.FW == 2) return body(two(), two(), zero());
  if (s.FH == 3 && s.FW == 3 && s.stride == 2) return body(three(), three(), two());
  if (s.FH == 3 && s.FW == 3) return body(three(), three(), zero());
  body(zero(), zero(), zero());
}

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
  with_window(s, [&](auto FH, auto FW, auto S) {
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * s.C * (HW + P)))
    for (int64_t plane = 0; plane < s.N * s.C; ++plane)
      maxpool_backward_plane<FH, FW, S>(dout + plane * P, arg + plane * P, dx + plane * HW, s);
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
