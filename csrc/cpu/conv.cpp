#include "cpu/conv.h"

#include <algorithm>
#include <memory>
#include <new>
#include <vector>

#include "core/blas.h"
#include "core/parallel.h"

namespace fastnn::cpu {
namespace {

// A block of output rows is im2col'ed, multiplied and (backward) folded back while its columns
// are still in cache; its column buffer stays near this size (at least one output row).
constexpr int64_t kBlockBytes = int64_t(1) << 20;

template <typename T>
int64_t block_rows(const ConvShape& s) {
  const int64_t row_bytes = std::max<int64_t>(1, s.OW * s.cols() * int64_t(sizeof(T)));
  return std::clamp<int64_t>(kBlockBytes / row_bytes, 1, std::max<int64_t>(1, s.OH));
}

// Per-thread scratch, reused across calls (OpenMP's pool threads persist), one buffer per
// Slot; grows as needed, never returns null.
template <typename T, int Slot>
T* scratch(int64_t n) {
  thread_local std::unique_ptr<T[]> buf;
  thread_local int64_t size = 0;
  n = std::max<int64_t>(n, 1);
  if (n > size) {
    buf.reset();
    size = 0;
    buf.reset(new T[n]);
    size = n;
  }
  return buf.get();
}

// Images go to OpenMP threads, each calling BLAS single-threaded, when there is at least one
// image per thread; otherwise images run in turn and each GEMM is split over the threads.
inline bool images_in_parallel(const ConvShape& s) {
  return get_num_threads() > 1 && s.N >= get_num_threads();
}

// The sizes handed to BLAS fit its 32-bit ints (checked before any parallel region).
void check_blas_sizes(const ConvShape& s, int64_t FN) {
  blas_int(FN, "FN");
  blas_int(s.cols(), "C*FH*FW");
  blas_int(s.OH * s.OW, "OH*OW");
}

// The kernels work on one image and one block of output rows [oh0, oh1) at a time, with the
// columns transposed: colT (C*FH*FW, R), R = (oh1-oh0)*OW, row j = (c, fh, fw) holding the
// input under filter tap j at each output position. Its rows are runs of input rows, cheap
// to build and to fold back, and every GEMM below reads or writes NCHW arrays in place.

// Output columns [lo, hi) whose input column ow*stride - pad + fw lies inside the image.
inline void inside_columns(const ConvShape& s, int64_t fw, int64_t& lo, int64_t& hi) {
  const int64_t first = s.pad - fw, last = s.W - 1 + s.pad - fw;
  lo = std::min(s.OW, first > 0 ? (first + s.stride - 1) / s.stride : int64_t(0));
  hi = std::max(lo, std::min(s.OW, last >= 0 ? last / s.stride + 1 : int64_t(0)));
}

template <typename T>
void im2col_t(const T* xn, T* colT, const ConvShape& s, int64_t oh0, int64_t oh1) {
  const int64_t R = (oh1 - oh0) * s.OW;
  T* dst = colT;
  for (int64_t c = 0; c < s.C; ++c) {
    for (int64_t fh = 0; fh < s.FH; ++fh) {
      for (int64_t fw = 0; fw < s.FW; ++fw, dst += R) {
        int64_t lo, hi;
        inside_columns(s, fw, lo, hi);
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          T* d = dst + (oh - oh0) * s.OW;
          const int64_t h = oh * s.stride - s.pad + fh;
          if (h < 0 || h >= s.H) {
            std::fill(d, d + s.OW, T(0));
            continue;
          }
          const T* xrow = xn + (c * s.H + h) * s.W;
          std::fill(d, d + lo, T(0));
          if (s.stride == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) d[ow] = xrow[ow + fw - s.pad];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) d[ow] = xrow[ow * s.stride + fw - s.pad];
          }
          std::fill(d + hi, d + s.OW, T(0));
        }
      }
    }
  }
}

// Adds colT back onto image xn (the adjoint of im2col_t; padded positions are dropped).
template <typename T>
void col2im_t_add(const T* colT, T* xn, const ConvShape& s, int64_t oh0, int64_t oh1) {
  const int64_t R = (oh1 - oh0) * s.OW;
  const T* src = colT;
  for (int64_t c = 0; c < s.C; ++c) {
    for (int64_t fh = 0; fh < s.FH; ++fh) {
      for (int64_t fw = 0; fw < s.FW; ++fw, src += R) {
        int64_t lo, hi;
        inside_columns(s, fw, lo, hi);
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const int64_t h = oh * s.stride - s.pad + fh;
          if (h < 0 || h >= s.H) continue;
          const T* d = src + (oh - oh0) * s.OW;
          T* xrow = xn + (c * s.H + h) * s.W;
          if (s.stride == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) xrow[ow + fw - s.pad] += d[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) xrow[ow * s.stride + fw - s.pad] += d[ow];
          }
        }
      }
    }
  }
}

