#include "cpu/conv.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "core/blas.h"
#include "core/buffers.h"
#include "core/parallel.h"
#include "cpu/pool_plane.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {
namespace {

// A block of output rows is im2col'ed, multiplied and (backward) folded back while its columns
// are still in cache; its column buffer stays near this size (at least one output row).
constexpr int64_t kBlockBytes = int64_t(1) << 20;

// Scratch of at least one element from the buffer cache (core/buffers.h), given back when the
// call ends: reused by the next call like the outputs are, and freed by release_buffers() (a
// thread_local buffer once kept the largest padded image of every thread for good: 190 MB
// after one 1x16x1024x1024 convolution with pad 100). Null when the memory is not there.
struct Release {
  void operator()(void* p) const { buffers::release(p); }
};
template <typename T>
using Buf = std::unique_ptr<T, Release>;

template <typename T>
Buf<T> scratch(int64_t n) {
  n = std::max<int64_t>(n, 1);
  if (static_cast<uint64_t>(n) > SIZE_MAX / sizeof(T)) return Buf<T>();
  return Buf<T>(static_cast<T*>(buffers::acquire(std::size_t(n) * sizeof(T))));
}

// Images go to OpenMP threads, each calling BLAS single-threaded, when there is at least one
// image per thread; otherwise images run in turn and each GEMM is split over the threads.
inline bool images_in_parallel(const ConvShape& s) {
  return get_num_threads() > 1 && s.N >= get_num_threads();
}

// A sliding window over one image of C channels (H, W), padded by ph rows and pw columns of
// zeros, giving (OH, OW). Forward and dW walk x with the layer's window (image_window); dx at
// stride 1 walks dout with the transposed window, whose padding differs per axis (see
// dx_by_convolution). Local to the GEMM path here (its copy flag and transposed form serve no
// other kernel); the layer's window is core/shapes.h's ConvShape.
struct ImageWindow {
  int64_t C, H, W, FH, FW, stride, ph, pw, OH, OW;
  bool copy = false;  // build the columns even where they are the image (see forward_window)
  int64_t cols() const { return C * FH * FW; }
  // Its columns are the image itself (a 1x1 filter at stride 1 without padding).
  bool identity() const {
    return !copy && FH == 1 && FW == 1 && stride == 1 && ph == 0 && pw == 0;
  }
};

inline ImageWindow image_window(const ConvShape& s) {
  return {s.C, s.H, s.W, s.FH, s.FW, s.stride, s.pad, s.pad, s.OH, s.OW};
}

// At stride 1, dx (C, H, W) of a group is the convolution of its dout (F, OH, OW), padded by
// FH-1-pad and FW-1-pad, with the filters flipped and transposed (see flipped_filters and
// flipped_tap_filters): GEMMs with K = F*FH*FW (or F per tap), and no col2im.
inline ImageWindow transposed(const ConvShape& s, int64_t F) {
  return {F, s.OH, s.OW, s.FH, s.FW, 1, s.FH - 1 - s.pad, s.FW - 1 - s.pad, s.H, s.W};
}

template <typename T>
int64_t block_rows(const ImageWindow& w) {
  if (w.identity()) return std::max<int64_t>(1, w.OH);  // no column buffer
  const int64_t row_bytes = std::max<int64_t>(1, w.OW * w.cols() * int64_t(sizeof(T)));
  return std::clamp<int64_t>(kBlockBytes / row_bytes, 1, std::max<int64_t>(1, w.OH));
}

template <typename T>
int64_t col_len(const ImageWindow& w) {
  return w.identity() ? 0 : block_rows<T>(w) * w.OW * w.cols();
}

// The kernels work on one image and one block of output rows [oh0, oh1) at a time, with the
// columns transposed: colT (C*FH*FW, R), R = (oh1-oh0)*OW, row j = (c, fh, fw) holding the
// input under filter tap j at each output position. Its rows are runs of input rows, cheap
// to build and to fold back. With padding the image is first copied with its zero border
// (C, Hp, Wp), so that every run is a plain copy without bounds checks (faster than runs
// clipped at the border).

inline int64_t padded_len(const ImageWindow& w) {
  return w.ph || w.pw ? w.C * (w.H + 2 * w.ph) * (w.W + 2 * w.pw) : 0;
}

// xn with its zero border in xp when there is padding or for conv_taps (returns xp), else xn
// itself. For conv_taps xp also gets FW zeros past the last plane (see tap_len).
template <typename T>
const T* padded(const T* xn, T* xp, const ImageWindow& w, bool taps = false) {
  if (!w.ph && !w.pw && !taps) return xn;
  const int64_t Wp = w.W + 2 * w.pw, plane = (w.H + 2 * w.ph) * Wp;
  for (int64_t c = 0; c < w.C; ++c) {
    T* pc = xp + c * plane;
    std::fill(pc, pc + w.ph * Wp, T(0));
    for (int64_t h = 0; h < w.H; ++h) {
      T* row = pc + (h + w.ph) * Wp;
      std::fill(row, row + w.pw, T(0));
      std::copy(xn + (c * w.H + h) * w.W, xn + (c * w.H + h + 1) * w.W, row + w.pw);
      std::fill(row + w.pw + w.W, row + Wp, T(0));
    }
    std::fill(pc + (w.H + w.ph) * Wp, pc + plane, T(0));
  }
  if (taps) std::fill(xp + w.C * plane, xp + w.C * plane + w.FW, T(0));
  return xp;
}

// colT from xs, the image with its border (or without when there is no padding).
template <typename T>
void im2col_t(const T* xs, T* colT, const ImageWindow& w, int64_t oh0, int64_t oh1) {
  const int64_t Wp = w.W + 2 * w.pw, Hp = w.H + 2 * w.ph, OW = w.OW, st = w.stride;
  const int64_t R = (oh1 - oh0) * OW;
  T* dst = colT;
  for (int64_t c = 0; c < w.C; ++c)
    for (int64_t fh = 0; fh < w.FH; ++fh)
      for (int64_t fw = 0; fw < w.FW; ++fw, dst += R) {
        const T* src = xs + (c * Hp + fh) * Wp + fw;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const T* r = src + oh * st * Wp;
          T* d = dst + (oh - oh0) * OW;
          if (st == 1) {
            std::copy(r, r + OW, d);
          } else {
            for (int64_t ow = 0; ow < OW; ++ow) d[ow] = r[ow * st];
          }
        }
      }
}

