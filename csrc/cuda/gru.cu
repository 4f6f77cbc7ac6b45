// GRU over a sequence, csrc/cpu/gru.cpp on the GPU (equations and layouts in cpu/gru.h): the
// input projection of all steps is one GEMM into gates. Per step, the book's equations take a
// GEMM and a fused kernel for z, r, then a GEMM of r * h_{t-1} with Wh's n block and a fused
// kernel for n and h; PyTorch's take one GEMM h_{t-1} @ W_hh^T into a scratch and one fused
// kernel. Backward mirrors them; the weight gradients over all steps are one GEMM each.
#include "cuda/body/recurrent.h"
#include "cuda/launch.cuh"
#include "cuda/ops.h"
#include "cuda/recurrent.cuh"

namespace fastnn::cuda {

template <typename Real>
void gru_forward(Layout L, const Real* x, const Real* h0, const Real* Wx, const Real* Wh,
                 const Real* bx, const Real* bh, int64_t T, int64_t N, int64_t D, int64_t H,
                 Real* hs, Real* gates, Real* aux, void* stream) {
  const int64_t G = 3 * H;
  const body::GruGates k = body::GruGates::of(L);
  const bool book = L == Layout::Book;
  const GateWeight<Real> wx{L, Wx, D, G}, wh{L, Wh, H, G};
  input_projection(T * N, G, x, wx, bx, gates, stream);
  Scratch<Real> hg_s(book ? 0 : N * G, stream);  // Torch: h_{t-1} @ W_hh^T
  Real* hg = hg_s.get();
  for (int64_t t = 0; t < T; ++t) {
    Real* A = gates + t * N * G;
    Real* h = hs + t * N * H;
    Real* ax = aux + t * N * H;
    const Real* h_prev = t ? h - N * H : h0;  // null: zeros, and its GEMMs are skipped
    if (book) {
      // z and r first (blocks 0, 1), then n, which needs r * h_{t-1}.
      if (h_prev) wh.x_times(N, 0, 2 * H, h_prev, H, Real(1), A, G, stream);
      for_each(N * H, stream, [=] __device__(int64_t i) {
        body::gru_book_forward_zr_element(k, A, h_prev, ax, H, i);
      }, "gru_forward (z, r)");
      if (h_prev) wh.x_times(N, k.n * H, H, ax, H, Real(1), A + k.n * H, G, stream);
      for_each(N * H, stream, [=] __device__(int64_t i) {
        body::gru_book_forward_n_element(k, A, h_prev, h, H, i);
      }, "gru_forward (n)");
    } else {
      if (h_prev) wh.x_times(N, 0, G, h_prev, H, Real(0), hg, G, stream);
      const Real* hgt = h_prev ? hg : nullptr;  // null: no hidden GEMM this step
      for_each(N * H, stream, [=] __device__(int64_t i) {
        body::gru_torch_forward_element(k, A, hgt, bh, h_prev, ax, h, H, i);
      }, "gru_forward");
    }
  }
}

template <typename Real>
void gru_backward(Layout L, const Real* x, const Real* h0, const Real* Wx, const Real* Wh,
                  const Real* hs, const Real* gates, const Real* aux, const Real* dhs,
                  const Real* dhn, int64_t T, int64_t N, int64_t D, int64_t H, Real* dx,
                  Real* dh0, Real* dWx, Real* dWh, Real* dbx, Real* dbh, void* stream) {
  const int64_t G = 3 * H;
  const body::GruGates k = body::GruGates::of(L);
  const bool book = L == Layout::Book;
  if (T == 0) {
    copy_or_zero(dh0, dhn, N * H, stream);
    copy_or_zero<Real>(dWx, nullptr, D * G, stream);
    copy_or_zero<Real>(dWh, nullptr, H * G, stream);
    copy_or_zero<Real>(dbx, nullptr, G, stream);
    if (dbh) copy_or_zero<Real>(dbh, nullptr, G, stream);
    return;
  }
  // dG: gradients of the input projection's pre-activations. Torch also keeps dGh, those of
  // h @ W_hh^T + b_hh, which differ from dG in the n block (scaled by r). dh_all: the total
  // gradient on every h_t (seed_dh). Book: drh = d(r * h_{t-1}) of one step.
  Scratch<Real> dG_s(T * N * G, stream), dGh_s(book ? 0 : T * N * G, stream);
  Scratch<Real> dh_s(T * N * H, stream), drh_s(book ? N * H : 0, stream);
  Real *dG = dG_s.get(), *dGh = dGh_s.get(), *dh_all = dh_s.get(), *drh = drh_s.get();
  seed_dh(dhs, dhn, T, N * H, dh_all, stream);
  copy_or_zero<Real>(dh0, nullptr, N * H, stream);
  const GateWeight<Real> wx{L, Wx, D, G}, wh{L, Wh, H, G};
  for (int64_t t = T - 1; t >= 0; --t) {
    const Real* A = gates + t * N * G;
    const Real* ax = aux + t * N * H;
    const Real* h_prev = t ? hs + (t - 1) * N * H : h0;  // null: zeros
    const Real* dh = dh_all + t * N * H;
    Real* dh_prev = t ? dh_all + (t - 1) * N * H : dh0;
    Real* dA = dG + t * N * G;
    if (book) {
      for_each(N * H, stream, [=] __device__(int64_t i) {
        body::gru_book_backward_zn_element(k, A, h_prev, dh, dA, H, i);
      }, "gru_backward (z, n)");
      wh.d_times(N, k.n * H, H, dA + k.n * H, G, Real(0), drh, H, stream);
      for_each(N * H, stream, [=] __device__(int64_t i) {
        body::gru_book_backward_r_element(k, A, h_prev, dh, drh, dA, dh_prev, H, i);
      }, "gru_backward (r)");
      wh.d_times(N, 0, 2 * H, dA, G, Real(1), dh_prev, H, stream);
    } else {
      Real* dAh = dGh + t * N * G;
      for_each(N * H, stream, [=] __device__(int64_t i) {
        body::gru_torch_backward_element(k, A, ax, h_prev, dh, dA, dAh, dh_prev, H, i);
      }, "gru_backward");
      wh.d_times(N, 0, G, dAh, G, Real(1), dh_prev, H, stream);
    }
  }
  if (book) {
    grad_w_hidden(L, T, N, H, G, 0, 2 * H, h0, hs, dG, G, dWh, stream);
    grad_w(L, T * N, H, G, k.n * H, H, aux, H, dG + k.n * H, G, Real(0), dWh, stream);
  } else {
    grad_w_hidden(L, T, N, H, G, 0, G, h0, hs, dGh, G, dWh, stream);
    column_sum<Real>(body::Elem<Real>{dGh, G}, T * N, G, dbh, stream, "gru_backward (dbh)");
  }
  grad_w(L, T * N, D, G, 0, G, x, D, dG, G, Real(0), dWx, stream);
  column_sum<Real>(body::Elem<Real>{dG, G}, T * N, G, dbx, stream, "gru_backward (dbx)");
  wx.d_times(T * N, 0, G, dG, G, Real(0), dx, D, stream);
}

#define FASTNN_INSTANTIATE(Real)                                                               \
  template void gru_forward<Real>(Layout, const Real*, const Real*, const Real*, const Real*,  \
                                  const Real*, const Real*, int64_t, int64_t, int64_t, int64_t, \
                                  Real*, Real*, Real*, void*);                                  \
  template void gru_backward<Real>(Layout, const Real*, const Real*, const Real*, const Real*, \
                                   const Real*, const Real*, const Real*, const Real*,          \
                                   const Real*, int64_t, int64_t, int64_t, int64_t, Real*,      \
                                   Real*, Real*, Real*, Real*, Real*, void*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cuda
