// LSTM over a sequence, csrc/cpu/lstm.cpp on the GPU (gates and layouts in cpu/lstm.h): the
// input projection of all steps is one GEMM into gates, then per step one GEMM h_{t-1} @ Wh
// accumulated into gates_t, one fused gate kernel and, with a projection, one GEMM by W_hr^T.
// Backward per step: (the projection's GEMM,) one fused gate-backward kernel and one GEMM for
// dh_{t-1}; the weight gradients over all steps as one GEMM each.
#include "cuda/body/recurrent.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"
#include "cuda/recurrent.cuh"

namespace fastnn::cuda {

template <typename Real>
void lstm_forward(Layout L, const Real* x, const Real* h0, const Real* c0, const Real* Wx,
                  const Real* Wh, const Real* b, const Real* Whr, int64_t T, int64_t N, int64_t D,
                  int64_t H, int64_t P, Real* hs, Real* cs, Real* gates, Real* hfull,
                  void* stream) {
  const int64_t G = 4 * H;
  const body::LstmGates k = body::LstmGates::of(L);
  const GateWeight<Real> wx{L, Wx, D, G}, wh{L, Wh, P, G};
  const GateWeight<Real> whr{Layout::Torch, Whr, H, P};  // Whr (P, H)
  input_projection(T * N, G, x, wx, b, gates, stream);
  for (int64_t t = 0; t < T; ++t) {
    Real* A = gates + t * N * G;
    const Real* h_prev = t ? hs + (t - 1) * N * P : h0;  // null: zeros, no GEMM
    const Real* c_prev = t ? cs + (t - 1) * N * H : c0;  // null: zeros
    Real* c = cs + t * N * H;
    Real* h_cell = Whr ? hfull + t * N * H : hs + t * N * P;  // o * tanh(c)
    if (h_prev) wh.x_times(N, 0, G, h_prev, P, Real(1), A, G, stream);
    for_each(N * H, stream, [=] __device__(int64_t i) {
      body::lstm_forward_element(k, A, c_prev, c, h_cell, H, i);
    }, "lstm_forward");
    if (Whr) whr.x_times(N, 0, P, h_cell, H, Real(0), hs + t * N * P, P, stream);
  }
}

template <typename Real>
void lstm_backward(Layout L, const Real* x, const Real* h0, const Real* c0, const Real* Wx,
                   const Real* Wh, const Real* Whr, const Real* hs, const Real* cs,
                   const Real* gates, const Real* hfull, const Real* dhs, const Real* dhn,
                   const Real* dcn, int64_t T, int64_t N, int64_t D, int64_t H, int64_t P,
                   Real* dx, Real* dh0, Real* dc0, Real* dWx, Real* dWh, Real* db, Real* dWhr,
                   void* stream) {
  const int64_t G = 4 * H;
  const body::LstmGates k = body::LstmGates::of(L);
  // dc0 doubles as the running gradient on c_t while walking back in time.
  Real* dc = dc0;
  copy_or_zero(dc, dcn, N * H, stream);
  if (T == 0) {
    copy_or_zero(dh0, dhn, N * P, stream);
    copy_or_zero<Real>(dWx, nullptr, D * G, stream);
    copy_or_zero<Real>(dWh, nullptr, P * G, stream);
    copy_or_zero<Real>(db, nullptr, G, stream);
    if (Whr) copy_or_zero<Real>(dWhr, nullptr, P * H, stream);
    return;
  }
  // dG: the gate gradients of every step; dh_all (T*N, P): the total gradient on every h_t
  // (seed_dh; with a projection also dWhr's right factor); dh_cell: dh_t through W_hr.
  Scratch<Real> dG_s(T * N * G, stream), dh_s(T * N * P, stream);
  Scratch<Real> dh_cell_s(Whr ? N * H : 0, stream);
  Real *dG = dG_s.get(), *dh_all = dh_s.get(), *dh_cell = dh_cell_s.get();
  seed_dh(dhs, dhn, T, N * P, dh_all, stream);
  copy_or_zero<Real>(dh0, nullptr, N * P, stream);
  const GateWeight<Real> wx{L, Wx, D, G}, wh{L, Wh, P, G};
  const GateWeight<Real> whr{Layout::Torch, Whr, H, P};
  for (int64_t t = T - 1; t >= 0; --t) {
    const Real* dh = dh_all + t * N * P;
    const Real* dhc = dh;
    if (Whr) {
      whr.d_times(N, 0, P, dh, P, Real(0), dh_cell, H, stream);
      dhc = dh_cell;
    }
    const Real* A = gates + t * N * G;
    const Real* c = cs + t * N * H;
    const Real* c_prev = t ? c - N * H : c0;  // null: zeros
    Real* dA = dG + t * N * G;
    for_each(N * H, stream, [=] __device__(int64_t i) {
      body::lstm_backward_element(k, A, c, c_prev, dhc, dc, dA, H, i);
    }, "lstm_backward");
    Real* dh_prev = t ? dh_all + (t - 1) * N * P : dh0;
    wh.d_times(N, 0, G, dA, G, Real(1), dh_prev, P, stream);
  }
  grad_w_hidden(L, T, N, P, G, 0, G, h0, hs, dG, G, dWh, stream);
  grad_w(L, T * N, D, G, 0, G, x, D, dG, G, Real(0), dWx, stream);
  column_sum<Real>(body::Elem<Real>{dG, G}, T * N, G, db, stream, "lstm_backward (db)");
  wx.d_times(T * N, 0, G, dG, G, Real(0), dx, D, stream);
  if (Whr)
    grad_w(Layout::Torch, T * N, H, P, 0, P, hfull, H, dh_all, P, Real(0), dWhr, stream);
}

#define FASTNN_INSTANTIATE(Real)                                                               \
  template void lstm_forward<Real>(Layout, const Real*, const Real*, const Real*, const Real*, \
                                   const Real*, const Real*, const Real*, int64_t, int64_t,    \
                                   int64_t, int64_t, int64_t, Real*, Real*, Real*, Real*,      \
                                   void*);                                                     \
  template void lstm_backward<Real>(Layout, const Real*, const Real*, const Real*, const Real*, \
                                    const Real*, const Real*, const Real*, const Real*,         \
                                    const Real*, const Real*, const Real*, const Real*,         \
                                    const Real*, int64_t, int64_t, int64_t, int64_t, int64_t,   \
                                    Real*, Real*, Real*, Real*, Real*, Real*, Real*, void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