// Adds colT onto xs, the image gradient with its border (the adjoint of im2col_t).
template <typename T>
void col2im_t_add(const T* colT, T* xs, const ImageWindow& w, int64_t oh0, int64_t oh1) {
  const int64_t Wp = w.W + 2 * w.pw, Hp = w.H + 2 * w.ph, OW = w.OW, st = w.stride;
  const int64_t R = (oh1 - oh0) * OW;
  const T* src = colT;
  for (int64_t c = 0; c < w.C; ++c)
    for (int64_t fh = 0; fh < w.FH; ++fh)
      for (int64_t fw = 0; fw < w.FW; ++fw, src += R) {
        T* dst = xs + (c * Hp + fh) * Wp + fw;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          T* r = dst + oh * st * Wp;
          const T* d = src + (oh - oh0) * OW;
          if (st == 1) {
            for (int64_t ow = 0; ow < OW; ++ow) r[ow] += d[ow];
          } else {
            for (int64_t ow = 0; ow < OW; ++ow) r[ow * st] += d[ow];
          }
        }
      }
}

// A zeroed gradient buffer for image dxn: dxp (with border) when there is padding, else dxn.
template <typename T>
T* zeroed_grad(T* dxn, T* dxp, const ImageWindow& w) {
  const int64_t len = padded_len(w);
  T* g = len ? dxp : dxn;
  std::fill(g, g + (len ? len : w.C * w.H * w.W), T(0));
  return g;
}

// Copies the inside of dxp onto dxn when there is padding (else dxn holds the gradient).
template <typename T>
void unpad_grad(const T* dxp, T* dxn, const ImageWindow& w) {
  if (!padded_len(w)) return;
  const int64_t Wp = w.W + 2 * w.pw, Hp = w.H + 2 * w.ph;
  for (int64_t c = 0; c < w.C; ++c)
    for (int64_t h = 0; h < w.H; ++h) {
      const T* row = dxp + (c * Hp + h + w.ph) * Wp + w.pw;
      std::copy(row, row + w.W, dxn + (c * w.H + h) * w.W);
    }
}

// The columns of rows [oh0, oh1) of xs (the image with its border, see padded): colT filled
// by im2col_t, or the image itself when the window is the identity. ld: their row stride.
template <typename T>
const T* columns(const T* xs, T* colT, const ImageWindow& w, int64_t oh0, int64_t oh1,
                 int64_t& ld) {
  if (w.identity()) {
    ld = w.OH * w.OW;
    return xs + oh0 * w.OW;
  }
  ld = (oh1 - oh0) * w.OW;
  im2col_t(xs, colT, w, oh0, oh1);
  return colT;
}

// A stride-1 window over at least 8 channels runs tap by tap (conv_taps): packing the padded
// image for each tap's GEMM costs less than building and packing its columns, while few
// channels (K = C) leave those GEMMs too thin.
inline bool by_taps(const ImageWindow& w) {
  constexpr int64_t kInt = std::numeric_limits<int>::max();  // GEMM sizes are BLAS ints
  return w.stride == 1 && w.FH * w.FW > 1 && w.C >= 8 &&
         (w.H + 2 * w.ph) * (w.W + 2 * w.pw) <= kInt - w.FW;
}

template <typename T>
bool all_finite(const T* a, int64_t n) {
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) ok &= std::isfinite(a[i]);
  return ok;
}

// dx by the transposed convolution when its columns (F*FH*FW per pixel of x) are fewer than
// those of dcol = Wm^T @ dout (C*FH*FW per output position), which col2im reads back; as
// many, when it may go by_taps (taps_ok) with at most 32 filters (their tap GEMMs beat dcol's
// GEMM with K = F and col2im; with 64 or more, at 7x7 to 28x28, they did not); and for a 1x1
// filter, whose dout needs no columns at all.
inline bool dx_by_convolution(const ConvShape& s, int64_t F, bool taps_ok) {
  if (s.stride != 1 || s.pad > s.FH - 1 || s.pad > s.FW - 1) return false;
  constexpr int64_t kInt = std::numeric_limits<int>::max();  // its GEMM's sizes are BLAS ints
  if (F * s.FH * s.FW > kInt || s.H * s.W > kInt) return false;
  const ImageWindow t = transposed(s, F);
  const double dout_cols = double(F) * double(s.H * s.W);
  const double dcol = double(s.C) * double(s.OH * s.OW);
  return t.identity() || dout_cols < dcol ||
         (dout_cols == dcol && taps_ok && by_taps(t) && F <= 32);
}

// Tap GEMMs are too small for gemm() to split over threads: conv_taps runs where images go to
// threads, or on one thread (else the columns' larger GEMMs are split).
inline bool taps_allowed(const ConvShape& s) {
  return images_in_parallel(s) || get_num_threads() == 1;
}

// conv_taps's padded copy: C planes and FW zeros for the last tap's last row to read.
inline int64_t tap_len(const ImageWindow& w) {
  return w.C * (w.H + 2 * w.ph) * (w.W + 2 * w.pw) + w.FW;
}

// Output rows per conv_taps block: its wide buffer (M, rows, Wp) stays near kBlockBytes, and
// a float tap GEMM within OpenBLAS's unpacked path where that is faster (core/blas.h; one
// core: 32x420x64 97 GF/s vs 32x840x64 70, 64x224x64 119 vs 64x448x64 81).
template <typename T>
int64_t tap_rows(const ImageWindow& w, int64_t M) {
  const int64_t Wp = w.W + 2 * w.pw, row_bytes = std::max<int64_t>(1, M * Wp * int64_t(sizeof(T)));
  int64_t rows = std::clamp<int64_t>(kBlockBytes / row_bytes, 1, std::max<int64_t>(1, w.OH));
  const double row_mnk = double(M) * double(Wp) * double(w.C);
  if (std::is_same_v<T, float> && row_mnk <= detail::kBlasSmallMNK &&
      detail::blas_small_kernels_fast())
    rows = std::min(rows, static_cast<int64_t>(detail::kBlasSmallMNK / row_mnk));
  return rows;
}

