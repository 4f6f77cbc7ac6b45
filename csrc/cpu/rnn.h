// Recurrent kernels: the Elman RNN here, LSTM and GRU in lstm.h and gru.h; their shared helpers
// are in recurrent.h.
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
#include <cstdint>

#include "core/isa.h"
#include "core/shapes.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

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

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
