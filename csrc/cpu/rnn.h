// Recurrent kernels: the Elman RNN here; lstm.h and gru.h reuse the helpers below.
//
// Sequences are time-major and contiguous: row (t, n) of x (T*N, D), hs (T*N, H), ... is t*N + n,
// so the input projection of all time steps is one GEMM and h_{t-1} of every step t >= 1 is the
// contiguous block hs[0 : (T-1)*N] (weight gradients over time become one GEMM after the loop).
// Gate pre-activations G (T*N, gH) hold g blocks of H columns.
//
// Two weight layouts share each kernel:
//   Layout::Book  - the book's Wx (D, gH), Wh (H, gH), b (gH,):  G = x @ Wx + h @ Wh + b.
//   Layout::Torch - torch.nn's weight_ih (gH, D), weight_hh (gH, H): G = x @ W_ih^T + h @ W_hh^T + b.
// The layout also picks each family's gate order and, for GRU, the book's or PyTorch's equations.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/blas.h"

namespace fastnn::cpu {

enum class Layout { Book, Torch };

// out[M, nc] = beta * out + A[M, K] @ Wcols, where Wcols are columns c0 .. c0+nc of the gate
// dimension of W ((K, G) for Book, (G, K) for Torch).
template <typename Real>
inline void matmul_w(Layout L, int64_t M, int64_t K, int64_t G, int64_t c0, int64_t nc,
                     const Real* A, int64_t lda, const Real* W, Real beta, Real* out, int64_t ldo) {
  if (L == Layout::Book)
    gemm(false, false, M, nc, K, Real(1), A, lda, W + c0, G, beta, out, ldo);
  else
    gemm(false, true, M, nc, K, Real(1), A, lda, W + c0 * K, K, beta, out, ldo);
}

// dA[M, K] = beta * dA + dG[M, nc] @ Wcols^T (the gradient flowing back through matmul_w).
template <typename Real>
inline void matmul_wt(Layout L, int64_t M, int64_t K, int64_t G, int64_t c0, int64_t nc,
                      const Real* dG, int64_t ldg, const Real* W, Real beta, Real* dA,
                      int64_t lda) {
  if (L == Layout::Book)
    gemm(false, true, M, K, nc, Real(1), dG, ldg, W + c0, G, beta, dA, lda);
  else
    gemm(false, false, M, K, nc, Real(1), dG, ldg, W + c0 * K, K, beta, dA, lda);
}

// dWcols = beta * dWcols + A[M, K]^T @ dG[M, nc] (the weight gradient of matmul_w).
template <typename Real>
inline void grad_w(Layout L, int64_t M, int64_t K, int64_t G, int64_t c0, int64_t nc,
                   const Real* A, int64_t lda, const Real* dG, int64_t ldg, Real beta, Real* dW) {
  if (L == Layout::Book)
    gemm(true, false, K, nc, M, Real(1), A, lda, dG, ldg, beta, dW + c0, G);
  else
    gemm(true, false, nc, K, M, Real(1), dG, ldg, A, lda, beta, dW + c0 * K, K);
}

// out (rows, G) = b broadcast over rows (zeros when b is null), then += x (rows, D) @ Wx.
template <typename Real>
inline void input_projection(Layout L, int64_t rows, int64_t D, int64_t G, const Real* x,
                             const Real* Wx, const Real* b, Real* out) {
  for (int64_t r = 0; r < rows; ++r) {
    Real* o = out + r * G;
    if (b)
      std::copy(b, b + G, o);
    else
      std::fill(o, o + G, Real(0));
  }
  if (D > 0) matmul_w(L, rows, D, G, 0, G, x, D, Wx, Real(1), out, G);
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

template <typename Real>
inline Real sigmoid(Real v) {
  return Real(1) / (Real(1) + std::exp(-v));
}

// ---- Elman RNN: h_t = act(x_t Wx + h_{t-1} Wh + b), act = tanh or relu (G = H).

// hs (T*N, H): every h_t. h0 (N, H) may be null (zeros), b may be null (no bias).
template <typename Real>
void rnn_forward(Layout L, bool relu, const Real* x, const Real* h0, const Real* Wx,
                 const Real* Wh, const Real* b, int64_t T, int64_t N, int64_t D, int64_t H,
                 Real* hs);

// dhs (T*N, H) is the gradient on every output h_t and dhn (N, H) the one on h_{T-1} as a state
// (either may be null). Writes dx (T*N, D), dh0 (N, H), dWx, dWh (shaped like Wx, Wh), db (H,).
template <typename Real>
void rnn_backward(Layout L, bool relu, const Real* x, const Real* h0, const Real* Wx,
                  const Real* Wh, const Real* hs, const Real* dhs, const Real* dhn, int64_t T,
                  int64_t N, int64_t D, int64_t H, Real* dx, Real* dh0, Real* dWx, Real* dWh,
                  Real* db);

}  // namespace fastnn::cpu