template <typename T>
int64_t wide_len(const ImageWindow& w, int64_t M) {
  return tap_rows<T>(w, M) * (w.W + 2 * w.pw) * M;
}

// out (M, OH, OW) += the stride-1 convolution of xs (padded by padded(..., true), rows Wp
// long) with the filters Wr (FH*FW, M, C), tap by tap, without columns: the input under tap
// (fh, fw) at output (oh, ow) is xs[c][oh + fh][ow + fw], so for a block of output rows tap
// t adds Wr_t (M, C) @ the (C, rows*Wp) matrix at xs + (oh0 + fh)*Wp + fw (rows a plane
// apart) onto wide (M, rows*Wp). Its columns ow >= OW straddle two image rows and are dropped.
template <typename T>
void conv_taps(const T* xs, const T* Wr, int64_t M, T* out, T* wide, const ImageWindow& w) {
  const int64_t Wp = w.W + 2 * w.pw, plane = (w.H + 2 * w.ph) * Wp, P = w.OH * w.OW;
  const int64_t rows = tap_rows<T>(w, M);
  for (int64_t oh0 = 0; oh0 < w.OH; oh0 += rows) {
    const int64_t oh1 = std::min(w.OH, oh0 + rows), N = (oh1 - oh0) * Wp;
    for (int64_t t = 0; t < w.FH * w.FW; ++t)
      gemm(false, false, M, N, w.C, T(1), Wr + t * M * w.C, w.C,
           xs + (oh0 + t / w.FW) * Wp + t % w.FW, plane, T(t ? 1 : 0), wide, N);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        T* o = out + m * P + oh * w.OW;
        const T* src = wide + m * N + (oh - oh0) * Wp;
#pragma omp simd
        for (int64_t ow = 0; ow < w.OW; ++ow) o[ow] += src[ow];
      }
  }
}

// Wr (groups, FH*FW, F, C): Wr[g][t][f][c] = W[g*F + f][c][t], forward's taps.
template <typename T>
void tap_filters(const T* W, T* Wr, const ConvShape& s, int64_t FN, int64_t groups) {
  const int64_t F = FN / groups, K = s.FH * s.FW, CK = s.cols();
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t f = 0; f < F; ++f)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t t = 0; t < K; ++t)
          Wr[((g * K + t) * F + f) * s.C + c] = W[(g * F + f) * CK + c * K + t];
}

// Wr (groups, FH*FW, C, F): Wr[g][t][c][f] = W[g*F + f][c][FH*FW-1-t], the taps of the
// transposed window (dx by conv_taps).
template <typename T>
void flipped_tap_filters(const T* W, T* Wr, const ConvShape& s, int64_t FN, int64_t groups) {
  const int64_t F = FN / groups, K = s.FH * s.FW, CK = s.cols();
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t f = 0; f < F; ++f)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t t = 0; t < K; ++t)
          Wr[((g * K + t) * s.C + c) * F + f] = W[(g * F + f) * CK + c * K + K - 1 - t];
}

// Wt (groups, C, F*FH*FW): Wt[g][c][f][i][j] = W[g*F + f][c][FH-1-i][FW-1-j], the filters of
// the transposed window.
template <typename T>
void flipped_filters(const T* W, T* Wt, const ConvShape& s, int64_t FN, int64_t groups) {
  const int64_t F = FN / groups, K = s.FH * s.FW, CK = s.cols();
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t f = 0; f < F; ++f) {
        const T* src = W + (g * F + f) * CK + c * K;
        T* dst = Wt + ((g * s.C + c) * F + f) * K;
        for (int64_t k = 0; k < K; ++k) dst[k] = src[K - 1 - k];
      }
}

// The forward's window: a 1x1 filter at stride 1 reads the image in place, unless OpenBLAS's
// unpacked float path would go over it (B) in more than two blocks of filter rows (core/
// blas.h); from a cold image that costs more than one copy into hot columns (one core,
// 32x24x32x32 to 144 filters, four blocks: 3.55 ms in place vs 2.85 ms copied).
template <typename T>
ImageWindow forward_window(const ConvShape& s, int64_t F) {
  ImageWindow w = image_window(s);
  if (std::is_same_v<T, float> && w.identity()) {
    const int64_t chunk = detail::unpacked_chunk_rows(F, s.OH * s.OW, s.C);
    w.copy = chunk > 0 && (F + chunk - 1) / chunk > 2;
  }
  return w;
}

// out_n (FN, OH*OW) = b + Wm (FN, CK) @ colT, block by block, group by group (filters
// [g*F, (g+1)*F) against channel group g); by conv_taps with Wr (tap_filters) when not null.
template <typename T>
void forward_image(const T* xn, const T* W, const T* Wr, const T* b, T* outn, const ConvShape& s,
                   int64_t FN, int64_t groups, T* colT, T* xp) {
  const ImageWindow w = forward_window<T>(s, FN / groups);
  const int64_t CK = s.cols(), P = s.OH * s.OW, rows = block_rows<T>(w);
  const int64_t F = FN / groups, CHW = s.C * s.H * s.W;
  for (int64_t f = 0; f < FN; ++f) std::fill(outn + f * P, outn + (f + 1) * P, b ? b[f] : T(0));
  if (CK == 0) return;  // no input channels: out is the bias
  for (int64_t g = 0; g < groups; ++g) {
    if (Wr) {
      const T* xs = padded(xn + g * CHW, xp, w, true);
      conv_taps(xs, Wr + g * F * CK, F, outn + g * F * P, colT, w);
      continue;
    }
    const T* xs = padded(xn + g * CHW, xp, w);
    for (int64_t oh0 = 0; oh0 < s.OH; oh0 += rows) {
      const int64_t oh1 = std::min(s.OH, oh0 + rows), R = (oh1 - oh0) * s.OW;
      int64_t ld;
      const T* cols = columns(xs, colT, w, oh0, oh1, ld);
      gemm(false, false, F, R, CK, T(1), W + g * F * CK, CK, cols, ld, T(1),
           outn + g * F * P + oh0 * s.OW, P);
    }
  }
}

