// Max pooling of one (H, W) plane and its backward, shared by the pooling kernels (pool.cpp)
// and the convolution that pools its own output (conv.cpp). Compiled into each kernel
// translation unit of a level, like the kernels themselves.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/isa.h"
#include "cpu/im2col.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {
namespace pooling {

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

// 32-byte vectors of the 2x2 pooling kernels below. They stay inside those kernels (helpers
// take them by reference and are inlined): none crosses a call, so the ABI of vector
// arguments (-Wpsabi) never comes into play.
template <typename T>
struct Vec2x2 {
  static constexpr int kLanes = 32 / sizeof(T);
  using V [[gnu::vector_size(32)]] = T;
  using I [[gnu::vector_size(32)]] = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  // v = lanes 0, 2, 4, ... (odd = 0) or 1, 3, 5, ... (odd = 1) of the 2 * kLanes values at p.
  [[gnu::always_inline]] static inline void pick(const T* p, int odd, V& v) {
    V lo, hi;
    std::memcpy(&lo, p, sizeof(V));
    std::memcpy(&hi, p + kLanes, sizeof(V));
    I idx;
    for (int i = 0; i < kLanes; ++i) idx[i] = 2 * i + odd;
    v = __builtin_shuffle(lo, hi, idx);
  }
};

// 2x2 windows at stride 2 without padding, the common case, one output row at a time in
// 32-byte vectors (GCC vector extensions: the level's widest or two SSE halves at the
// baseline): the maximum m of the four cells, then the first cell equal to m (row-major, as
// the scan). NaN would break both steps, so a row holding one is redone by the exact scan.
// With kRelu the input is read through the Relu layer's max(x, 0) (NaN passes). Planes of
// even height stacked are one tall plane: callers may pass all of them at once as OH rows.
template <bool kRelu, typename T>
void maxpool_2x2_plane(const T* x, T* out, int32_t* arg, int64_t W, int64_t OH, int64_t OW) {
  using Vx = Vec2x2<T>;
  using V = typename Vx::V;
  using I = typename Vx::I;
  constexpr int64_t L = Vx::kLanes;
  auto cell = [](T v) { return kRelu && v <= T(0) ? T(0) : v; };
  auto exact = [&](const T* top, const T* bot, T* o, int32_t* ar, int64_t j) {
    T best = -std::numeric_limits<T>::infinity();
    int32_t k = 0;
    for (int32_t c = 0; c < 4; ++c)
      fold_max(cell((c < 2 ? top : bot)[2 * j + (c & 1)]), c, best, k);
    o[j] = best;
    ar[j] = k;
  };
  const V zero = V{};
  for (int64_t q = 0; q < OH; ++q) {
    const T* top = x + 2 * q * W;
    const T* bot = top + W;
    T* o = out + q * OW;
    int32_t* ar = arg + q * OW;
    if (OW < L) {
      for (int64_t j = 0; j < OW; ++j) exact(top, bot, o, ar, j);
      continue;
    }
    I nan = I{};
    auto run = [&](int64_t j0) {
      V a, b, c, d;
      Vx::pick(top + 2 * j0, 0, a);
      Vx::pick(top + 2 * j0, 1, b);
      Vx::pick(bot + 2 * j0, 0, c);
      Vx::pick(bot + 2 * j0, 1, d);
      if constexpr (kRelu) {
        a = a <= zero ? zero : a;
        b = b <= zero ? zero : b;
        c = c <= zero ? zero : c;
        d = d <= zero ? zero : d;
      }
      nan |= (a != a) | (b != b) | (c != c) | (d != d);
      const V ab = a < b ? b : a, cd = c < d ? d : c, m = ab < cd ? cd : ab;
      const I ea = a == m, eb = b == m, ec = c == m;
      const V v = ea ? a : eb ? b : ec ? c : d;
      const I k = ea ? I{} : eb ? I{} + 1 : ec ? I{} + 2 : I{} + 3;
      std::memcpy(o + j0, &v, sizeof(V));
      for (int64_t i = 0; i < L; ++i) ar[j0 + i] = static_cast<int32_t>(k[i]);
    };
    int64_t j0 = 0;
    for (; j0 + L <= OW; j0 += L) run(j0);
    if (j0 < OW) run(OW - L);  // the last L outputs again, in one vector
    bool any = false;
    for (int64_t i = 0; i < L; ++i) any |= nan[i] != 0;
    if (any)
      for (int64_t j = 0; j < OW; ++j) exact(top, bot, o, ar, j);
  }
}

// dx of one plane (H, W) from 2x2 windows at stride 2 without padding (they never overlap), in
// vectors as maxpool_2x2_plane: each window's four cells get dout at its arg and 0 elsewhere;
// an arg outside [0, 4) routes nothing. With gate as for maxpool_backward_plane below.
template <typename T>
void maxpool_2x2_backward_plane(const T* dout, const int32_t* arg, const T* gate, T* dx,
                                int64_t H, int64_t W, int64_t OH, int64_t OW) {
  using Vx = Vec2x2<T>;
  using V = typename Vx::V;
  using I = typename Vx::I;
  constexpr int64_t L = Vx::kLanes;
  for (int64_t h = 2 * OH; h < H; ++h) std::fill(dx + h * W, dx + (h + 1) * W, T(0));
  I lo_idx, hi_idx;  // interleave two vectors: a0 b0 a1 b1 ...
  for (int i = 0; i < L; ++i) {
    lo_idx[i] = (i % 2) * L + i / 2;
    hi_idx[i] = (i % 2) * L + L / 2 + i / 2;
  }
  const V zero = V{};
  for (int64_t q = 0; q < OH; ++q) {
    T* top = dx + 2 * q * W;
    T* bot = top + W;
    std::fill(top + 2 * OW, top + W, T(0));
    std::fill(bot + 2 * OW, bot + W, T(0));
    const T* d = dout + q * OW;
    const int32_t* a = arg + q * OW;
    const T* g = gate ? gate + q * OW : nullptr;
    auto one = [&](int64_t j) {
      const T v = g && g[j] == T(0) ? T(0) : d[j];
      const int32_t k = a[j];
      top[2 * j] = k == 0 ? v : T(0);
      top[2 * j + 1] = k == 1 ? v : T(0);
      bot[2 * j] = k == 2 ? v : T(0);
      bot[2 * j + 1] = k == 3 ? v : T(0);
    };
    if (OW < L) {
      for (int64_t j = 0; j < OW; ++j) one(j);
      continue;
    }
    auto run = [&](int64_t j0) {
      V v, gv;
      std::memcpy(&v, d + j0, sizeof(V));
      if (g) {
        std::memcpy(&gv, g + j0, sizeof(V));
        v = gv == zero ? zero : v;
      }
      I k;
      for (int64_t i = 0; i < L; ++i) k[i] = a[j0 + i];
      const V t0 = k == 0 ? v : zero, t1 = k == 1 ? v : zero;
      const V t2 = k == 2 ? v : zero, t3 = k == 3 ? v : zero;
      // One store per vector: a store of two from a stack array would stall on forwarding.
      const V r0 = __builtin_shuffle(t0, t1, lo_idx), r1 = __builtin_shuffle(t0, t1, hi_idx);
      const V r2 = __builtin_shuffle(t2, t3, lo_idx), r3 = __builtin_shuffle(t2, t3, hi_idx);
      std::memcpy(top + 2 * j0, &r0, sizeof(V));
      std::memcpy(top + 2 * j0 + L, &r1, sizeof(V));
      std::memcpy(bot + 2 * j0, &r2, sizeof(V));
      std::memcpy(bot + 2 * j0 + L, &r3, sizeof(V));
    };
    int64_t j0 = 0;
    for (; j0 + L <= OW; j0 += L) run(j0);
    if (j0 < OW) run(OW - L);  // the last L windows again, in one vector
  }
}

// dx of one plane: each dout to its window's argmax. kFH, kFW, kS as for maxpool_plane (a
// compile-time FW turns k / FW into a shift or a multiply). With gate (the plane's pooled
// output, after a ReLU), a window's dout passes only where its gate is not 0: the ReLU's
// backward folded in.
template <int kFH, int kFW, int kS, typename T>
void maxpool_backward_plane(const T* dout, const int32_t* arg, const T* gate, T* dxp,
                            const ConvShape& s) {
  const int64_t FH = kFH ? kFH : s.FH, FW = kFW ? kFW : s.FW, S = kS ? kS : s.stride;
  const int64_t H = s.H, W = s.W, OW = s.OW, pad = s.pad;
  std::fill(dxp, dxp + H * W, T(0));
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int32_t k = arg[oh * OW + ow];
      if (k < 0 || k >= FH * FW) continue;  // not an index of this window
      if (gate && gate[oh * OW + ow] == T(0)) continue;
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

}  // namespace pooling
}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
