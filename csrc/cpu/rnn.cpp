#include "cpu/rnn.h"

#include <vector>

#include "core/parallel.h"
#include "cpu/recurrent.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

template <typename Real>
void rnn_forward(Layout L, bool relu, const Real* x, const Real* h0, const Real* Wx,
                 const Real* Wh, const Real* b, int64_t T, int64_t N, int64_t D, int64_t H,
                 Real* hs) {
  const GateWeight<Real> wx(L, Wx, D, H), wh(L, Wh, H, H, step_gemm_is_small(N, H, H), false);
  input_projection(T * N, D, H, x, wx, b, hs);
  time_loop(N, H, H, [&](int64_t n0, int64_t nb) {
    const int64_t n_el = nb * H;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t r = t * N + n0;  // the slice's first row at step t
      Real* h = hs + r * H;
      const Real* h_prev = t ? h - N * H : (h0 ? h0 + n0 * H : nullptr);
      if (h_prev) wh.x_times(nb, 0, H, h_prev, H, Real(1), h, H);
      if (relu) {
#pragma omp parallel for simd if (parallel: worth_parallel(n_el))
        for (int64_t i = 0; i < n_el; ++i) h[i] = h[i] < Real(0) ? Real(0) : h[i];
      } else {
#pragma omp parallel for simd if (parallel: worth_parallel(n_el))
        for (int64_t i = 0; i < n_el; ++i) h[i] = tanh_act(h[i]);
      }
    }
  });
}

template <typename Real>
void rnn_backward(Layout L, bool relu, const Real* x, const Real* h0, const Real* Wx,
                  const Real* Wh, const Real* hs, const Real* dhs, const Real* dhn, int64_t T,
                  int64_t N, int64_t D, int64_t H, Real* dx, Real* dh0, Real* dWx, Real* dWh,
                  Real* db) {
  // dh0 doubles as the running gradient on h_t while walking back in time.
  Real* dh = dh0;
  if (dhn)
    std::copy(dhn, dhn + N * H, dh);
  else
    std::fill(dh, dh + N * H, Real(0));
  if (T == 0) {
    std::fill(dWx, dWx + D * H, Real(0));
    std::fill(dWh, dWh + H * H, Real(0));
    std::fill(db, db + H, Real(0));
    return;
  }
  std::vector<Real> dG(static_cast<size_t>(T * N * H));  // d(pre-activation) of every step
  const GateWeight<Real> wx(L, Wx, D, H), wh(L, Wh, H, H, step_gemm_is_small(N, H, H), true);
  time_loop(N, H, H, [&](int64_t n0, int64_t nb) {
    const int64_t n_el = nb * H;
    Real* dh_s = dh + n0 * H;  // the slice's rows
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t r = t * N + n0;
      const Real* h = hs + r * H;
      Real* dg = dG.data() + r * H;
      if (dhs) {
        const Real* dh_out = dhs + r * H;
#pragma omp parallel for simd if (parallel: worth_parallel(n_el))
        for (int64_t i = 0; i < n_el; ++i) dh_s[i] += dh_out[i];
      }
      if (relu) {
#pragma omp parallel for simd if (parallel: worth_parallel(n_el))
        for (int64_t i = 0; i < n_el; ++i) dg[i] = h[i] > Real(0) ? dh_s[i] : Real(0);
      } else {
#pragma omp parallel for simd if (parallel: worth_parallel(n_el))
        for (int64_t i = 0; i < n_el; ++i) dg[i] = dh_s[i] * (Real(1) - h[i] * h[i]);
      }
      wh.d_times(nb, 0, H, dg, H, Real(0), dh_s, H);
    }
  });
  grad_w_hidden(L, T, N, H, H, 0, H, h0, hs, dG.data(), H, dWh);
  grad_w(L, T * N, D, H, 0, H, x, D, dG.data(), H, Real(0), dWx);
  column_sum(T * N, H, dG.data(), H, db);
  wx.d_times(T * N, 0, H, dG.data(), H, Real(0), dx, D);
}

#define FASTNN_INSTANTIATE(Real)                                                              \
  template void rnn_forward<Real>(Layout, bool, const Real*, const Real*, const Real*,        \
                                  const Real*, const Real*, int64_t, int64_t, int64_t, int64_t, \
                                  Real*);                                                      \
  template void rnn_backward<Real>(Layout, bool, const Real*, const Real*, const Real*,       \
                                   const Real*, const Real*, const Real*, const Real*, int64_t, \
                                   int64_t, int64_t, int64_t, Real*, Real*, Real*, Real*, Real*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
