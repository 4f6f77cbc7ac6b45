// Helpers of the recurrent kernels (rnn.cpp, lstm.cpp, gru.cpp): gate weights in either layout,
// the time loop (gate activations: cpu/fastmath.h). Layouts and sequence layout: see rnn.h.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/blas.h"
#include "core/buffers.h"
#include "core/isa.h"
#include "core/parallel.h"
#include "core/shapes.h"
#include "cpu/fastmath.h"

#ifndef FASTNN_ISA
#error "cpu/recurrent.h belongs to the kernels (compiled per instruction-set level)"
#endif

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// A gate weight seen as W (K, G) whatever its layout: the book's Wx/Wh is W itself, torch.nn's
// weight_ih/weight_hh (G, K) is W^T. GEMMs read it transposed in place, except that a weight for
// small per-step GEMMs (small_steps) is first copied into the orientation of its pass (backward:
// d_times, else x_times): OpenBLAS runs those faster on an untransposed operand (only an
// untransposed B takes its unpacked path, see core/blas.h), while the big GEMMs of a large layer
// run about as fast either way, so they skip the copy (docs/performance.md, "Measurements behind
// design choices").
template <typename Real>
class GateWeight {
 public:
  GateWeight(Layout L, const Real* W, int64_t K, int64_t G, bool small_steps = false,
             bool backward = false)
      : K_(K), G_(G),
        copy_(small_steps && (L == Layout::Book) == backward ? static_cast<size_t>(K * G) : 0) {
    const bool stored_kg = L == Layout::Book;
    (stored_kg ? kg_ : gk_) = W;
    if (!copy_.data()) return;
    if (stored_kg)
      transpose(K, G, W, copy_.data());
    else
      transpose(G, K, W, copy_.data());
    (stored_kg ? gk_ : kg_) = copy_.data();
  }

  // out[M, nc] = beta * out + A[M, K] @ W[:, c0 : c0+nc]   (forward orientation)
  void x_times(int64_t M, int64_t c0, int64_t nc, const Real* A, int64_t lda, Real beta,
               Real* out, int64_t ldo) const {
    if (kg_)
      gemm(false, false, M, nc, K_, Real(1), A, lda, kg_ + c0, G_, beta, out, ldo);
    else
      gemm(false, true, M, nc, K_, Real(1), A, lda, gk_ + c0 * K_, K_, beta, out, ldo);
  }

  // dA[M, K] = beta * dA + dG[M, nc] @ W[:, c0 : c0+nc]^T   (backward orientation)
  void d_times(int64_t M, int64_t c0, int64_t nc, const Real* dG, int64_t ldg, Real beta,
               Real* dA, int64_t lda) const {
    if (gk_)
      gemm(false, false, M, K_, nc, Real(1), dG, ldg, gk_ + c0 * K_, K_, beta, dA, lda);
    else
      gemm(false, true, M, K_, nc, Real(1), dG, ldg, kg_ + c0, G_, beta, dA, lda);
  }

 private:
  int64_t K_, G_;
  const Real* kg_ = nullptr;  // W (K, G), when held that way
  const Real* gk_ = nullptr;  // W^T (G, K), when held that way
  buffers::Scratch<Real> copy_;
};

// dWcols = beta * dWcols + A[M, K]^T @ dG[M, nc] (the weight gradient of matmul_w).
template <typename Real>
inline void grad_w(Layout L, int64_t M, int64_t K, int64_t G, int64_t c0, int64_t nc,
                   const Real* A, int64_t lda, const Real* dG, int64_t ldg, Real beta, Real* dW) {
  if (L == Layout::Book)
    gemm(true, false, K, nc, M, Real(1), A, lda, dG, ldg, beta, dW + c0, G);
  else
    gemm(true, false, nc, K, M, Real(1), dG, ldg, A, lda, beta, dW + c0 * K, K);
}

// Whether a time step's GEMM (M x N x K) is too small to be worth splitting across threads.
inline bool step_gemm_is_small(int64_t M, int64_t N, int64_t K) { return M * N * K < (1 << 23); }

// Fewest batch rows worth a thread of their own in a time loop.
constexpr int64_t kMinSliceRows = 4;

// Runs a time loop: loop(n0, nb) walks every step for batch rows n0 .. n0+nb. Rows never
// interact inside a recurrent layer, so when the per-step GEMMs (N x Ng x K) are too small to
// split, each thread walks the whole sequence for a slice of the rows, its GEMMs on itself,
// without waiting for the others between steps. Otherwise one walk over all rows, whose GEMMs
// and loops split over the threads at every step.
template <class Loop>
void time_loop(int64_t N, int64_t Ng, int64_t K, Loop&& loop) {
  const bool small = step_gemm_is_small(N, Ng, K);
  const int64_t slices = small ? std::min<int64_t>(get_num_threads(), N / kMinSliceRows) : 1;
  if (slices < 2 || omp_in_parallel()) {
    const SerialGemmScope serial(small);
    loop(int64_t(0), N);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(slices))
  {
    const int64_t s = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t n0 = N * s / n, n1 = N * (s + 1) / n;
    loop(n0, n1 - n0);
  }
}

// out (rows, G) = b on every row (zeros when b is null).
template <typename Real>
inline void broadcast_rows(int64_t rows, int64_t G, const Real* b, Real* out) {
  for (int64_t r = 0; r < rows; ++r) {
    Real* o = out + r * G;
    if (b)
      std::copy(b, b + G, o);
    else
      std::fill(o, o + G, Real(0));
  }
}

// out (rows, G) = b broadcast over rows (zeros when b is null), then += x (rows, D) @ Wx.
template <typename Real>
inline void input_projection(int64_t rows, int64_t D, int64_t G, const Real* x,
                             const GateWeight<Real>& Wx, const Real* b, Real* out) {
  broadcast_rows(rows, G, b, out);
  if (D > 0) Wx.x_times(rows, 0, G, x, D, Real(1), out, G);
}

// db (G,) = sum over rows of dG (rows, ldg), for the nc columns starting at dG.
template <typename Real>
inline void column_sum(int64_t rows, int64_t nc, const Real* dG, int64_t ldg, Real* db) {
  std::fill(db, db + nc, Real(0));
  for (int64_t r = 0; r < rows; ++r) {
    const Real* g = dG + r * ldg;
#pragma omp simd
    for (int64_t j = 0; j < nc; ++j) db[j] += g[j];
  }
}

// dW = sum_t h_{t-1}^T dG_t for the columns c0 .. c0+nc: h_{-1} = h0 (skipped when null), then
// one GEMM over the contiguous h_0 .. h_{T-2}.
template <typename Real>
inline void grad_w_hidden(Layout L, int64_t T, int64_t N, int64_t K, int64_t G, int64_t c0,
                          int64_t nc, const Real* h0, const Real* hs, const Real* dG, int64_t ldg,
                          Real* dW) {
  Real beta = 0;
  if (h0) {
    grad_w(L, N, K, G, c0, nc, h0, K, dG, ldg, Real(0), dW);
    beta = 1;
  }
  grad_w(L, (T - 1) * N, K, G, c0, nc, hs, K, dG + N * ldg, ldg, beta, dW);
}

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
