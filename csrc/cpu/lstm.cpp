#include "cpu/lstm.h"

#include <vector>

#include "core/buffers.h"
#include "core/parallel.h"
#include "cpu/recurrent.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

template <typename Real>
void lstm_forward(Layout L, const Real* x, const Real* h0, const Real* c0, const Real* Wx,
                  const Real* Wh, const Real* b, const Real* Whr, int64_t T, int64_t N, int64_t D,
                  int64_t H, int64_t P, Real* hs, Real* cs, Real* gates, Real* hfull) {
  const int64_t G = 4 * H;
  const LstmGates k = LstmGates::of(L);
  const GateWeight<Real> wx(L, Wx, D, G), wh(L, Wh, P, G, step_gemm_is_small(N, G, P), false);
  const GateWeight<Real> whr(Layout::Torch, Whr, H, Whr ? P : 0,
                              step_gemm_is_small(N, P, H), false);
  input_projection(T * N, D, G, x, wx, b, gates);
  std::vector<Real> zeros(c0 ? 0 : static_cast<size_t>(N * H));
  time_loop(N, G, P, [&](int64_t n0, int64_t nb) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t r = t * N + n0;  // the slice's first row at step t
      Real* A = gates + r * G;
      const Real* h_prev = t ? hs + (r - N) * P : (h0 ? h0 + n0 * P : nullptr);  // null: zeros
      const Real* c_prev = t ? cs + (r - N) * H : (c0 ? c0 : zeros.data()) + n0 * H;
      Real* c = cs + r * H;
      Real* h_cell = Whr ? hfull + r * H : hs + r * P;  // o * tanh(c)
      if (h_prev) wh.x_times(nb, 0, G, h_prev, P, Real(1), A, G);
#pragma omp parallel for if (worth_parallel(nb * H))
      for (int64_t n = 0; n < nb; ++n) {
        Real* a = A + n * G;
        Real *ai = a + k.i * H, *af = a + k.f * H, *ag = a + k.g * H, *ao = a + k.o * H;
        const Real* cp = c_prev + n * H;
        Real *cn = c + n * H, *hn = h_cell + n * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const Real i = sigmoid(ai[j]), f = sigmoid(af[j]), g = tanh_act(ag[j]),
                     o = sigmoid(ao[j]);
          const Real cj = f * cp[j] + i * g;
          ai[j] = i, af[j] = f, ag[j] = g, ao[j] = o;
          cn[j] = cj;
          hn[j] = o * tanh_act(cj);
        }
      }
      if (Whr) whr.x_times(nb, 0, P, h_cell, H, Real(0), hs + r * P, P);
    }
  });
}