// out_n (FN, OH*OW) = b + Wm (FN, CK) @ colT, block by block.
template <typename T>
void forward_image(const T* xn, const T* W, const T* b, T* outn, const ConvShape& s, int64_t FN,
                   T* colT) {
  const int64_t CK = s.cols(), P = s.OH * s.OW, rows = block_rows<T>(s);
  for (int64_t f = 0; f < FN; ++f) std::fill(outn + f * P, outn + (f + 1) * P, b ? b[f] : T(0));
  for (int64_t oh0 = 0; oh0 < s.OH; oh0 += rows) {
    const int64_t oh1 = std::min(s.OH, oh0 + rows), R = (oh1 - oh0) * s.OW;
    if (CK == 0) break;  // no input channels: out is the bias
    im2col_t(xn, colT, s, oh0, oh1);
    gemm(false, false, FN, R, CK, T(1), W, CK, colT, R, T(1), outn + oh0 * s.OW, P);
  }
}

// dW (FN, CK) += dout_n @ colT^T; dcolT = Wm^T @ dout_n overwrites colT and is folded onto dx_n
// (skipped when dxn is null: the caller does not need dx).
template <typename T>
void backward_image(const T* doutn, const T* xn, const T* W, T* dxn, T* dW, const ConvShape& s,
                    int64_t FN, T* colT) {
  const int64_t CK = s.cols(), P = s.OH * s.OW, rows = block_rows<T>(s);
  if (dxn) std::fill(dxn, dxn + s.C * s.H * s.W, T(0));
  for (int64_t oh0 = 0; oh0 < s.OH; oh0 += rows) {
    const int64_t oh1 = std::min(s.OH, oh0 + rows), R = (oh1 - oh0) * s.OW;
    const T* d = doutn + oh0 * s.OW;  // (FN, R) block of dout_n, row stride P
    im2col_t(xn, colT, s, oh0, oh1);
    gemm(false, true, FN, CK, R, T(1), d, P, colT, R, T(1), dW, CK);
    if (!dxn) continue;
    gemm(true, false, CK, R, FN, T(1), W, CK, d, P, T(0), colT, R);
    col2im_t_add(colT, dxn, s, oh0, oh1);
  }
}

}  // namespace

template <typename T>
void conv2d_forward(const T* x, const T* W, const T* b, T* out, const ConvShape& s, int64_t FN) {
  check_blas_sizes(s, FN);
  const int64_t CHW = s.C * s.H * s.W, outlen = FN * s.OH * s.OW;
  const int64_t col_len = block_rows<T>(s) * s.OW * s.cols();
  if (!images_in_parallel(s)) {
    T* col = scratch<T, 0>(col_len);
    for (int64_t n = 0; n < s.N; ++n)
      forward_image(x + n * CHW, W, b, out + n * outlen, s, FN, col);
    return;
  }
  bool out_of_memory = false;
#pragma omp parallel
  {
    T* col = nullptr;
    try {
      col = scratch<T, 0>(col_len);
    } catch (const std::bad_alloc&) {
#pragma omp atomic write
      out_of_memory = true;
    }
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n)
      if (col) forward_image(x + n * CHW, W, b, out + n * outlen, s, FN, col);
  }
  if (out_of_memory) throw std::bad_alloc();
}

template <typename T>
void conv2d_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db,
                     const ConvShape& s, int64_t FN) {
  check_blas_sizes(s, FN);
  const int64_t CK = s.cols(), P = s.OH * s.OW, CHW = s.C * s.H * s.W;
  const int64_t col_len = block_rows<T>(s) * s.OW * CK;
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
  if (!images_in_parallel(s)) {
    T* col = scratch<T, 0>(col_len);
    for (int64_t n = 0; n < s.N; ++n)
      backward_image(dout + n * FN * P, x + n * CHW, W, dx ? dx + n * CHW : dx, dW, s, FN, col);
    return;
  }
  // Each thread accumulates its own dW; the partial sums are added in thread order afterwards,
  // so results do not depend on timing.
  std::vector<T*> partial(get_num_threads(), nullptr);
  bool out_of_memory = false;
  {
#pragma omp parallel
    {
      T *col = nullptr, *dWt = nullptr;
      try {
        col = scratch<T, 0>(col_len);
        dWt = scratch<T, 1>(FN * CK);
        std::fill(dWt, dWt + FN * CK, T(0));
        partial[omp_get_thread_num()] = dWt;
      } catch (const std::bad_alloc&) {
#pragma omp atomic write
        out_of_memory = true;
      }
#pragma omp for schedule(static)
      for (int64_t n = 0; n < s.N; ++n)
        if (col && dWt)
          backward_image(dout + n * FN * P, x + n * CHW, W, dx ? dx + n * CHW : dx, dWt, s, FN,
                         col);
    }
  }
  if (out_of_memory) throw std::bad_alloc();
  for (T* p : partial)
    if (p)
      for (int64_t i = 0; i < FN * CK; ++i) dW[i] += p[i];
}

#define FASTNN_INSTANTIATE(T)                                                                 \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, const ConvShape&, int64_t); \
  template void conv2d_backward<T>(const T*, const T*, const T*, T*, T*, T*, const ConvShape&, \
                                   int64_t);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cpu