// dWT (groups, CK, F) += colT @ dout_n^T, the transposed dW (OpenBLAS runs this orientation
// faster: the long side CK is its M); dx_n (skipped when dxn is null) either as the
// convolution of dout_n with Wt (when Wt is not null, see dx_by_convolution; by conv_taps
// with Wt from flipped_tap_filters when dx_taps, else by flipped_filters's), or as
// dcolT = Wm^T @ dout_n (overwriting colT) folded onto dx_n. Group by group as forward_image;
// xp holds the padded x, then the padded dout; dxp the padded dx when folding; dT, when not
// null, dout_n^T (P, F) for dWT's GEMMs (see dout_transposed).
template <typename T>
void backward_image(const T* doutn, const T* xn, const T* W, const T* Wt, bool dx_taps, T* dxn,
                    T* dWT, const ConvShape& s, int64_t FN, int64_t groups, T* colT, T* xp,
                    T* dxp, T* dT) {
  const ImageWindow w = image_window(s);
  const int64_t CK = s.cols(), P = s.OH * s.OW, rows = block_rows<T>(w);
  const int64_t F = FN / groups, CHW = s.C * s.H * s.W, HW = s.H * s.W;
  for (int64_t g = 0; g < groups; ++g) {
    T* dxg = dxn ? dxn + g * CHW : nullptr;
    const T* dg = doutn + g * F * P;
    const bool fold = dxg && !Wt;
    const T* xs = padded(xn + g * CHW, xp, w);
    T* dxs = fold ? zeroed_grad(dxg, dxp, w) : nullptr;
    if (dT) transpose(F, P, dg, dT);
    for (int64_t oh0 = 0; oh0 < s.OH; oh0 += rows) {
      const int64_t oh1 = std::min(s.OH, oh0 + rows), R = (oh1 - oh0) * s.OW;
      const T* d = dg + oh0 * s.OW;  // (F, R) block of dout_n, row stride P
      int64_t ld;
      const T* cols = columns(xs, colT, w, oh0, oh1, ld);
      if (dT)
        gemm(false, false, CK, F, R, T(1), cols, ld, dT + oh0 * s.OW * F, F, T(1),
             dWT + g * CK * F, F);
      else
        gemm(false, true, CK, F, R, T(1), cols, ld, d, P, T(1), dWT + g * CK * F, F);
      if (!fold) continue;
      gemm(true, false, CK, R, F, T(1), W + g * F * CK, CK, d, P, T(0), colT, R);
      col2im_t_add(colT, dxs, w, oh0, oh1);
    }
    if (fold) unpad_grad(dxs, dxg, w);
    if (!dxg || fold) continue;
    const ImageWindow t = transposed(s, F);
    if (dx_taps) {
      std::fill(dxg, dxg + CHW, T(0));
      conv_taps(padded(dg, xp, t, true), Wt + g * s.C * t.cols(), s.C, dxg, colT, t);
      continue;
    }
    const T* ds = padded(dg, xp, t);
    const int64_t KT = t.cols(), trows = block_rows<T>(t);
    for (int64_t h0 = 0; h0 < s.H; h0 += trows) {
      const int64_t h1 = std::min(s.H, h0 + trows), R = (h1 - h0) * s.W;
      int64_t ld;
      const T* cols = columns(ds, colT, t, h0, h1, ld);
      gemm(false, false, s.C, R, KT, T(1), Wt + g * s.C * KT, KT, cols, ld, T(0), dxg + h0 * s.W,
           HW);
    }
  }
}

// Whether dWT's float GEMMs (CK x F x R) read dout transposed into a buffer (dT of
// backward_image): with B untransposed OpenBLAS skips packing it (core/blas.h), and with long
// columns (CK) that beat packing; with short ones the transpose cost more. dW only, 2 threads,
// medians of 4-7 alternated A/B processes: 64x64x28x28 with 32 3x3 filters (CK 576) 13.7 ->
// 11.5 ms, 64x64x14x14 with 64 (CK 576) 5.7 -> 5.0, 100x16x14x14 with 32 (CK 144) 1.84 ->
// 1.56; SimpleConvNet's 100x1x28x28 with 30 5x5 filters (CK 25) 0.97 -> 1.17, hence the bound.
// double has no unpacked path: the ResNet block's 32x64x56x56 dW went 74.7 -> 81.4 ms.
template <typename T>
bool dout_transposed(int64_t CK) {
  return std::is_same_v<T, float> && CK >= 64;
}

// ---- depthwise: one input channel per group, F = FN / C filters per channel.
// The padded plane is split into its stride x stride phases, phase (a, b) holding
// xpad[i*stride + a][j*stride + b] (Hq x Wq), so that a strided window becomes a unit-stride
// one on a single phase: out[oh][ow] = sum over taps of w[fh][fw] *
// phase(fh % stride, fw % stride)[oh + fh / stride][ow + fw / stride]. With output rows Wq
// apart, every tap is then one long axpy (forward, dx) or dot product (dW) over OH*Wq
// elements; the columns ow >= OW are computed and dropped (forward) or held at zero (backward).
struct Phases {
  // A run of n pixels i, i + stride, ... of the H x W plane, landing at j, j + 1, ... of the
  // phases (the same for every plane, so worked out once per call).
  struct Run {
    int64_t i, j, n;
  };
  // At stride 2, row h's even pixels land at j0, j0 + 1, ... and its odd ones at j1, ...
  struct Row {
    int64_t i, j0, j1;
  };
  int64_t s, Hq, Wq, plane, len, run, W;
  std::vector<int64_t> offset;  // where tap fh*FW + fw's run starts in the phases
  std::vector<Run> runs;
  std::vector<Row> rows;  // stride 2 only
  explicit Phases(const ConvShape& c)
      : s(c.stride), Hq((c.H + 2 * c.pad + s - 1) / s), Wq((c.W + 2 * c.pad + s - 1) / s),
        plane(checked_mul(Hq, Wq, "depthwise phase size")),
        len(checked_add(checked_mul(s * s, plane, "depthwise phases"), c.FW,
                        "depthwise phases")),
        run(c.OH * Wq), W(c.W) {
    // The last run of the last phase reads up to FW past the phases, hence the slack in len.
    for (int64_t fh = 0; fh < c.FH; ++fh)
      for (int64_t fw = 0; fw < c.FW; ++fw)
        offset.push_back(((fh % s) * s + fw % s) * plane + (fh / s) * Wq + fw / s);
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t hp = h + c.pad, row = (hp % s) * s * plane + (hp / s) * Wq;
      if (s == 2)
        rows.push_back({h * c.W, row + (c.pad % 2) * plane + c.pad / 2,
                        row + ((c.pad + 1) % 2) * plane + (c.pad + 1) / 2});
      for (int64_t b = 0; b < s; ++b) {
        const int64_t w0 = ((b - c.pad) % s + s) % s;  // first w with (w + pad) % s == b
        if (w0 < c.W)
          runs.push_back(
              {h * c.W + w0, row + b * plane + (w0 + c.pad) / s, (c.W - w0 + s - 1) / s});
      }
    }
  }
};

