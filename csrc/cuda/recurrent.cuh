// Helpers of rnn.cu, lstm.cu and gru.cu: the GEMMs of csrc/cpu/rnn.h in cuBLAS (the Torch
// layout through gemm's transpose flags, never a transposed copy), and the state set-up.
// Sequences are time-major and contiguous: row (t, n) of x, hs, G is t*N + n (see cpu/rnn.h).
#pragma once
#include "cuda/body/affine.h"
#include "cuda/body/recurrent.h"
#include "cuda/launch.cuh"

namespace fastnn::cuda {

// A gate weight seen as W (K, G) whatever its layout: Book stores it (K, G), Torch (G, K).
template <typename Real>
struct GateWeight {
  Layout L;
  const Real* W;
  int64_t K, G;

  // out[M, nc] = beta * out + A[M, K] @ W[:, c0 : c0+nc]
  void x_times(int64_t M, int64_t c0, int64_t nc, const Real* A, int64_t lda, Real beta,
               Real* out, int64_t ldo, void* stream) const {
    if (L == Layout::Book)
      gemm<Real>(false, false, M, nc, K, Real(1), A, lda, W + c0, G, beta, out, ldo, stream);
    else  // rows c0 .. c0+nc of the (G, K) array, transposed
      gemm<Real>(false, true, M, nc, K, Real(1), A, lda, W + c0 * K, K, beta, out, ldo, stream);
  }

  // dA[M, K] = beta * dA + dG[M, nc] @ W[:, c0 : c0+nc]^T
  void d_times(int64_t M, int64_t c0, int64_t nc, const Real* dG, int64_t ldg, Real beta,
               Real* dA, int64_t lda, void* stream) const {
    if (L == Layout::Book)
      gemm<Real>(false, true, M, K, nc, Real(1), dG, ldg, W + c0, G, beta, dA, lda, stream);
    else
      gemm<Real>(false, false, M, K, nc, Real(1), dG, ldg, W + c0 * K, K, beta, dA, lda, stream);
  }
};

// dW's columns c0 .. c0+nc (W seen as (K, G)) = beta * dW + A[M, K]^T @ dG[M, nc].
template <typename Real>
void grad_w(Layout L, int64_t M, int64_t K, int64_t G, int64_t c0, int64_t nc, const Real* A,
            int64_t lda, const Real* dG, int64_t ldg, Real beta, Real* dW, void* stream) {
  if (L == Layout::Book)
    gemm<Real>(true, false, K, nc, M, Real(1), A, lda, dG, ldg, beta, dW + c0, G, stream);
  else
    gemm<Real>(true, false, nc, K, M, Real(1), dG, ldg, A, lda, beta, dW + c0 * K, K, stream);
}

// dW = sum_t h_{t-1}^T dG_t for the columns c0 .. c0+nc: h_{-1} = h0 (skipped when null), then
// one GEMM over the contiguous h_0 .. h_{T-2}.
template <typename Real>
void grad_w_hidden(Layout L, int64_t T, int64_t N, int64_t K, int64_t G, int64_t c0, int64_t nc,
                   const Real* h0, const Real* hs, const Real* dG, int64_t ldg, Real* dW,
                   void* stream) {
  Real beta = 0;
  if (h0) {
    grad_w(L, N, K, G, c0, nc, h0, K, dG, ldg, Real(0), dW, stream);
    beta = 1;
  }
  grad_w(L, (T - 1) * N, K, G, c0, nc, hs, K, dG + N * ldg, ldg, beta, dW, stream);
}

// out (rows, G) = x (rows, D) @ Wx, plus b broadcast over the rows when b is given: the input
// projection of every time step as one GEMM.
template <typename Real>
void input_projection(int64_t rows, int64_t G, const Real* x, const GateWeight<Real>& Wx,
                      const Real* b, Real* out, void* stream) {
  Wx.x_times(rows, 0, G, x, Wx.K, Real(0), out, G, stream);
  if (b)
    for_each(rows * G, stream, [=] __device__(int64_t i) { body::bias_add_element(out, b, G, i); },
             "recurrent input projection (bias)");
}

// dst (n) = src, or zeros when src is null.
template <typename Real>
void copy_or_zero(Real* dst, const Real* src, int64_t n, void* stream) {
  if (n <= 0) return;
  if (src)
    check(cudaMemcpyAsync(dst, src, sizeof(Real) * n, cudaMemcpyDeviceToDevice,
                          as_stream(stream)), "cudaMemcpyAsync");
  else
    check(cudaMemsetAsync(dst, 0, sizeof(Real) * n, as_stream(stream)), "cudaMemsetAsync");
}

// dh_all (T*N, P): the gradient reaching each h_t from outside the recurrence (dhs_t, plus dhn
// at t = T-1). The backward loops then add each step's gradient on h_{t-1} into block t-1, so
// block t holds the total gradient on h_t when step t runs. T >= 1.
template <typename Real>
void seed_dh(const Real* dhs, const Real* dhn, int64_t T, int64_t NP, Real* dh_all,
             void* stream) {
  const int64_t last = (T - 1) * NP;
  for_each(T * NP, stream, [=] __device__(int64_t i) {
    dh_all[i] = body::dh_seed_element(dhs, dhn, last, i);
  }, "recurrent backward (dh seed)");
}

}  // namespace fastnn::cuda
