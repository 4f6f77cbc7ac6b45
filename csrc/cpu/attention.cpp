#include "cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/blas.h"
#include "core/parallel.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

namespace {

// Softmax of each row of s (rows, C) in place, the row maximum subtracted first.
template <typename T>
void softmax_rows(T* s, int64_t rows, int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
    T* x = s + r * C;
    const T m = *std::max_element(x, x + C);
    T sum = T(0);
    for (int64_t c = 0; c < C; ++c) sum += (x[c] = std::exp(x[c] - m));
    const T inv = T(1) / sum;
    for (int64_t c = 0; c < C; ++c) x[c] *= inv;
  }
}

// One item of the batch per iteration, its GEMMs on the thread that runs it (core/blas.h runs
// a GEMM called inside a parallel region on the calling thread); a batch of one leaves the
// threads to the GEMMs instead.
inline bool batch_parallel(int64_t N, int64_t work) { return N > 1 && worth_parallel(work); }

}  // namespace

template <typename T>
void attention_forward(const T* hs_enc, const T* hs_dec, T* out, T* a, int64_t N, int64_t Te,
                       int64_t Td, int64_t H) {
  if (N == 0 || Td == 0) return;
  if (Te == 0 || H == 0) {  // BLAS refuses a zero leading dimension: the sums are written here
    std::fill(out, out + N * Td * H, T(0));
    std::fill(a, a + N * Td * Te, Te ? T(1) / T(Te) : T(0));  // softmax of zero scores
    return;
  }
#pragma omp parallel for schedule(dynamic, 1) if (batch_parallel(N, N * Td * Te * H))
  for (int64_t n = 0; n < N; ++n) {
    const T* enc = hs_enc + n * Te * H;
    const T* dec = hs_dec + n * Td * H;
    T* an = a + n * Td * Te;
    gemm(false, true, Td, Te, H, T(1), dec, H, enc, H, T(0), an, Te);  // scores
    softmax_rows(an, Td, Te);
    gemm(false, false, Td, H, Te, T(1), an, Te, enc, H, T(0), out + n * Td * H, H);
  }
}

template <typename T>
void attention_backward(const T* hs_enc, const T* hs_dec, const T* a, const T* dout,
                        T* dhs_enc, T* dhs_dec, int64_t N, int64_t Te, int64_t Td, int64_t H) {
  if (N == 0) return;
  if (Te == 0 || H == 0 || Td == 0) {
    std::fill(dhs_enc, dhs_enc + N * Te * H, T(0));
    std::fill(dhs_dec, dhs_dec + N * Td * H, T(0));
    return;
  }
#pragma omp parallel if (batch_parallel(N, N * Td * Te * H))
  {
    std::vector<T> ds(static_cast<size_t>(Td * Te));  // per thread
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < N; ++n) {
      const T* enc = hs_enc + n * Te * H;
      const T* dec = hs_dec + n * Td * H;
      const T* an = a + n * Td * Te;
      const T* dn = dout + n * Td * H;
      T* s = ds.data();
      gemm(false, true, Td, Te, H, T(1), dn, H, enc, H, T(0), s, Te);  // da
      for (int64_t t = 0; t < Td; ++t) {  // softmax backward, row by row
        const T* ar = an + t * Te;
        T* sr = s + t * Te;
        T dot = T(0);
        for (int64_t e = 0; e < Te; ++e) dot += ar[e] * sr[e];
        for (int64_t e = 0; e < Te; ++e) sr[e] = ar[e] * (sr[e] - dot);
      }
      T* de = dhs_enc + n * Te * H;
      gemm(true, false, Te, H, Td, T(1), an, Te, dn, H, T(0), de, H);   // WeightSum's part
      gemm(true, false, Te, H, Td, T(1), s, Te, dec, H, T(1), de, H);   // AttentionWeight's
      gemm(false, false, Td, H, Te, T(1), s, Te, enc, H, T(0), dhs_dec + n * Td * H, H);
    }
  }
}

#define FASTNN_INSTANTIATE(T)                                                                 \
  template void attention_forward<T>(const T*, const T*, T*, T*, int64_t, int64_t, int64_t,   \
                                     int64_t);                                                \
  template void attention_backward<T>(const T*, const T*, const T*, const T*, T*, T*, int64_t, \
                                      int64_t, int64_t, int64_t);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