// dst[k * DST] = src[k * SRC] for k < n, with the steps known at compile time (0: the runtime
// step s), so the short runs (a row of a small plane) vectorise and inline; a runtime step in
// the loop kept them scalar and the copies cost more than the taps.
template <int SRC, int DST, typename T>
inline void copy_run(const T* src, T* dst, int64_t n, int64_t s) {
  const int64_t a = SRC ? SRC : s, b = DST ? DST : s;
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) dst[k * b] = src[k * a];
}

// Writes the plane xc into the phases ph; the other elements of ph (padding, slack) are left
// as they are: zero, once ph has been zeroed.
template <int S, typename T>
void split_phases_s(const T* xc, T* ph, const Phases& p) {
  for (const auto& r : p.runs) copy_run<S, 1>(xc + r.i, ph + r.j, r.n, p.s);
}

// Stride 2: each row's even and odd pixels in one pass (loads, two permutes, full stores),
// where two strided runs per row cost twice the loads and, merging, scattered stores.
template <typename T>
void split_rows(const T* xc, T* ph, const Phases& p) {
  const int64_t half = p.W / 2;
  for (const auto& r : p.rows) {
    const T* src = xc + r.i;
    T *ev = ph + r.j0, *od = ph + r.j1;
#pragma omp simd
    for (int64_t k = 0; k < half; ++k) {
      ev[k] = src[2 * k];
      od[k] = src[2 * k + 1];
    }
    if (p.W & 1) ev[half] = src[p.W - 1];
  }
}

template <typename T>
void merge_rows(const T* dph, T* dxc, const Phases& p) {
  const int64_t half = p.W / 2;
  for (const auto& r : p.rows) {
    T* dst = dxc + r.i;
    const T *ev = dph + r.j0, *od = dph + r.j1;
#pragma omp simd
    for (int64_t k = 0; k < half; ++k) {
      dst[2 * k] = ev[k];
      dst[2 * k + 1] = od[k];
    }
    if (p.W & 1) dst[p.W - 1] = ev[half];
  }
}

template <typename T>
void split_phases(const T* xc, T* ph, const Phases& p) {
  if (p.s == 1)
    split_phases_s<1>(xc, ph, p);
  else if (p.s == 2)
    split_rows(xc, ph, p);
  else
    split_phases_s<0>(xc, ph, p);
}

// The adjoint: dxc (H, W) = the plane's elements of the phases' gradient dph.
template <int S, typename T>
void merge_phases_s(const T* dph, T* dxc, const Phases& p) {
  for (const auto& r : p.runs) copy_run<1, S>(dph + r.j, dxc + r.i, r.n, p.s);
}

template <typename T>
void merge_phases(const T* dph, T* dxc, const Phases& p) {
  if (p.s == 1)
    merge_phases_s<1>(dph, dxc, p);
  else if (p.s == 2)
    merge_rows(dph, dxc, p);
  else
    merge_phases_s<0>(dph, dxc, p);
}

// o (OH, OW) = bias + the taps w (FH, FW) over the phases ph; acc holds p.run elements.
template <typename T>
void depthwise_plane_forward(const T* ph, const T* w, T bias, T* o, T* acc, const ConvShape& c,
                             const Phases& p) {
  std::fill(acc, acc + p.run, bias);
  for (int64_t k = 0; k < c.FH * c.FW; ++k) {
    const T wv = w[k];
    const T* src = ph + p.offset[k];
#pragma omp simd
    for (int64_t i = 0; i < p.run; ++i) acc[i] += wv * src[i];
  }
  for (int64_t oh = 0; oh < c.OH; ++oh) copy_run<1, 1>(acc + oh * p.Wq, o + oh * c.OW, c.OW, 1);
}

// From dout plane d (OH, OW) as rows of Wq (dflat, whose columns ow >= OW stay zero): the
// taps' gradients added to acc (FH*FW, double), and, when dph is not null, the phases'
// gradient. The long runs include those zero columns, which add nothing while every number is
// finite; an inf or NaN there (0 * inf) sends the tap through the OW real columns of each row,
// as NumPy would compute it.
template <typename T>
void depthwise_plane_backward(const T* d, const T* ph, const T* w, T* dflat, double* acc,
                              T* dph, const ConvShape& c, const Phases& p) {
  for (int64_t oh = 0; oh < c.OH; ++oh) copy_run<1, 1>(d + oh * c.OW, dflat + oh * p.Wq, c.OW, 1);
  for (int64_t k = 0; k < c.FH * c.FW; ++k) {
    const T* src = ph + p.offset[k];
    T part = 0;
#pragma omp simd reduction(+ : part)
    for (int64_t i = 0; i < p.run; ++i) part += dflat[i] * src[i];
    if (!std::isfinite(part)) {
      part = 0;
      for (int64_t r = 0; r < p.run; r += p.Wq)
        for (int64_t i = r; i < r + c.OW; ++i) part += dflat[i] * src[i];
    }
    acc[k] += part;
    if (!dph) continue;
    const T wv = w[k];
    T* dst = dph + p.offset[k];
    if (std::isfinite(wv)) {
#pragma omp simd
      for (int64_t i = 0; i < p.run; ++i) dst[i] += wv * dflat[i];
    } else {
      for (int64_t r = 0; r < p.run; r += p.Wq)
        for (int64_t i = r; i < r + c.OW; ++i) dst[i] += wv * dflat[i];
    }
  }
}

