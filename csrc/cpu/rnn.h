// Recurrent kernels: the Elman RNN here; lstm.h and gru.h reuse the helpers below.
//
// Sequences are time-major and contiguous: row (t, n) of x (T*N, D), hs (T*N, H), ... is t*N + n,
// so the input projection of all time steps is one GEMM and h_{t-1} of every step t >= 1 is the
// contiguous block hs[0 : (T-1)*N] (weight gradients over time become one GEMM after the loop).
// Gate pre-activations G (T*N, gH) hold g blocks of H columns.
//
// Two weight layouts share each kernel:
//   Layout::Book  - the book's Wx (D, gH), Wh (H, gH), b (gH,):  G = x @ Wx + h @ Wh + b.
//   Layout::Torch - torch.nn's weight_ih (gH, D), weight_hh (gH, H):
//                   G = x @ W_ih^T + h @ W_hh^T + b.
// The layout also picks each family's gate order and, for GRU, the book's or PyTorch's equations.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/blas.h"
#include "core/buffers.h"

namespace fastnn::cpu {

enum class Layout { Book, Torch };

// A gate weight seen as W (K, G) whatever its layout, held in the orientation(s) a pass needs:
// kg (K, G) for x @ W (forward), gk (G, K) for dG @ W^T (backward). One is the caller's array,
// the other a transposed copy made once per call, so every per-step GEMM runs untransposed
// (OpenBLAS is markedly slower on small GEMMs with a transposed operand).
template <typename Real>
class GateWeight {
 public:
  GateWeight(Layout L, const Real* W, int64_t K, int64_t G, bool backward)
      : K_(K), G_(G), copy_((L == Layout::Book) == backward ? static_cast<size_t>(K * G) : 0) {
    const bool have_kg = L == Layout::Book;
    if (have_kg != backward) {  // the caller's orientation is the one needed
      (backward ? gk_ : kg_) = W;
      return;
    }
    Real* copy = copy_.data();
    const int64_t rows = have_kg ? K : G, cols = have_kg ? G : K;
    constexpr int64_t B = 32;  // transpose in B x B tiles
    for (int64_t r0 = 0; r0 < rows; r0 += B)
      for (int64_t c0 = 0; c0 < cols; c0 += B)
        for (int64_t r = r0; r < std::min(rows, r0 + B); ++r)
          for (int64_t c = c0; c < std::min(cols, c0 + B); ++c)
            copy[c * rows + r] = W[r * cols + c];
    (backward ? gk_ : kg_) = copy;
  }

  // out[M, nc] = beta * out + A[M, K] @ W[:, c0 : c0+nc]   (forward orientation)
  void x_times(int64_t M, int64_t c0, int64_t nc, const Real* A, int64_t lda, Real beta,
               Real* out, int64_t ldo) const {
    gemm(false, false, M, nc, K_, Real(1), A, lda, kg_ + c0, G_, beta, out, ldo);
  }

  // dA[M, K] = beta * dA + dG[M, nc] @ W[:, c0 : c0+nc]^T   (backward orientation)
  void d_times(int64_t M, int64_t c0, int64_t nc, const Real* dG, int64_t ldg, Real beta,
               Real* dA, int64_t lda) const {
    gemm(false, false, M, K_, nc, Real(1), dG, ldg, gk_ + c0 * K_, K_, beta, dA, lda);
  }

 private:
  int64_t K_, G_;
  const Real* kg_ = nullptr;
  const Real* gk_ = nullptr;
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

// out (rows, G) = b broadcast over rows (zeros when b is null), then += x (rows, D) @ Wx.
template <typename Real>
inline void input_projection(int64_t rows, int64_t D, int64_t G, const Real* x,
                             const GateWeight<Real>& Wx, const Real* b, Real* out) {
  for (int64_t r = 0; r < rows; ++r) {
    Real* o = out + r * G;
    if (b)
      std::copy(b, b + G, o);
    else
      std::fill(o, o + G, Real(0));
  }
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

// ---- Gate activations. float uses a branch-free exp that `omp simd` loops vectorize (the
// libm call would stay scalar and dominate small problems); double keeps libm for 1e-15 accuracy.

// exp(x) in float: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-7 polynomial
// (Cephes' expf coefficients, about 2 ulp), times 2^n built in the exponent bits. NaN propagates.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;  // a NaN fails both comparisons and flows through
  x = x > 88.0f ? 88.0f : x;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer n
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln2 split in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  uint32_t tb, sb;
  const float shifter_copy = shifter;
  std::memcpy(&tb, &t, 4);
  std::memcpy(&sb, &shifter_copy, 4);
  const uint32_t bits = (tb - sb + 127u) << 23;  // the low mantissa bits of t hold n
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

inline float exp_act(float x) { return exp_approx(x); }
inline double exp_act(double x) { return std::exp(x); }

template <typename Real>
inline Real sigmoid(Real v) {
  return Real(1) / (Real(1) + exp_act(-v));
}

inline float tanh_act(float v) {
  const float e = exp_approx(-2.0f * std::fabs(v));
  return std::copysign((1.0f - e) / (1.0f + e), v);
}
inline double tanh_act(double v) { return std::tanh(v); }

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
