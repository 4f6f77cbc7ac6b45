#include "cpu/gru.h"

#include <vector>

#include "core/parallel.h"

namespace fastnn::cpu {

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
  input_projection(L, T * N, D, G, x, Wx, bx, gates);
  std::vector<Real> hg(book ? 0 : static_cast<size_t>(N * G));  // Torch: h @ W_hh^T + b_hh
  for (int64_t t = 0; t < T; ++t) {
    Real* A = gates + t * N * G;
    Real* h = hs + t * N * H;
    Real* ax = aux + t * N * H;
    const Real* h_prev = t ? h - N * H : h0;
    if (book) {
      // z and r first (blocks 0, 1), then n, which needs r * h_{t-1}.
      if (h_prev) matmul_w(L, N, H, G, 0, 2 * H, h_prev, H, Wh, Real(1), A, G);
#pragma omp parallel for if (worth_parallel(N * H))
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < H; ++j) {
          Real* a = A + n * G;
          a[k.z * H + j] = sigmoid(a[k.z * H + j]);
          a[k.r * H + j] = sigmoid(a[k.r * H + j]);
          ax[n * H + j] = h_prev ? a[k.r * H + j] * h_prev[n * H + j] : Real(0);
        }
      if (h_prev) matmul_w(L, N, H, G, k.n * H, H, ax, H, Wh, Real(1), A + k.n * H, G);
#pragma omp parallel for if (worth_parallel(N * H))
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < H; ++j) {
          Real* a = A + n * G;
          const Real z = a[k.z * H + j], nn = std::tanh(a[k.n * H + j]);
          const Real hp = h_prev ? h_prev[n * H + j] : Real(0);
          a[k.n * H + j] = nn;
          h[n * H + j] = (Real(1) - z) * hp + z * nn;
        }
    } else {
      for (int64_t n = 0; n < N; ++n) {
        Real* g = hg.data() + n * G;
        if (bh)
          std::copy(bh, bh + G, g);
        else
          std::fill(g, g + G, Real(0));
      }
      if (h_prev) matmul_w(L, N, H, G, 0, G, h_prev, H, Wh, Real(1), hg.data(), G);
#pragma omp parallel for if (worth_parallel(N * H))
      for (int64_t n = 0; n < N; ++n) {
        Real* a = A + n * G;
        const Real* g = hg.data() + n * G;
        for (int64_t j = 0; j < H; ++j) {
          const Real r = sigmoid(a[k.r * H + j] + g[k.r * H + j]);
          const Real z = sigmoid(a[k.z * H + j] + g[k.z * H + j]);
          const Real hn = g[k.n * H + j];
          const Real nn = std::tanh(a[k.n * H + j] + r * hn);
          const Real hp = h_prev ? h_prev[n * H + j] : Real(0);
          a[k.r * H + j] = r, a[k.z * H + j] = z, a[k.n * H + j] = nn;
          ax[n * H + j] = hn;
          h[n * H + j] = (Real(1) - z) * nn + z * hp;
        }
      }
    }
  }
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
  std::vector<Real> dG(static_cast<size_t>(T * N * G));
  std::vector<Real> dGh(book ? 0 : static_cast<size_t>(T * N * G));
  std::vector<Real> drh(book ? static_cast<size_t>(N * H) : 0);  // Book: d(r * h_{t-1})
  for (int64_t t = T - 1; t >= 0; --t) {
    const Real* A = gates + t * N * G;
    const Real* ax = aux + t * N * H;
    const Real* h_prev = t ? hs + (t - 1) * N * H : h0;
    const Real* d_out = dhs ? dhs + t * N * H : nullptr;
    Real* dA = dG.data() + t * N * G;
    if (book) {
#pragma omp parallel for if (worth_parallel(N * H))
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < H; ++j) {
          const int64_t e = n * H + j;
          const Real* a = A + n * G;
          const Real z = a[k.z * H + j], nn = a[k.n * H + j];
          const Real hp = h_prev ? h_prev[e] : Real(0);
          const Real d = dh[e] + (d_out ? d_out[e] : Real(0));
          dA[n * G + k.n * H + j] = d * z * (Real(1) - nn * nn);
          dA[n * G + k.z * H + j] = d * (nn - hp) * z * (Real(1) - z);
          dh[e] = d * (Real(1) - z);
        }
      matmul_wt(L, N, H, G, k.n * H, H, dA + k.n * H, G, Wh, Real(0), drh.data(), H);
#pragma omp parallel for if (worth_parallel(N * H))
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < H; ++j) {
          const int64_t e = n * H + j;
          const Real r = A[n * G + k.r * H + j];
          const Real hp = h_prev ? h_prev[e] : Real(0);
          dA[n * G + k.r * H + j] = drh[e] * hp * r * (Real(1) - r);
          dh[e] += r * drh[e];
        }
      matmul_wt(L, N, H, G, 0, 2 * H, dA, G, Wh, Real(1), dh, H);
    } else {
      Real* dAh = dGh.data() + t * N * G;
#pragma omp parallel for if (worth_parallel(N * H))
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < H; ++j) {
          const int64_t e = n * H + j;
          const Real* a = A + n * G;
          const Real r = a[k.r * H + j], z = a[k.z * H + j], nn = a[k.n * H + j];
          const Real hp = h_prev ? h_prev[e] : Real(0);
          const Real d = dh[e] + (d_out ? d_out[e] : Real(0));
          const Real dn = d * (Real(1) - z) * (Real(1) - nn * nn);
          const Real dr = dn * ax[e] * r * (Real(1) - r);
          const Real dz = d * (hp - nn) * z * (Real(1) - z);
          Real* da = dA + n * G;
          Real* dah = dAh + n * G;
          da[k.r * H + j] = dah[k.r * H + j] = dr;
          da[k.z * H + j] = dah[k.z * H + j] = dz;
          da[k.n * H + j] = dn;
          dah[k.n * H + j] = dn * r;
          dh[e] = d * z;
        }
      matmul_wt(L, N, H, G, 0, G, dAh, G, Wh, Real(1), dh, H);
    }
  }
  if (book) {
    grad_w_hidden(L, T, N, H, G, 0, 2 * H, h0, hs, dG.data(), G, dWh);
    grad_w(L, T * N, H, G, k.n * H, H, aux, H, dG.data() + k.n * H, G, Real(0), dWh);
  } else {
    grad_w_hidden(L, T, N, H, G, 0, G, h0, hs, dGh.data(), G, dWh);
    column_sum(T * N, G, dGh.data(), G, dbh);
  }
  grad_w(L, T * N, D, G, 0, G, x, D, dG.data(), G, Real(0), dWx);
  column_sum(T * N, G, dG.data(), G, dbx);
  matmul_wt(L, T * N, D, G, 0, G, dG.data(), G, Wx, Real(0), dx, D);
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

}  // namespace fastnn::cpu