// C = groups channels; filter f reads channel f / F. Planes (n, c) go to threads; each splits
// its plane once for the F filters that read it (and copies it to keep).
template <typename T>
void depthwise_forward(const T* x, const T* W, const T* b, T* out, const ConvShape& s,
                       int64_t FN, int64_t C, T* keep) {
  const int64_t F = FN / C, HW = s.H * s.W, P = s.OH * s.OW, K = s.FH * s.FW;
  const Phases p(s);
  bool out_of_memory = false;
#pragma omp parallel num_threads(get_num_threads()) if (worth_parallel(s.N * FN * P * K))
  {
    auto ph = scratch<T>(p.len), acc = scratch<T>(p.run);
    if (ph && acc) {
      std::fill(ph.get(), ph.get() + p.len, T(0));
    } else {
#pragma omp atomic write
      out_of_memory = true;
    }
#pragma omp for schedule(static) collapse(2)
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        if (!ph || !acc) continue;
        const T* xc = x + (n * C + c) * HW;
        split_phases(xc, ph.get(), p);
        if (keep) copy_run<1, 1>(xc, keep + (n * C + c) * HW, HW, 1);  // xc is in cache now
        for (int64_t f = c * F; f < (c + 1) * F; ++f)
          depthwise_plane_forward(ph.get(), W + f * K, b ? b[f] : T(0), out + (n * FN + f) * P,
                                  acc.get(), s, p);
      }
  }
  if (out_of_memory) throw std::bad_alloc();
}

// Channels go to threads: each owns its channel's dx planes and its F filters' dW, summed over
// images in double, so no two threads write the same element and the sums do not depend on
// the thread count.
template <typename T>
void depthwise_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, const ConvShape& s,
                        int64_t FN, int64_t C) {
  const int64_t F = FN / C, HW = s.H * s.W, P = s.OH * s.OW, K = s.FH * s.FW;
  const Phases p(s);
  std::vector<double> acc(FN * K, 0.0);  // allocated here: nothing may throw inside the region
  bool out_of_memory = false;
#pragma omp parallel num_threads(get_num_threads()) if (worth_parallel(s.N * FN * P * K))
  {
    auto ph = scratch<T>(p.len), dph = scratch<T>(dx ? p.len : 0), dflat = scratch<T>(p.run);
    const bool ok = ph && dph && dflat;
    if (ok) {
      std::fill(ph.get(), ph.get() + p.len, T(0));
      std::fill(dflat.get(), dflat.get() + p.run, T(0));
    } else {
#pragma omp atomic write
      out_of_memory = true;
    }
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      if (!ok) continue;
      for (int64_t n = 0; n < s.N; ++n) {
        split_phases(x + (n * C + c) * HW, ph.get(), p);
        T* dp = dx ? dph.get() : nullptr;
        if (dp) std::fill(dp, dp + p.len, T(0));
        for (int64_t f = c * F; f < (c + 1) * F; ++f)
          depthwise_plane_backward(dout + (n * FN + f) * P, ph.get(), W + f * K, dflat.get(),
                                   &acc[f * K], dp, s, p);
        if (dp) merge_phases(dp, dx + (n * C + c) * HW, p);
      }
    }
  }
  if (out_of_memory) throw std::bad_alloc();
  for (int64_t i = 0; i < FN * K; ++i) dW[i] = T(acc[i]);
}

// dst[0, n) = src[0, n), split between the threads.
template <typename T>
void parallel_copy(const T* src, T* dst, int64_t n) {
#pragma omp parallel for simd schedule(static) num_threads(get_num_threads()) \
    if (parallel : worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// The phases hold stride^2 planes of about (H + 2 pad) (W + 2 pad) / stride^2 each while the
// stride is at most the window; a longer stride (windows skipping pixels) takes the GEMM path.
inline bool depthwise(const ConvShape& s, int64_t groups) {
  return groups > 1 && s.C == 1 && s.stride <= std::min(s.FH, s.FW);
}

// The GEMM paths of conv2d_forward, image by image: target(n, buf) says where image n's output
// (FN, OH*OW) goes, given a scratch buffer of out_len elements of the thread; done(n, outn)
// runs right after it is written, while it is in cache.
template <typename T, typename Target, typename Done>
void forward_images(const T* x, const T* W, const T* b, const ConvShape& s, int64_t FN,
                    int64_t groups, T* keep, int64_t out_len, Target target, Done done) {
  const int64_t CHW = groups * s.C * s.H * s.W;
  const ImageWindow w = forward_window<T>(s, FN / groups);
  const bool taps = s.cols() > 0 && taps_allowed(s) && by_taps(w);
  const int64_t len = taps ? wide_len<T>(w, FN / groups) : col_len<T>(w);
  const int64_t xp_len = taps ? tap_len(w) : padded_len(w);
  Buf<T> Wr = taps ? scratch<T>(FN * s.cols()) : Buf<T>();
  if (taps && !Wr) throw std::bad_alloc();
  if (taps) tap_filters(W, Wr.get(), s, FN, groups);
  const T* Wrp = taps ? Wr.get() : nullptr;
  auto image = [&](int64_t n, T* col, T* xp, T* buf) {
    T* outn = target(n, buf);
    forward_image(x + n * CHW, W, Wrp, b, outn, s, FN, groups, col, xp);
    done(n, outn);
  };
  if (!images_in_parallel(s)) {
    auto col = scratch<T>(len), xp = scratch<T>(xp_len), buf = scratch<T>(out_len);
    if (!col || !xp || !buf) throw std::bad_alloc();
    if (keep) parallel_copy(x, keep, s.N * CHW);
    for (int64_t n = 0; n < s.N; ++n) image(n, col.get(), xp.get(), buf.get());
    return;
  }
  bool out_of_memory = false;
#pragma omp parallel num_threads(get_num_threads())
  {
    auto col = scratch<T>(len), xp = scratch<T>(xp_len), buf = scratch<T>(out_len);
    const bool ok = col && xp && buf;
    if (!ok) {
#pragma omp atomic write
      out_of_memory = true;
    }
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      if (!ok) continue;
      image(n, col.get(), xp.get(), buf.get());
      if (keep) std::copy(x + n * CHW, x + (n + 1) * CHW, keep + n * CHW);
    }
  }
  if (out_of_memory) throw std::bad_alloc();
}

// The sum of d[0, P), vectorised.
template <typename T>
T plane_sum(const T* d, int64_t P) {
  T part = 0;
#pragma omp simd reduction(+ : part)
  for (int64_t p = 0; p < P; ++p) part += d[p];
  return part;
}

// db[f] = the sum over images n of sum_of(n, f), image n's sum over filter f's P positions:
// added in double in image order, so the result does not depend on the thread count.
template <typename T, typename Sum>
void bias_grad(T* db, const ConvShape& s, int64_t FN, int64_t P, Sum sum_of) {
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * FN * P))
  for (int64_t f = 0; f < FN; ++f) {
    double acc = 0;
    for (int64_t n = 0; n < s.N; ++n) acc += sum_of(n, f);
    db[f] = T(acc);
  }
}

