#include "cpu/lstm.h"

#include <vector>

#include "core/buffers.h"
#include "core/parallel.h"

namespace fastnn::cpu {

template <typename Real>
void lstm_forward(Layout L, const Real* x, const Real* h0, const Real* c0, const Real* Wx,
                  const Real* Wh, const Real* b, const Real* Whr, int64_t T, int64_t N, int64_t D,
                  int64_t H, int64_t P, Real* hs, Real* cs, Real* gates, Real* hfull) {
  const int64_t G = 4 * H;
  const LstmGates k = LstmGates::of(L);
  const GateWeight<Real> wx(L, Wx, D, G, false), wh(L, Wh, P, G, false);
  const GateWeight<Real> whr(Layout::Torch, Whr, H, Whr ? P : 0, false);
  input_projection(T * N, D, G, x, wx, b, gates);
  std::vector<Real> zeros(c0 ? 0 : static_cast<size_t>(N * H));
  const SerialGemmScope serial(step_gemm_is_small(N, G, P));
  for (int64_t t = 0; t < T; ++t) {
    Real* A = gates + t * N * G;
    const Real* h_prev = t ? hs + (t - 1) * N * P : h0;  // null: zeros, no GEMM
    const Real* c_prev = t ? cs + (t - 1) * N * H : (c0 ? c0 : zeros.data());
    Real* c = cs + t * N * H;
    Real* h_cell = Whr ? hfull + t * N * H : hs + t * N * P;  // o * tanh(c)
    if (h_prev) wh.x_times(N, 0, G, h_prev, P, Real(1), A, G);
#pragma omp parallel for if (worth_parallel(N * H))
    for (int64_t n = 0; n < N; ++n) {
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
    if (Whr) whr.x_times(N, 0, P, h_cell, H, Real(0), hs + t * N * P, P);
  }
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
  const GateWeight<Real> wx(L, Wx, D, G, true), wh(L, Wh, P, G, true);
  const GateWeight<Real> whr(Layout::Torch, Whr, H, Whr ? P : 0, true);
  std::vector<Real> zeros(c0 ? 0 : static_cast<size_t>(N * H));
  // With a projection: the total dh of every step (for dWhr) and dh through W_hr, per step.
  buffers::Scratch<Real> dh_all(Whr ? static_cast<size_t>(T * N * P) : 0);
  std::vector<Real> dh_cell(Whr ? static_cast<size_t>(N * H) : 0);
  {
    const SerialGemmScope serial(step_gemm_is_small(N, G, P));
    for (int64_t t = T - 1; t >= 0; --t) {
      if (dhs) {
        const Real* d = dhs + t * N * P;
#pragma omp simd
        for (int64_t i = 0; i < N * P; ++i) dh[i] += d[i];
      }
      const Real* dhc = dh;
      if (Whr) {
        std::copy(dh, dh + N * P, dh_all.data() + t * N * P);
        whr.d_times(N, 0, P, dh, P, Real(0), dh_cell.data(), H);
        dhc = dh_cell.data();
      }
      const Real* A = gates + t * N * G;
      const Real* c = cs + t * N * H;
      const Real* c_prev = t ? c - N * H : (c0 ? c0 : zeros.data());
      Real* dA = dG.data() + t * N * G;
#pragma omp parallel for if (worth_parallel(N * H))
      for (int64_t n = 0; n < N; ++n) {
        const Real* a = A + n * G;
        const Real *ai = a + k.i * H, *af = a + k.f * H, *ag = a + k.g * H, *ao = a + k.o * H;
        Real* da = dA + n * G;
        Real *di = da + k.i * H, *df = da + k.f * H, *dg = da + k.g * H, *d_o = da + k.o * H;
        const Real *cp = c_prev + n * H, *cn = c + n * H, *dhn = dhc + n * H;
        Real* dcn = dc + n * H;
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
      wh.d_times(N, 0, G, dA, G, Real(0), dh, P);
    }
  }
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

}  // namespace fastnn::cpu
