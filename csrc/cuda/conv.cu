// Convolution as im2col + cuBLAS GEMM, the book's algorithm:
//   forward  rows (N*OH*OW, FN) = col @ Wm^T, out (N, FN, OH, OW) = rows + b (layout body)
//   backward rows = dout as (N*OH*OW, FN); db = column sums; dW = rows^T @ col;
//            dcol = rows @ Wm; dx = col2im(dcol), skipped when dx is null
// Wm is W (FN, C, FH, FW) read as (FN, C*FH*FW). Scratch is stream-ordered.
// Depthwise convolution (groups == C) runs direct kernels instead, no scratch: see below.
#include "cuda/body/depthwise.h"
#include "cuda/body/im2col.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"

namespace fastnn::cuda {

template <typename T>
void conv2d_forward(const T* x, const T* W, const T* b, T* out, const ConvShape& s, int64_t FN,
                    void* stream) {
  const int64_t R = s.N * s.OH * s.OW, CK = s.C * s.FH * s.FW, P = s.OH * s.OW;
  Scratch<T> col(R * CK, stream), rows(R * FN, stream);
  im2col(x, col.get(), s, stream);
  gemm<T>(false, true, R, FN, CK, T(1), col.get(), CK, W, CK, T(0), rows.get(), FN, stream);
  const T* r = rows.get();
  for_each(R * FN, stream,
           [=] __device__(int64_t i) { out[i] = body::conv_out_element(r, b, FN, P, i); },
           "conv2d_forward");
}

template <typename T>
void conv2d_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db,
                     const ConvShape& s, int64_t FN, void* stream) {
  const int64_t R = s.N * s.OH * s.OW, CK = s.C * s.FH * s.FW, P = s.OH * s.OW;
  Scratch<T> col(R * CK, stream), rows(R * FN, stream);
  T* r = rows.get();
  for_each(R * FN, stream,
           [=] __device__(int64_t i) { r[i] = body::conv_dout_row_element(dout, FN, P, i); },
           "conv2d_backward (layout)");
  column_sum<T>(body::Elem<T>{r, FN}, R, FN, db, stream, "conv2d_backward (db)");
  im2col(x, col.get(), s, stream);
  gemm<T>(true, false, FN, CK, R, T(1), r, FN, col.get(), CK, T(0), dW, CK, stream);
  if (dx == nullptr) return;  // the caller needs no dx (a network's first layer)
  Scratch<T> dcol(R * CK, stream);
  gemm<T>(false, false, R, CK, FN, T(1), r, FN, W, CK, T(0), dcol.get(), CK, stream);
  col2im(dcol.get(), dx, s, stream);
}

// ---- depthwise: x (N, C, H, W), W (FN, 1, FH, FW), F = FN / C filters per channel.
// One thread per output element (forward) or input pixel (dx, a gather); dW and db are column
// sums, one block per weight or filter with a fixed order of the additions (deterministic).

template <typename T>
void depthwise_forward(const T* x, const T* W, const T* b, T* out, const ConvShape& s, int64_t FN,
                       void* stream) {
  for_each(
      s.N * FN * s.OH * s.OW, stream,
      [=] __device__(int64_t o) { out[o] = body::depthwise_forward_element(x, W, b, s, FN, o); },
      "depthwise_forward");
}

template <typename T>
void depthwise_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db,
                        const ConvShape& s, int64_t FN, void* stream) {
  const int64_t P = s.OH * s.OW, R = s.N * P;
  column_sum<T>(body::DoutPlaneTerm<T>{dout, FN, P}, R, FN, db, stream,
                "depthwise_backward (db)");
  column_sum<T>(body::DepthwiseDwTerm<T>{dout, x, s, FN}, R, FN * s.FH * s.FW, dW, stream,
                "depthwise_backward (dW)");
  if (dx == nullptr) return;  // the caller needs no dx (a network's first layer)
  for_each(s.N * s.C * s.H * s.W, stream,
           [=] __device__(int64_t i) { dx[i] = body::depthwise_dx_element(dout, W, s, FN, i); },
           "depthwise_backward (dx)");
}

#define FASTNN_INSTANTIATE(T)                                                                    \
  template void depthwise_forward<T>(const T*, const T*, const T*, T*, const ConvShape&,         \
                                     int64_t, void*);                                            \
  template void depthwise_backward<T>(const T*, const T*, const T*, T*, T*, T*,                  \
                                      const ConvShape&, int64_t, void*);                         \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, const ConvShape&, int64_t,   \
                                  void*);                                                        \
  template void conv2d_backward<T>(const T*, const T*, const T*, T*, T*, T*, const ConvShape&,   \
                                   int64_t, void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