// The GEMM paths of conv2d_backward (dx and dW; db apart), image by image: image_dout(n, buf)
// returns image n's dout (FN, OH*OW), given a scratch buffer of dout_len elements of the thread.
template <typename T, typename Dout>
void backward_images(const T* x, const T* W, T* dx, T* dW, const ConvShape& s, int64_t FN,
                     int64_t groups, int64_t dout_len, Dout image_dout) {
  const int64_t CK = s.cols(), P = s.OH * s.OW, CHW = groups * s.C * s.H * s.W;
  const int64_t F = FN / groups;
  // The transposed convolution multiplies W by dout's zero border, which col2im never does:
  // an inf or NaN weight would make NaN there where NumPy's dx has finite numbers or inf.
  const bool by_conv = dx && dx_by_convolution(s, F, taps_allowed(s)) && all_finite(W, FN * CK);
  Buf<T> Wt = by_conv ? scratch<T>(FN * CK) : Buf<T>();
  if (by_conv && !Wt) throw std::bad_alloc();
  const ImageWindow w = image_window(s), t = transposed(s, F);
  const bool taps = by_conv && taps_allowed(s) && by_taps(t);
  if (taps) flipped_tap_filters(W, Wt.get(), s, FN, groups);
  else if (by_conv) flipped_filters(W, Wt.get(), s, FN, groups);
  const T* Wtp = by_conv ? Wt.get() : nullptr;
  const int64_t len = std::max(col_len<T>(w), !by_conv ? 0
                                              : taps   ? wide_len<T>(t, s.C)
                                                       : col_len<T>(t));
  const int64_t xp_len = std::max(padded_len(w), !by_conv ? 0
                                                 : taps   ? tap_len(t)
                                                          : padded_len(t));
  const int64_t dxp_len = dx && !by_conv ? padded_len(w) : 0;
  const int64_t dT_len = dout_transposed<T>(CK) ? F * P : 0;
  // dW[g*F + f][k] = dWT[g][k][f].
  auto untranspose = [&](const T* dWT) {
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t f = 0; f < F; ++f)
        for (int64_t k = 0; k < CK; ++k) dW[(g * F + f) * CK + k] = dWT[(g * CK + k) * F + f];
  };
  auto image = [&](int64_t n, T* dWT, T* col, T* xp, T* dxp, T* dT, T* buf) {
    backward_image(image_dout(n, buf), x + n * CHW, W, Wtp, taps, dx ? dx + n * CHW : dx, dWT,
                   s, FN, groups, col, xp, dxp, dT_len ? dT : nullptr);
  };
  if (!images_in_parallel(s)) {
    auto col = scratch<T>(len), xp = scratch<T>(xp_len), dxp = scratch<T>(dxp_len);
    auto dWT = scratch<T>(FN * CK), dT = scratch<T>(dT_len), buf = scratch<T>(dout_len);
    if (!col || !xp || !dxp || !dWT || !dT || !buf) throw std::bad_alloc();
    std::fill(dWT.get(), dWT.get() + FN * CK, T(0));
    for (int64_t n = 0; n < s.N; ++n)
      image(n, dWT.get(), col.get(), xp.get(), dxp.get(), dT.get(), buf.get());
    untranspose(dWT.get());
    return;
  }
  // Each thread accumulates its own dWT; the partial sums are added in thread order afterwards,
  // so results do not depend on timing. The partial sums live until every thread is done.
  const int threads = get_num_threads();
  std::vector<Buf<T>> partial(threads);
  bool out_of_memory = false;
#pragma omp parallel num_threads(threads)
  {
    auto col = scratch<T>(len), xp = scratch<T>(xp_len), dxp = scratch<T>(dxp_len);
    auto dWt = scratch<T>(FN * CK), dT = scratch<T>(dT_len), buf = scratch<T>(dout_len);
    const bool ok = col && xp && dxp && dWt && dT && buf;
    if (ok) {
      std::fill(dWt.get(), dWt.get() + FN * CK, T(0));
    } else {
#pragma omp atomic write
      out_of_memory = true;
    }
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n)
      if (ok) image(n, dWt.get(), col.get(), xp.get(), dxp.get(), dT.get(), buf.get());
    partial[omp_get_thread_num()] = std::move(dWt);
  }
  if (out_of_memory) throw std::bad_alloc();
  T* sum = nullptr;
  for (const auto& p : partial) {
    if (!p) continue;
    if (!sum) {
      sum = p.get();
      continue;
    }
    for (int64_t i = 0; i < FN * CK; ++i) sum[i] += p.get()[i];
  }
  if (sum) untranspose(sum);
}

// The pooling window over one image's (FN, OH, OW) output, as ConvShape (N = 1, C = FN).
ConvShape pool_window(const ConvShape& s, int64_t FN, const PoolWindow& pw) {
  return ConvShape::of(1, FN, s.OH, s.OW, pw.FH, pw.FW, pw.stride, 0);
}

}  // namespace

template <typename T>
void conv2d_forward(const T* x, const T* W, const T* b, T* out, const ConvShape& s, int64_t FN,
                    int64_t groups, T* keep) {
  check_conv_blas_sizes(s, FN);  // before any parallel region
  const int64_t CHW = groups * s.C * s.H * s.W, outlen = FN * s.OH * s.OW;
  if (s.N == 0 || FN == 0) {  // empty output
    if (keep) parallel_copy(x, keep, s.N * CHW);
    return;
  }
  if (depthwise(s, groups)) return depthwise_forward(x, W, b, out, s, FN, groups, keep);
  forward_images(
      x, W, b, s, FN, groups, keep, 0, [&](int64_t n, T*) { return out + n * outlen; },
      [](int64_t, T*) {});
}

