// Elman RNN over a sequence, csrc/cpu/rnn.cpp on the GPU: the input projection of all steps is
// one GEMM into hs, then per step one GEMM h_{t-1} @ Wh accumulated into hs_t and one fused
// activation kernel; backward per step one fused kernel and one GEMM for dh_{t-1}, then the
// weight gradients over all steps as one GEMM each.
#include "cuda/body/recurrent.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"
#include "cuda/recurrent.cuh"

namespace fastnn::cuda {

template <typename Real>
void rnn_forward(Layout L, bool relu, const Real* x, const Real* h0, const Real* Wx,
                 const Real* Wh, const Real* b, int64_t T, int64_t N, int64_t D, int64_t H,
                 Real* hs, void* stream) {
  const GateWeight<Real> wx{L, Wx, D, H}, wh{L, Wh, H, H};
  input_projection(T * N, H, x, wx, b, hs, stream);
  const int64_t n_el = N * H;
  for (int64_t t = 0; t < T; ++t) {
    Real* h = hs + t * n_el;
    const Real* h_prev = t ? h - n_el : h0;
    if (h_prev) wh.x_times(N, 0, H, h_prev, H, Real(1), h, H, stream);
    for_each(n_el, stream, [=] __device__(int64_t i) { body::rnn_forward_element(h, relu, i); },
             "rnn_forward");
  }
}

template <typename Real>
void rnn_backward(Layout L, bool relu, const Real* x, const Real* h0, const Real* Wx,
                  const Real* Wh, const Real* hs, const Real* dhs, const Real* dhn, int64_t T,
                  int64_t N, int64_t D, int64_t H, Real* dx, Real* dh0, Real* dWx, Real* dWh,
                  Real* db, void* stream) {
  const int64_t n_el = N * H;
  if (T == 0) {
    copy_or_zero(dh0, dhn, n_el, stream);
    copy_or_zero<Real>(dWx, nullptr, D * H, stream);
    copy_or_zero<Real>(dWh, nullptr, H * H, stream);
    copy_or_zero<Real>(db, nullptr, H, stream);
    return;
  }
  // dG: d(pre-activation) of every step; dh_all: the gradient on every h_t (seed_dh).
  Scratch<Real> dG_s(T * n_el, stream), dh_s(T * n_el, stream);
  Real *dG = dG_s.get(), *dh_all = dh_s.get();
  seed_dh(dhs, dhn, T, n_el, dh_all, stream);
  copy_or_zero<Real>(dh0, nullptr, n_el, stream);
  const GateWeight<Real> wx{L, Wx, D, H}, wh{L, Wh, H, H};
  for (int64_t t = T - 1; t >= 0; --t) {
    const Real* h = hs + t * n_el;
    const Real* dh = dh_all + t * n_el;
    Real* dg = dG + t * n_el;
    for_each(n_el, stream, [=] __device__(int64_t i) {
      body::rnn_backward_element(h, dh, dg, relu, i);
    }, "rnn_backward");
    Real* dh_prev = t ? dh_all + (t - 1) * n_el : dh0;
    wh.d_times(N, 0, H, dg, H, Real(1), dh_prev, H, stream);
  }
  grad_w_hidden(L, T, N, H, H, 0, H, h0, hs, dG, H, dWh, stream);
  grad_w(L, T * N, D, H, 0, H, x, D, dG, H, Real(0), dWx, stream);
  column_sum<Real>(body::Elem<Real>{dG, H}, T * N, H, db, stream, "rnn_backward (db)");
  wx.d_times(T * N, 0, H, dG, H, Real(0), dx, D, stream);
}

#define FASTNN_INSTANTIATE(Real)                                                              \
  template void rnn_forward<Real>(Layout, bool, const Real*, const Real*, const Real*,        \
                                  const Real*, const Real*, int64_t, int64_t, int64_t, int64_t, \
                                  Real*, void*);                                               \
  template void rnn_backward<Real>(Layout, bool, const Real*, const Real*, const Real*,       \
                                   const Real*, const Real*, const Real*, const Real*, int64_t, \
                                   int64_t, int64_t, int64_t, Real*, Real*, Real*, Real*, Real*, \
                                   void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
