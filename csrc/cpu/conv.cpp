#include "cpu/conv.h"

#include <algorithm>
#include <memory>
#include <new>
#include <vector>

#include "core/blas.h"
#include "core/buffers.h"
#include "core/parallel.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {
namespace {

// A block of output rows is im2col'ed, multiplied and (backward) folded back while its columns
// are still in cache; its column buffer stays near this size (at least one output row).
constexpr int64_t kBlockBytes = int64_t(1) << 20;

template <typename T>
int64_t block_rows(const ConvShape& s) {
  const int64_t row_bytes = std::max<int64_t>(1, s.OW * s.cols() * int64_t(sizeof(T)));
  return std::clamp<int64_t>(kBlockBytes / row_bytes, 1, std::max<int64_t>(1, s.OH));
}

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

// The kernels work on one image and one block of output rows [oh0, oh1) at a time, with the
// columns transposed: colT (C*FH*FW, R), R = (oh1-oh0)*OW, row j = (c, fh, fw) holding the
// input under filter tap j at each output position. Its rows are runs of input rows, cheap
// to build and to fold back. When pad > 0 the image is first copied with its zero border
// (C, Hp, Wp), so that every run is a plain copy without bounds checks.

inline int64_t padded_len(const ConvShape& s) {
  return s.pad ? s.C * (s.H + 2 * s.pad) * (s.W + 2 * s.pad) : 0;
}

// xn with its zero border in xp when pad > 0 (returns xp), else xn itself.
template <typename T>
const T* padded(const T* xn, T* xp, const ConvShape& s) {
  if (!s.pad) return xn;
  const int64_t Wp = s.W + 2 * s.pad, plane = (s.H + 2 * s.pad) * Wp;
  for (int64_t c = 0; c < s.C; ++c) {
    T* pc = xp + c * plane;
    std::fill(pc, pc + s.pad * Wp + s.pad, T(0));
    for (int64_t h = 0; h < s.H; ++h) {
      T* row = pc + (h + s.pad) * Wp + s.pad;
      std::copy(xn + (c * s.H + h) * s.W, xn + (c * s.H + h + 1) * s.W, row);
      std::fill(row + s.W, row + s.W + 2 * s.pad, T(0));  // right border, next row's left
    }
    std::fill(pc + (s.H + s.pad) * Wp + s.pad, pc + plane, T(0));
  }
  return xp;
}

// colT from xs, the image with its border (or without when pad is 0).
template <typename T>
void im2col_t(const T* xs, T* colT, const ConvShape& s, int64_t oh0, int64_t oh1) {
  const int64_t Wp = s.W + 2 * s.pad, Hp = s.H + 2 * s.pad, OW = s.OW, st = s.stride;
  const int64_t R = (oh1 - oh0) * OW;
  T* dst = colT;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t fh = 0; fh < s.FH; ++fh)
      for (int64_t fw = 0; fw < s.FW; ++fw, dst += R) {
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
void col2im_t_add(const T* colT, T* xs, const ConvShape& s, int64_t oh0, int64_t oh1) {
  const int64_t Wp = s.W + 2 * s.pad, Hp = s.H + 2 * s.pad, OW = s.OW, st = s.stride;
  const int64_t R = (oh1 - oh0) * OW;
  const T* src = colT;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t fh = 0; fh < s.FH; ++fh)
      for (int64_t fw = 0; fw < s.FW; ++fw, src += R) {
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

// A zeroed gradient buffer for image dxn: dxp (with border) when pad > 0, else dxn itself.
template <typename T>
T* zeroed_grad(T* dxn, T* dxp, const ConvShape& s) {
  T* g = s.pad ? dxp : dxn;
  std::fill(g, g + (s.pad ? padded_len(s) : s.C * s.H * s.W), T(0));
  return g;
}

// Copies the inside of dxp onto dxn when pad > 0 (dxn already holds the gradient otherwise).
template <typename T>
void unpad_grad(const T* dxp, T* dxn, const ConvShape& s) {
  if (!s.pad) return;
  const int64_t Wp = s.W + 2 * s.pad, Hp = s.H + 2 * s.pad;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t h = 0; h < s.H; ++h) {
      const T* row = dxp + (c * Hp + h + s.pad) * Wp + s.pad;
      std::copy(row, row + s.W, dxn + (c * s.H + h) * s.W);
    }
}

// out_n (FN, OH*OW) = b + Wm (FN, CK) @ colT, block by block.
template <typename T>
void forward_image(const T* xn, const T* W, const T* b, T* outn, const ConvShape& s, int64_t FN,
                   T* colT, T* xp) {
  const int64_t CK = s.cols(), P = s.OH * s.OW, rows = block_rows<T>(s);
  for (int64_t f = 0; f < FN; ++f) std::fill(outn + f * P, outn + (f + 1) * P, b ? b[f] : T(0));
  if (CK == 0) return;  // no input channels: out is the bias
  const T* xs = padded(xn, xp, s);
  for (int64_t oh0 = 0; oh0 < s.OH; oh0 += rows) {
    const int64_t oh1 = std::min(s.OH, oh0 + rows), R = (oh1 - oh0) * s.OW;
    im2col_t(xs, colT, s, oh0, oh1);
    gemm(false, false, FN, R, CK, T(1), W, CK, colT, R, T(1), outn + oh0 * s.OW, P);
  }
}

// dW (FN, CK) += dout_n @ colT^T; dcolT = Wm^T @ dout_n overwrites colT and is folded onto dx_n
// (skipped when dxn is null: the caller does not need dx).
template <typename T>
void backward_image(const T* doutn, const T* xn, const T* W, T* dxn, T* dW, const ConvShape& s,
                    int64_t FN, T* colT, T* xp, T* dxp) {
  const int64_t CK = s.cols(), P = s.OH * s.OW, rows = block_rows<T>(s);
  const T* xs = padded(xn, xp, s);
  T* dxs = dxn ? zeroed_grad(dxn, dxp, s) : nullptr;
  for (int64_t oh0 = 0; oh0 < s.OH; oh0 += rows) {
    const int64_t oh1 = std::min(s.OH, oh0 + rows), R = (oh1 - oh0) * s.OW;
    const T* d = doutn + oh0 * s.OW;  // (FN, R) block of dout_n, row stride P
    im2col_t(xs, colT, s, oh0, oh1);
    gemm(false, true, FN, CK, R, T(1), d, P, colT, R, T(1), dW, CK);
    if (!dxn) continue;
    gemm(true, false, CK, R, FN, T(1), W, CK, d, P, T(0), colT, R);
    col2im_t_add(colT, dxs, s, oh0, oh1);
  }
  if (dxn) unpad_grad(dxs, dxn, s);
}

}  // namespace

template <typename T>
void conv2d_forward(const T* x, const T* W, const T* b, T* out, const ConvShape& s, int64_t FN) {
  check_conv_blas_sizes(s, FN);  // before any parallel region
  if (s.N == 0 || FN == 0) return;  // empty output
  const int64_t CHW = s.C * s.H * s.W, outlen = FN * s.OH * s.OW;
  const int64_t col_len = block_rows<T>(s) * s.OW * s.cols(), xp_len = padded_len(s);
  if (!images_in_parallel(s)) {
    auto col = scratch<T>(col_len), xp = scratch<T>(xp_len);
    if (!col || !xp) throw std::bad_alloc();
    for (int64_t n = 0; n < s.N; ++n)
      forward_image(x + n * CHW, W, b, out + n * outlen, s, FN, col.get(), xp.get());
    return;
  }
  bool out_of_memory = false;
#pragma omp parallel num_threads(get_num_threads())
  {
    auto col = scratch<T>(col_len), xp = scratch<T>(xp_len);
    if (!col || !xp) {
#pragma omp atomic write
      out_of_memory = true;
    }
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n)
      if (col && xp)
        forward_image(x + n * CHW, W, b, out + n * outlen, s, FN, col.get(), xp.get());
  }
  if (out_of_memory) throw std::bad_alloc();
}

