#include "cpu/embedding.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/parallel.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

namespace {

// Positions 0..n-1 ordered by (idx, position): the contributions to each row of dW, in the
// order np.add.at adds them. Sorting once costs n log n on n ids (700 for the book's RNNLM,
// 100 for word2vec's batches), next to which the V x D zeroing of dW is everything; it gives
// each destination row to one thread, so the adds need no atomics and the sums are NumPy's.
// (Splitting the rows of dW between threads instead makes every thread scan all n ids.)
std::vector<int64_t> by_row(const int64_t* idx, int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  std::sort(order.begin(), order.end(), [idx](int64_t a, int64_t b) {
    return idx[a] < idx[b] || (idx[a] == idx[b] && a < b);
  });
  return order;
}

// Start of each run of equal ids in `order`, with n at the end.
std::vector<int64_t> runs(const int64_t* idx, const std::vector<int64_t>& order) {
  std::vector<int64_t> start;
  const int64_t n = static_cast<int64_t>(order.size());
  for (int64_t k = 0; k < n; ++k)
    if (k == 0 || idx[order[k]] != idx[order[k - 1]]) start.push_back(k);
  start.push_back(n);
  return start;
}

template <typename T>
void zero(T* p, int64_t count) {
  // Memory-bound: threads fill separate pages (a V x D dW is tens of MB at the book's sizes).
  constexpr int64_t kBlock = 1 << 16;
  const int64_t blocks = (count + kBlock - 1) / kBlock;
#pragma omp parallel for if (worth_parallel(count) && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * kBlock, len = std::min(kBlock, count - lo);
    std::memset(static_cast<void*>(p + lo), 0, sizeof(T) * size_t(len));
  }
}

// dW = 0, then for every run of equal ids: row += scale_i * src[i] over the run's positions,
// scale_i = dout[i] when dout is given, else 1.
template <typename T>
void scatter_add(const int64_t* idx, const T* src, const T* dout, T* dW, int64_t n, int64_t V,
                 int64_t D) {
  zero(dW, V * D);
  if (n == 0 || D == 0) return;
  const std::vector<int64_t> order = by_row(idx, n);
  const std::vector<int64_t> start = runs(idx, order);
  const int64_t groups = static_cast<int64_t>(start.size()) - 1;
#pragma omp parallel for schedule(dynamic, 16) if (worth_parallel(n * D) && groups > 1)
  for (int64_t g = 0; g < groups; ++g) {
    T* row = dW + idx[order[start[g]]] * D;
    for (int64_t k = start[g]; k < start[g + 1]; ++k) {
      const int64_t i = order[k];
      const T* s = src + i * D;
      if (dout) {
        const T c = dout[i];
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) row[d] += c * s[d];
      } else {
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) row[d] += s[d];
      }
    }
  }
}

}  // namespace

template <typename T>
void embedding_forward(const T* W, const int64_t* idx, T* out, int64_t n, int64_t D) {
#pragma omp parallel for if (worth_parallel(n * D))
  for (int64_t i = 0; i < n; ++i) std::copy(W + idx[i] * D, W + idx[i] * D + D, out + i * D);
}

template <typename T>
void embedding_backward(const int64_t* idx, const T* dout, T* dW, int64_t n, int64_t V,
                        int64_t D) {
  scatter_add<T>(idx, dout, nullptr, dW, n, V, D);
}

template <typename T>
void embedding_dot_forward(const T* W, const int64_t* idx, const T* h, T* out, int64_t N,
                           int64_t D) {
  // Summed in order of d (NumPy sums W[idx] * h pairwise): equal within rounding.
#pragma omp parallel for if (worth_parallel(N * D))
  for (int64_t i = 0; i < N; ++i) {
    const T* w = W + idx[i] * D;
    const T* x = h + i * D;
    T s = T(0);
#pragma omp simd reduction(+ : s)
    for (int64_t d = 0; d < D; ++d) s += w[d] * x[d];
    out[i] = s;
  }
}

template <typename T>
void embedding_dot_backward(const T* W, const int64_t* idx, const T* h, const T* dout, T* dW,
                            T* dh, int64_t N, int64_t V, int64_t D) {
  if (dh) {
#pragma omp parallel for if (worth_parallel(N * D))
    for (int64_t i = 0; i < N; ++i) {
      const T* w = W + idx[i] * D;
      const T c = dout[i];
      T* o = dh + i * D;
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) o[d] = c * w[d];
    }
  }
  scatter_add<T>(idx, h, dout, dW, N, V, D);
}

#define FASTNN_INSTANTIATE(T)                                                                   \
  template void embedding_forward<T>(const T*, const int64_t*, T*, int64_t, int64_t);          \
  template void embedding_backward<T>(const int64_t*, const T*, T*, int64_t, int64_t, int64_t); \
  template void embedding_dot_forward<T>(const T*, const int64_t*, const T*, T*, int64_t,      \
                                         int64_t);                                             \
  template void embedding_dot_backward<T>(const T*, const int64_t*, const T*, const T*, T*, T*, \
                                          int64_t, int64_t, int64_t);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
