// GRU over a whole sequence (time-major; see rnn.h for the layouts). The layout picks the
// equations as well as the weight shapes:
//   Layout::Book  (blocks z, r, n; one bias b):       z, r = sigmoid(x Wx + h Wh + b)
//       n = tanh(x Wxn + (r * h) Whn + bn),          h' = (1 - z) * h + z * n
//   Layout::Torch (blocks r, z, n; b_ih and b_hh):    r, z = sigmoid(W_i x + b_i + W_h h + b_h)
//       n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h
#pragma once
#include "core/isa.h"
#include "cpu/rnn.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// Writes hs (T*N, H), gates (T*N, 3H) after their activations, and aux (T*N, H): r * h_{t-1}
// (Book) or W_hn h_{t-1} + b_hn (Torch), what the backward pass needs besides the gates.
// bx (3H) is added to the input projection, bh (3H, Torch only) to the hidden one; both, and h0,
// may be null.
template <typename Real>
void gru_forward(Layout L, const Real* x, const Real* h0, const Real* Wx, const Real* Wh,
                 const Real* bx, const Real* bh, int64_t T, int64_t N, int64_t D, int64_t H,
                 Real* hs, Real* gates, Real* aux);

// dhs (T*N, H) and dhn (N, H) may be null. Writes dx (T*N, D), dh0 (N, H), dWx, dWh, dbx (3H)
// and, for Torch, dbh (3H).
template <typename Real>
void gru_backward(Layout L, const Real* x, const Real* h0, const Real* Wx, const Real* Wh,
                  const Real* hs, const Real* gates, const Real* aux, const Real* dhs,
                  const Real* dhn, int64_t T, int64_t N, int64_t D, int64_t H, Real* dx,
                  Real* dh0, Real* dWx, Real* dWh, Real* dbx, Real* dbh);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
