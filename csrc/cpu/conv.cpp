#include "cpu/conv.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "core/blas.h"
#include "core/parallel.h"

namespace fastnn::cpu {
namespace {

// The column buffer of one chunk of the batch stays near this size; a chunk holds >= 1 image.
constexpr int64_t kColBudgetBytes = int64_t(4) << 20;

template <typename T>
int64_t chunk_images(const ConvShape& s) {
  const int64_t per_image = std::max<int64_t>(1, s.OH * s.OW * s.cols() * int64_t(sizeof(T)));
  return std::clamp<int64_t>(kColBudgetBytes / per_image, 1, std::max<int64_t>(1, s.N));
}

// Per-thread scratch reused across calls (grows, never shrinks below the largest chunk seen).
template <typename T, int Slot>
T* scratch(int64_t n) {
  thread_local std::unique_ptr<T[]> buf;
  thread_local int64_t size = 0;
  if (n > size) {
    buf.reset(new T[n]);
    size = n;
  }
  return buf.get();
}

int mode() {
  const char* m = std::getenv("FASTNN_CONV_MODE");
  return m ? std::atoi(m) : 0;
}

}  // namespace

template <typename T>
void conv2d_forward(const T* x, const T* W, const T* b, T* out, const ConvShape& s, int64_t FN) {
  const int64_t CK = s.cols(), P = s.OH * s.OW, CHW = s.C * s.H * s.W;
  const int64_t nb_max = chunk_images<T>(s);
  T* col = scratch<T, 0>(nb_max * P * CK);
  const int md = mode();
  if (md == 0) {
    // out[n] (FN, P) = Wm (FN, CK) @ col_n^T: NCHW directly, bias preloaded (beta = 1).
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * FN * P))
    for (int64_t nf = 0; nf < s.N * FN; ++nf)
      std::fill(out + nf * P, out + (nf + 1) * P, b ? b[nf % FN] : T(0));
    for (int64_t n0 = 0; n0 < s.N; n0 += nb_max) {
      const int64_t nb = std::min(nb_max, s.N - n0);
      ConvShape cs = s;
      cs.N = nb;
      im2col(x + n0 * CHW, col, cs);
      for (int64_t i = 0; i < nb; ++i)
        gemm(false, true, FN, P, CK, T(1), W, CK, col + i * P * CK, CK, T(1),
             out + (n0 + i) * FN * P, P);
    }
  } else {
    T* tmp = scratch<T, 1>(nb_max * P * FN);
    for (int64_t n0 = 0; n0 < s.N; n0 += nb_max) {
      const int64_t nb = std::min(nb_max, s.N - n0);
      ConvShape cs = s;
      cs.N = nb;
      im2col(x + n0 * CHW, col, cs);
      gemm(false, true, nb * P, FN, CK, T(1), col, CK, W, CK, T(0), tmp, FN);
#pragma omp parallel for schedule(static) if (worth_parallel(nb * FN * P))
      for (int64_t nf = 0; nf < nb * FN; ++nf) {
        const int64_t i = nf / FN, f = nf % FN;
        T* o = out + (n0 * FN + nf) * P;
        const T* t = tmp + i * P * FN + f;
        const T bias = b ? b[f] : T(0);
        for (int64_t p = 0; p < P; ++p) o[p] = t[p * FN] + bias;
      }
    }
  }
}

template <typename T>
void conv2d_backward(const T* dout, const T* x, const T* W, T* dx, T* dW, T* db,
                     const ConvShape& s, int64_t FN) {
  const int64_t CK = s.cols(), P = s.OH * s.OW, CHW = s.C * s.H * s.W;
  // db[f] = sum of dout over images and positions (accumulated in double).
#pragma omp parallel for schedule(static) if (worth_parallel(s.N * FN * P))
  for (int64_t f = 0; f < FN; ++f) {
    double acc = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      const T* d = dout + (n * FN + f) * P;
      for (int64_t p = 0; p < P; ++p) acc += d[p];
    }
    db[f] = T(acc);
  }
  std::fill(dW, dW + FN * CK, T(0));
  const int64_t nb_max = chunk_images<T>(s);
  T* col = scratch<T, 0>(nb_max * P * CK);
  const int md = mode();
  for (int64_t n0 = 0; n0 < s.N; n0 += nb_max) {
    const int64_t nb = std::min(nb_max, s.N - n0);
    ConvShape cs = s;
    cs.N = nb;
    im2col(x + n0 * CHW, col, cs);
    if (md == 0) {
      for (int64_t i = 0; i < nb; ++i) {
        const T* d = dout + (n0 + i) * FN * P;
        T* ci = col + i * P * CK;
        // dW (FN, CK) += dout_n (FN, P) @ col_n (P, CK); then col_n becomes dcol_n = dout_n^T @ Wm.
        gemm(false, false, FN, CK, P, T(1), d, P, ci, CK, T(1), dW, CK);
        gemm(true, false, P, CK, FN, T(1), d, P, W, CK, T(0), ci, CK);
      }
    } else {
      T* doutT = scratch<T, 1>(nb_max * P * FN);
#pragma omp parallel for schedule(static) if (worth_parallel(nb * FN * P))
      for (int64_t ip = 0; ip < nb * P; ++ip) {
        const int64_t i = ip / P, p = ip % P;
        const T* d = dout + (n0 + i) * FN * P + p;
        T* t = doutT + ip * FN;
        for (int64_t f = 0; f < FN; ++f) t[f] = d[f * P];
      }
      gemm(true, false, FN, CK, nb * P, T(1), doutT, FN, col, CK, T(1), dW, CK);
      gemm(false, false, nb * P, CK, FN, T(1), doutT, FN, W, CK, T(0), col, CK);
    }
    col2im(col, dx + n0 * CHW, cs);
  }
}

#define FASTNN_INSTANTIATE(T)                                                                 \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, const ConvShape&, int64_t); \
  template void conv2d_backward<T>(const T*, const T*, const T*, T*, T*, T*, const ConvShape&, \
                                   int64_t);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cpu
