#include "cpu/im2col.h"

#include <algorithm>

#include "core/parallel.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {
namespace {

// Adds the columns of channel c in one image's rows of col (coln) onto that channel's plane.
template <typename T>
void col2im_plane_add(const T* coln, T* plane, const ConvShape& s, int64_t c) {
  const int64_t CK = s.cols();
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    for (int64_t ow = 0; ow < s.OW; ++ow) {
      const T* src = coln + (oh * s.OW + ow) * CK + c * s.FH * s.FW;
      const int64_t w0 = ow * s.stride - s.pad;
      const int64_t lo = std::max<int64_t>(0, -w0), hi = std::min<int64_t>(s.FW, s.W - w0);
      for (int64_t fh = 0; fh < s.FH; ++fh, src += s.FW) {
        const int64_t h = oh * s.stride - s.pad + fh;
        if (h < 0 || h >= s.H) continue;
        T* xrow = plane + h * s.W;
        for (int64_t fw = lo; fw < hi; ++fw) xrow[w0 + fw] += src[fw];
      }
    }
  }
}

// Output row oh of one image xn (C, H, W) -> its OW rows of col (colrow, OW x C*FH*FW).
template <typename T>
void im2col_row(const T* xn, T* colrow, const ConvShape& s, int64_t oh) {
  const int64_t CK = s.cols();
  for (int64_t ow = 0; ow < s.OW; ++ow) {
    T* row = colrow + ow * CK;
    const int64_t w0 = ow * s.stride - s.pad;
    const bool w_inside = w0 >= 0 && w0 + s.FW <= s.W;
    for (int64_t c = 0; c < s.C; ++c) {
      for (int64_t fh = 0; fh < s.FH; ++fh, row += s.FW) {
        const int64_t h = oh * s.stride - s.pad + fh;
        if (h < 0 || h >= s.H) {
          std::fill(row, row + s.FW, T(0));
          continue;
        }
        const T* xrow = xn + (c * s.H + h) * s.W;
        if (w_inside) {
          for (int64_t fw = 0; fw < s.FW; ++fw) row[fw] = xrow[w0 + fw];
        } else {
          for (int64_t fw = 0; fw < s.FW; ++fw) {
            const int64_t w = w0 + fw;
            row[fw] = (w >= 0 && w < s.W) ? xrow[w] : T(0);
          }
        }
      }
    }
  }
}

}  // namespace

template <typename T>
void im2col(const T* x, T* col, const ConvShape& s) {
  // An empty col (no images or no channels) has nothing to fill, however many rows it has:
  // looping over N*OH*OW rows of nothing took minutes for C = 0 and a 2^20 x 2^20 image.
  if (s.rows() == 0 || s.cols() == 0) return;
  const int64_t CHW = s.C * s.H * s.W, row_len = s.OW * s.cols();
  // One task per output row (n, oh), so small batches still spread over the threads.
#pragma omp parallel for schedule(static) if (worth_parallel(s.rows() * s.cols()))
  for (int64_t task = 0; task < s.N * s.OH; ++task) {
    const int64_t n = task / s.OH, oh = task % s.OH;
    im2col_row(x + n * CHW, col + task * row_len, s, oh);
  }
}

template <typename T>
void col2im(const T* col, T* x, const ConvShape& s) {
  if (s.empty_input()) return;  // nothing to write
  const int64_t HW = s.H * s.W, image_len = s.OH * s.OW * s.cols();
  // Each (n, c) plane receives from its own columns of col: tasks never write the same pixel.
#pragma omp parallel for schedule(static) if (worth_parallel(s.rows() * s.cols()))
  for (int64_t task = 0; task < s.N * s.C; ++task) {
    const int64_t n = task / s.C, c = task % s.C;
    T* plane = x + task * HW;
    std::fill(plane, plane + HW, T(0));
    col2im_plane_add(col + n * image_len, plane, s, c);
  }
}

#define FASTNN_INSTANTIATE(T)                                                              \
  template void im2col<T>(const T*, T*, const ConvShape&);                                 \
  template void col2im<T>(const T*, T*, const ConvShape&);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
