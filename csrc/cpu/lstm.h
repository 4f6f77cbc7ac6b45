// LSTM over a whole sequence (time-major; see rnn.h for the layouts).
//   gates: i = sigmoid, f = sigmoid, g = tanh, o = sigmoid of G's four H-blocks, in the order
//          f, g, i, o (Layout::Book) or i, f, g, o (Layout::Torch);
//   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)  (then h_t @ W_hr^T when projecting, P < H).
#pragma once
#include "core/isa.h"
#include "cpu/rnn.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

// Block index (0..3) of gates i, f, g, o inside G for a layout.
struct LstmGates {
  int64_t i, f, g, o;
  static LstmGates of(Layout L) {
    return L == Layout::Book ? LstmGates{2, 0, 1, 3} : LstmGates{0, 1, 2, 3};
  }
};

// P is the size of h (P == H without projection; Whr (P, H) is null then, hfull unused).
// Writes hs (T*N, P), cs (T*N, H), gates (T*N, 4H) after their activations, and hfull (T*N, H),
// o * tanh(c) before the projection, when Whr is given. h0 (N, P), c0 (N, H), b (4H) may be null.
template <typename Real>
void lstm_forward(Layout L, const Real* x, const Real* h0, const Real* c0, const Real* Wx,
                  const Real* Wh, const Real* b, const Real* Whr, int64_t T, int64_t N, int64_t D,
                  int64_t H, int64_t P, Real* hs, Real* cs, Real* gates, Real* hfull);

// dhs (T*N, P), dhn (N, P), dcn (N, H) may be null. Writes dx (T*N, D), dh0 (N, P), dc0 (N, H),
// dWx, dWh, db (4H,), and dWhr (P, H) when Whr is given.
template <typename Real>
void lstm_backward(Layout L, const Real* x, const Real* h0, const Real* c0, const Real* Wx,
                   const Real* Wh, const Real* Whr, const Real* hs, const Real* cs,
                   const Real* gates, const Real* hfull, const Real* dhs, const Real* dhn,
                   const Real* dcn, int64_t T, int64_t N, int64_t D, int64_t H, int64_t P,
                   Real* dx, Real* dh0, Real* dc0, Real* dWx, Real* dWh, Real* db, Real* dWhr);

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