template <typename T>
void conv2d_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db,
                     const ConvShape& s, int64_t FN) {
  check_conv_blas_sizes(s, FN);  // before any parallel region
  const int64_t CK = s.cols(), P = s.OH * s.OW, CHW = s.C * s.H * s.W;
  const int64_t col_len = block_rows<T>(s) * s.OW * CK, xp_len = padded_len(s);
  const int64_t dxp_len = dx ? xp_len : 0;
  // db[f] = sum of dout over images and positions: vectorised per image, images added in double.
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * FN * P))
  for (int64_t f = 0; f < FN; ++f) {
    double acc = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      const T* d = dout + (n * FN + f) * P;
      T part = 0;
#pragma omp simd reduction(+ : part)
      for (int64_t p = 0; p < P; ++p) part += d[p];
      acc += part;
    }
    db[f] = T(acc);
  }
  std::fill(dW, dW + FN * CK, T(0));
  if (!conv_multiplies(s, FN)) {  // no images, filters or channels: dW = 0, dx = 0
    if (dx) std::fill(dx, dx + s.N * CHW, T(0));
    return;
  }
  if (!images_in_parallel(s)) {
    auto col = scratch<T>(col_len), xp = scratch<T>(xp_len), dxp = scratch<T>(dxp_len);
    if (!col || !xp || !dxp) throw std::bad_alloc();
    for (int64_t n = 0; n < s.N; ++n)
      backward_image(dout + n * FN * P, x + n * CHW, W, dx ? dx + n * CHW : dx, dW, s, FN,
                     col.get(), xp.get(), dxp.get());
    return;
  }
  // Each thread accumulates its own dW; the partial sums are added in thread order afterwards,
  // so results do not depend on timing. The partial sums live until every thread is done.
  const int threads = get_num_threads();
  std::vector<Buf<T>> partial(threads);
  bool out_of_memory = false;
#pragma omp parallel num_threads(threads)
  {
    auto col = scratch<T>(col_len), xp = scratch<T>(xp_len), dxp = scratch<T>(dxp_len);
    auto dWt = scratch<T>(FN * CK);
    const bool ok = col && xp && dxp && dWt;
    if (ok) {
      std::fill(dWt.get(), dWt.get() + FN * CK, T(0));
    } else {
#pragma omp atomic write
      out_of_memory = true;
    }
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n)
      if (ok)
        backward_image(dout + n * FN * P, x + n * CHW, W, dx ? dx + n * CHW : dx, dWt.get(), s,
                       FN, col.get(), xp.get(), dxp.get());
    partial[omp_get_thread_num()] = std::move(dWt);
  }
  if (out_of_memory) throw std::bad_alloc();
  for (const auto& p : partial)
    if (p)
      for (int64_t i = 0; i < FN * CK; ++i) dW[i] += p.get()[i];
}

#define FASTNN_INSTANTIATE(T)                                                                 \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, const ConvShape&, int64_t); \
  template void conv2d_backward<T>(const T*, const T*, const T*, T*, T*, T*, const ConvShape&, \
                                   int64_t);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