template <typename Real>
void lstm_backward(Layout L, const Real* x, const Real* h0, const Real* c0, const Real* Wx,
                   const Real* Wh, const Real* Whr, const Real* hs, const Real* cs,
                   const Real* gates, const Real* hfull, const Real* dhs, const Real* dhn,
                   const Real* dcn, int64_t T, int64_t N, int64_t D, int64_t H, int64_t P,
                   Real* dx, Real* dh0, Real* dc0, Real* dWx, Real* dWh, Real* db, Real* dWhr) {
  const int64_t G = 4 * H;
  const LstmGates k = LstmGates::of(L);
  // dh0 and dc0 double as the running gradients on h_t and c_t while walking back in time.
  Real* dh = dh0;
  Real* dc = dc0;
  if (dhn) std::copy(dhn, dhn + N * P, dh); else std::fill(dh, dh + N * P, Real(0));
  if (dcn) std::copy(dcn, dcn + N * H, dc); else std::fill(dc, dc + N * H, Real(0));
  if (T == 0) {
    std::fill(dWx, dWx + D * G, Real(0));
    std::fill(dWh, dWh + P * G, Real(0));
    std::fill(db, db + G, Real(0));
    if (Whr) std::fill(dWhr, dWhr + P * H, Real(0));
    return;
  }
  buffers::Scratch<Real> dG(static_cast<size_t>(T * N * G));
  const GateWeight<Real> wx(L, Wx, D, G), wh(L, Wh, P, G, step_gemm_is_small(N, G, P), true);
  const GateWeight<Real> whr(Layout::Torch, Whr, H, Whr ? P : 0,
                              step_gemm_is_small(N, P, H), true);
  std::vector<Real> zeros(c0 ? 0 : static_cast<size_t>(N * H));
  // With a projection: the total dh of every step (for dWhr) and dh through W_hr, per step.
  buffers::Scratch<Real> dh_all(Whr ? static_cast<size_t>(T * N * P) : 0);
  std::vector<Real> dh_cell(Whr ? static_cast<size_t>(N * H) : 0);
  time_loop(N, G, P, [&](int64_t n0, int64_t nb) {
    Real* dh_s = dh + n0 * P;  // the slice's rows of the running gradients
    Real* dc_s = dc + n0 * H;
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t r = t * N + n0;
      if (dhs) {
        const Real* d = dhs + r * P;
#pragma omp simd
        for (int64_t e = 0; e < nb * P; ++e) dh_s[e] += d[e];
      }
      const Real* dhc = dh_s;
      if (Whr) {
        std::copy(dh_s, dh_s + nb * P, dh_all.data() + r * P);
        whr.d_times(nb, 0, P, dh_s, P, Real(0), dh_cell.data() + n0 * H, H);
        dhc = dh_cell.data() + n0 * H;
      }
      const Real* A = gates + r * G;
      const Real* c = cs + r * H;
      const Real* c_prev = t ? c - N * H : (c0 ? c0 : zeros.data()) + n0 * H;
      Real* dA = dG.data() + r * G;
#pragma omp parallel for if (worth_parallel(nb * H))
      for (int64_t n = 0; n < nb; ++n) {
        const Real* a = A + n * G;
        const Real *ai = a + k.i * H, *af = a + k.f * H, *ag = a + k.g * H, *ao = a + k.o * H;
        Real* da = dA + n * G;
        Real *di = da + k.i * H, *df = da + k.f * H, *dg = da + k.g * H, *d_o = da + k.o * H;
        const Real *cp = c_prev + n * H, *cn = c + n * H, *dhn = dhc + n * H;
        Real* dcn = dc_s + n * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const Real i = ai[j], f = af[j], g = ag[j], o = ao[j];
          const Real tc = tanh_act(cn[j]);
          const Real dcell = dcn[j] + dhn[j] * o * (Real(1) - tc * tc);
          d_o[j] = dhn[j] * tc * o * (Real(1) - o);
          di[j] = dcell * g * i * (Real(1) - i);
          dg[j] = dcell * i * (Real(1) - g * g);
          df[j] = dcell * cp[j] * f * (Real(1) - f);
          dcn[j] = dcell * f;
        }
      }
      wh.d_times(nb, 0, G, dA, G, Real(0), dh_s, P);
    }
  });
  grad_w_hidden(L, T, N, P, G, 0, G, h0, hs, dG.data(), G, dWh);
  grad_w(L, T * N, D, G, 0, G, x, D, dG.data(), G, Real(0), dWx);
  column_sum(T * N, G, dG.data(), G, db);
  wx.d_times(T * N, 0, G, dG.data(), G, Real(0), dx, D);
  if (Whr) grad_w(Layout::Torch, T * N, H, P, 0, P, hfull, H, dh_all.data(), P, Real(0), dWhr);
}

#define FASTNN_INSTANTIATE(Real)                                                               \
  template void lstm_forward<Real>(Layout, const Real*, const Real*, const Real*, const Real*, \
                                   const Real*, const Real*, const Real*, int64_t, int64_t,    \
                                   int64_t, int64_t, int64_t, Real*, Real*, Real*, Real*);     \
  template void lstm_backward<Real>(Layout, const Real*, const Real*, const Real*, const Real*, \
                                    const Real*, const Real*, const Real*, const Real*,         \
                                    const Real*, const Real*, const Real*, const Real*,         \
                                    const Real*, int64_t, int64_t, int64_t, int64_t, int64_t,   \
                                    Real*, Real*, Real*, Real*, Real*, Real*, Real*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
