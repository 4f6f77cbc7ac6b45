#include "cpu/gru.h"

#include <vector>

#include "core/buffers.h"
#include "core/parallel.h"
#include "cpu/recurrent.h"

namespace fastnn::cpu {
FASTNN_ISA_NAMESPACE {

namespace {
// Block index of the gates inside G: Book z, r, n; Torch r, z, n.
struct GruGates {
  int64_t r, z, n;
  static GruGates of(Layout L) {
    return L == Layout::Book ? GruGates{1, 0, 2} : GruGates{0, 1, 2};
  }
};
}  // namespace

template <typename Real>
void gru_forward(Layout L, const Real* x, const Real* h0, const Real* Wx, const Real* Wh,
                 const Real* bx, const Real* bh, int64_t T, int64_t N, int64_t D, int64_t H,
                 Real* hs, Real* gates, Real* aux) {
  const int64_t G = 3 * H;
  const GruGates k = GruGates::of(L);
  const bool book = L == Layout::Book;
  const GateWeight<Real> wx(L, Wx, D, G), wh(L, Wh, H, G, step_gemm_is_small(N, G, H), false);
  input_projection(T * N, D, G, x, wx, bx, gates);
  std::vector<Real> hg(book ? 0 : static_cast<size_t>(N * G));  // Torch: h @ W_hh^T + b_hh
  std::vector<Real> zeros(h0 ? 0 : static_cast<size_t>(N * H));
  time_loop(N, G, H, [&](int64_t n0, int64_t nb) {
    Real* hg_s = book ? nullptr : hg.data() + n0 * G;  // the slice's rows
    for (int64_t t = 0; t < T; ++t) {
      const int64_t r = t * N + n0;  // the slice's first row at step t
      Real* A = gates + r * G;
      Real* h = hs + r * H;
      Real* ax = aux + r * H;
      const bool has_prev = t || h0;  // else h_{t-1} = 0 and its GEMMs are skipped
      const Real* h_prev = t ? h - N * H : (h0 ? h0 : zeros.data()) + n0 * H;
      if (book) {
        // z and r first (blocks 0, 1), then n, which needs r * h_{t-1}.
        if (has_prev) wh.x_times(nb, 0, 2 * H, h_prev, H, Real(1), A, G);
#pragma omp parallel for if (worth_parallel(nb * H))
        for (int64_t n = 0; n < nb; ++n) {
          Real *az = A + n * G + k.z * H, *ar = A + n * G + k.r * H, *rh = ax + n * H;
          const Real* hp = h_prev + n * H;
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            az[j] = sigmoid(az[j]);
            ar[j] = sigmoid(ar[j]);
            rh[j] = ar[j] * hp[j];
          }
        }
        if (has_prev) wh.x_times(nb, k.n * H, H, ax, H, Real(1), A + k.n * H, G);
#pragma omp parallel for if (worth_parallel(nb * H))
        for (int64_t n = 0; n < nb; ++n) {
          Real *az = A + n * G + k.z * H, *an = A + n * G + k.n * H, *hn = h + n * H;
          const Real* hp = h_prev + n * H;
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            const Real z = az[j], nn = tanh_act(an[j]);
            an[j] = nn;
            hn[j] = (Real(1) - z) * hp[j] + z * nn;
          }
        }
      } else {
        broadcast_rows(nb, G, bh, hg_s);
        if (has_prev) wh.x_times(nb, 0, G, h_prev, H, Real(1), hg_s, G);
#pragma omp parallel for if (worth_parallel(nb * H))
        for (int64_t n = 0; n < nb; ++n) {
          Real *ar = A + n * G + k.r * H, *az = A + n * G + k.z * H, *an = A + n * G + k.n * H;
          const Real* g = hg_s + n * G;
          const Real *gr = g + k.r * H, *gz = g + k.z * H, *gn = g + k.n * H;
          const Real* hp = h_prev + n * H;
          Real *hn = ax + n * H, *hout = h + n * H;
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            const Real r = sigmoid(ar[j] + gr[j]);
            const Real z = sigmoid(az[j] + gz[j]);
            const Real nn = tanh_act(an[j] + r * gn[j]);
            ar[j] = r, az[j] = z, an[j] = nn;
            hn[j] = gn[j];
            hout[j] = (Real(1) - z) * nn + z * hp[j];
          }
        }
      }
    }
  });
}