template <typename T>
void conv2d_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db,
                     const ConvShape& s, int64_t FN, int64_t groups) {
  check_conv_blas_sizes(s, FN);  // before any parallel region
  const int64_t CK = s.cols(), P = s.OH * s.OW, CHW = groups * s.C * s.H * s.W;
  bias_grad(db, s, FN, P,
            [&](int64_t n, int64_t f) { return plane_sum(dout + (n * FN + f) * P, P); });
  std::fill(dW, dW + FN * CK, T(0));
  if (!conv_multiplies(s, FN)) {  // no images, filters or channels: dW = 0, dx = 0
    if (dx) std::fill(dx, dx + s.N * CHW, T(0));
    return;
  }
  if (depthwise(s, groups)) return depthwise_backward(dout, x, W, dx, dW, s, FN, groups);
  backward_images(x, W, dx, dW, s, FN, groups, 0,
                  [&](int64_t n, T*) { return dout + n * FN * P; });
}

template <typename T>
void conv2d_relu_maxpool_forward(const T* x, const T* W, const T* b, T* out, int32_t* arg,
                                 const ConvShape& s, int64_t FN, const PoolWindow& pw, T* keep) {
  check_conv_blas_sizes(s, FN);  // before any parallel region
  const ConvShape ps = pool_window(s, FN, pw);
  const int64_t P = s.OH * s.OW, PP = ps.OH * ps.OW, CHW = s.C * s.H * s.W;
  if (s.N == 0 || FN == 0 || PP == 0) {  // empty output
    if (keep) parallel_copy(x, keep, s.N * CHW);
    return;
  }
  auto target = [](int64_t, T* buf) { return buf; };
  if (pw.FH == 2 && pw.FW == 2 && pw.stride == 2)
    return forward_images(x, W, b, s, FN, 1, keep, FN * P, target, [&](int64_t n, T* conv) {
      if (s.OH % 2 == 0)  // the image's planes as one
        return pooling::maxpool_2x2_plane<true>(conv, out + n * FN * PP, arg + n * FN * PP, s.OW,
                                                FN * ps.OH, ps.OW);
      for (int64_t f = 0; f < FN; ++f)
        pooling::maxpool_2x2_plane<true>(conv + f * P, out + (n * FN + f) * PP,
                                         arg + (n * FN + f) * PP, s.OW, ps.OH, ps.OW);
    });
  pooling::with_window(ps, [&](auto FH, auto FW, auto S) {
    forward_images(
        x, W, b, s, FN, 1, keep, FN * P, target,
        [&](int64_t n, T* conv) {
          // relu as the Relu layer (NaN passes), then each filter's plane pooled.
          for (int64_t i = 0; i < FN * P; ++i) conv[i] = conv[i] <= T(0) ? T(0) : conv[i];
          for (int64_t f = 0; f < FN; ++f)
            pooling::maxpool_plane<FH, FW, S>(conv + f * P, out + (n * FN + f) * PP,
                                              arg + (n * FN + f) * PP, ps);
        });
  });
}

template <typename T>
void conv2d_relu_maxpool_backward(const T* dout, const int32_t* arg, const T* out, const T* x,
                                  const T* W, T* dx, T* dW, T* db, const ConvShape& s,
                                  int64_t FN, const PoolWindow& pw) {
  check_conv_blas_sizes(s, FN);  // before any parallel region
  const ConvShape ps = pool_window(s, FN, pw);
  const int64_t CK = s.cols(), P = s.OH * s.OW, PP = ps.OH * ps.OW, CHW = s.C * s.H * s.W;
  std::fill(dW, dW + FN * CK, T(0));
  // Each image's dout of the convolution is made in the thread's buffer: the pooling's
  // backward with the ReLU's folded in (a window passes its gradient where its maximum, the
  // pooled output, is not 0: the ReLU's input was > 0 or NaN there). Its plane sums are kept
  // for db, which adds them as conv2d_backward does (the same result for any thread count).
  auto sums = scratch<T>(s.N * FN);
  if (!sums) throw std::bad_alloc();
  const bool two = pw.FH == 2 && pw.FW == 2 && pw.stride == 2;
  auto image_dout = [&](int64_t n, T* dconv) {
    for (int64_t f = 0; f < FN; ++f) {
      const int64_t o = (n * FN + f) * PP;
      T* d = dconv + f * P;
      if (two)
        pooling::maxpool_2x2_backward_plane(dout + o, arg + o, out + o, d, s.OH, s.OW, ps.OH,
                                            ps.OW);
      else
        pooling::maxpool_backward_plane<0, 0, 0>(dout + o, arg + o, out + o, d, ps);
      sums.get()[n * FN + f] = plane_sum(d, P);
    }
    return static_cast<const T*>(dconv);
  };
  if (conv_multiplies(s, FN)) {
    backward_images(x, W, dx, dW, s, FN, 1, FN * P, image_dout);
  } else {  // no channels (or nothing at all): only db, from the bias's gradient
    auto dconv = scratch<T>(FN * P);
    if (!dconv) throw std::bad_alloc();
    for (int64_t n = 0; n < s.N; ++n) image_dout(n, dconv.get());
    if (dx) std::fill(dx, dx + s.N * CHW, T(0));
  }
  bias_grad(db, s, FN, P, [&](int64_t n, int64_t f) { return sums.get()[n * FN + f]; });
}

#define FASTNN_INSTANTIATE(T)                                                                 \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, const ConvShape&, int64_t, \
                                  int64_t, T*);                                               \
  template void conv2d_backward<T>(const T*, const T*, const T*, T*, T*, T*, const ConvShape&, \
                                   int64_t, int64_t);                                          \
  template void conv2d_relu_maxpool_forward<T>(const T*, const T*, const T*, T*, int32_t*,      \
                                               const ConvShape&, int64_t, const PoolWindow&,   \
                                               T*);                                            \
  template void conv2d_relu_maxpool_backward<T>(const T*, const int32_t*, const T*, const T*,  \
                                                const T*, T*, T*, T*, const ConvShape&,       \
                                                int64_t, const PoolWindow&);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