template <typename Real>
void gru_backward(Layout L, const Real* x, const Real* h0, const Real* Wx, const Real* Wh,
                  const Real* hs, const Real* gates, const Real* aux, const Real* dhs,
                  const Real* dhn, int64_t T, int64_t N, int64_t D, int64_t H, Real* dx,
                  Real* dh0, Real* dWx, Real* dWh, Real* dbx, Real* dbh) {
  const int64_t G = 3 * H;
  const GruGates k = GruGates::of(L);
  const bool book = L == Layout::Book;
  Real* dh = dh0;  // the running gradient on h_t while walking back in time
  if (dhn) std::copy(dhn, dhn + N * H, dh); else std::fill(dh, dh + N * H, Real(0));
  if (T == 0) {
    std::fill(dWx, dWx + D * G, Real(0));
    std::fill(dWh, dWh + H * G, Real(0));
    std::fill(dbx, dbx + G, Real(0));
    if (dbh) std::fill(dbh, dbh + G, Real(0));
    return;
  }
  // dG: gradients of the input projection's pre-activations. Torch also keeps dGh, those of
  // h @ W_hh^T + b_hh, which differ from dG in the n block (scaled by r).
  buffers::Scratch<Real> dG(static_cast<size_t>(T * N * G));
  const GateWeight<Real> wx(L, Wx, D, G), wh(L, Wh, H, G, step_gemm_is_small(N, G, H), true);
  buffers::Scratch<Real> dGh(book ? 0 : static_cast<size_t>(T * N * G));
  std::vector<Real> drh(book ? static_cast<size_t>(N * H) : 0);  // Book: d(r * h_{t-1})
  std::vector<Real> zeros(h0 ? 0 : static_cast<size_t>(N * H));
  time_loop(N, G, H, [&](int64_t n0, int64_t nb) {
    Real* dh_s = dh + n0 * H;  // the slice's rows
    Real* drh_s = book ? drh.data() + n0 * H : nullptr;
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t r = t * N + n0;
      const Real* A = gates + r * G;
      const Real* ax = aux + r * H;
      const Real* h_prev = t ? hs + (r - N) * H : (h0 ? h0 : zeros.data()) + n0 * H;
      Real* dA = dG.data() + r * G;
      if (dhs) {
        const Real* d_out = dhs + r * H;
#pragma omp simd
        for (int64_t e = 0; e < nb * H; ++e) dh_s[e] += d_out[e];
      }
      if (book) {
#pragma omp parallel for if (worth_parallel(nb * H))
        for (int64_t n = 0; n < nb; ++n) {
          const Real *az = A + n * G + k.z * H, *an = A + n * G + k.n * H, *hp = h_prev + n * H;
          Real *dz = dA + n * G + k.z * H, *dn = dA + n * G + k.n * H, *d = dh_s + n * H;
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            const Real z = az[j], nn = an[j];
            dn[j] = d[j] * z * (Real(1) - nn * nn);
            dz[j] = d[j] * (nn - hp[j]) * z * (Real(1) - z);
            d[j] *= Real(1) - z;
          }
        }
        wh.d_times(nb, k.n * H, H, dA + k.n * H, G, Real(0), drh_s, H);
#pragma omp parallel for if (worth_parallel(nb * H))
        for (int64_t n = 0; n < nb; ++n) {
          const Real *ar = A + n * G + k.r * H, *hp = h_prev + n * H, *drn = drh_s + n * H;
          Real *dr = dA + n * G + k.r * H, *d = dh_s + n * H;
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            const Real r = ar[j];
            dr[j] = drn[j] * hp[j] * r * (Real(1) - r);
            d[j] += r * drn[j];
          }
        }
        wh.d_times(nb, 0, 2 * H, dA, G, Real(1), dh_s, H);
      } else {
        Real* dAh = dGh.data() + r * G;
#pragma omp parallel for if (worth_parallel(nb * H))
        for (int64_t n = 0; n < nb; ++n) {
          const Real *ar = A + n * G + k.r * H, *az = A + n * G + k.z * H,
                     *an = A + n * G + k.n * H, *hp = h_prev + n * H, *hn = ax + n * H;
          Real *dr = dA + n * G + k.r * H, *dz = dA + n * G + k.z * H, *dn = dA + n * G + k.n * H;
          Real *dhr = dAh + n * G + k.r * H, *dhz = dAh + n * G + k.z * H,
               *dhn = dAh + n * G + k.n * H, *d = dh_s + n * H;
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) {
            const Real r = ar[j], z = az[j], nn = an[j];
            const Real dn_j = d[j] * (Real(1) - z) * (Real(1) - nn * nn);
            const Real dr_j = dn_j * hn[j] * r * (Real(1) - r);
            const Real dz_j = d[j] * (hp[j] - nn) * z * (Real(1) - z);
            dr[j] = dhr[j] = dr_j;
            dz[j] = dhz[j] = dz_j;
            dn[j] = dn_j;
            dhn[j] = dn_j * r;
            d[j] *= z;
          }
        }
        wh.d_times(nb, 0, G, dAh, G, Real(1), dh_s, H);
      }
    }
  });
  if (book) {
    grad_w_hidden(L, T, N, H, G, 0, 2 * H, h0, hs, dG.data(), G, dWh);
    grad_w(L, T * N, H, G, k.n * H, H, aux, H, dG.data() + k.n * H, G, Real(0), dWh);
  } else {
    grad_w_hidden(L, T, N, H, G, 0, G, h0, hs, dGh.data(), G, dWh);
    column_sum(T * N, G, dGh.data(), G, dbh);
  }
  grad_w(L, T * N, D, G, 0, G, x, D, dG.data(), G, Real(0), dWx);
  column_sum(T * N, G, dG.data(), G, dbx);
  wx.d_times(T * N, 0, G, dG.data(), G, Real(0), dx, D);
}

#define FASTNN_INSTANTIATE(Real)                                                               \
  template void gru_forward<Real>(Layout, const Real*, const Real*, const Real*, const Real*,  \
                                  const Real*, const Real*, int64_t, int64_t, int64_t, int64_t, \
                                  Real*, Real*, Real*);                                         \
  template void gru_backward<Real>(Layout, const Real*, const Real*, const Real*, const Real*, \
                                   const Real*, const Real*, const Real*, const Real*,          \
                                   const Real*, int64_t, int64_t, int64_t, int64_t, Real*,      \
                                   Real*, Real*, Real*, Real*, Real*);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // FASTNN_ISA_NAMESPACE
}  // namespace fastnn::cpu
