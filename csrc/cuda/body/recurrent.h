// Per-element gate bodies of the recurrent kernels (csrc/cuda/rnn.cu, lstm.cu, gru.cu): the
// formulas of csrc/cpu/rnn.cpp, lstm.cpp and gru.cpp, one element (n, j) of a time step per
// call, idx = n * H + j over the step's (N, H) states. A step's gate block A = G_t (N, gH) holds
// the pre-activations (input projection + bias + h_{t-1} @ Wh, summed by cuBLAS) on the way in
// and the activated gates on the way out; dA holds their gradients. A null h_prev or c_prev
// stands for zeros (the first step without h0 / c0).
#pragma once
#include "cuda/body/common.h"

namespace fastnn::body {

// Layout (core/shapes.h, shared with the CPU kernels): Book, the book's Wx (D, gH), Wh (H, gH);
// Torch, torch.nn's weight_ih (gH, D), weight_hh (gH, H). It also picks the gate orders and
// GRU's equations.

// Block index (0..3) of the LSTM gates i, f, g, o inside G: Book f, g, i, o; Torch i, f, g, o.
struct LstmGates {
  int64_t i, f, g, o;
  FASTNN_HD static LstmGates of(Layout L) {
    return L == Layout::Book ? LstmGates{2, 0, 1, 3} : LstmGates{0, 1, 2, 3};
  }
};

// Block index of the GRU gates: Book z, r, n; Torch r, z, n.
struct GruGates {
  int64_t r, z, n;
  FASTNN_HD static GruGates of(Layout L) {
    return L == Layout::Book ? GruGates{1, 0, 2} : GruGates{0, 1, 2};
  }
};

template <typename T>
FASTNN_HD T sigmoid_of(T v) {
  return T(1) / (T(1) + hd_exp(-v));
}

// The gradient reaching h_t from outside the recurrence, element idx of (T*N, P): dhs_t (when
// given) plus, in the last step (idx >= last = (T-1)*N*P), dhn. The backward passes accumulate
// each step's dh_{t-1} into these seeds.
template <typename T>
FASTNN_HD T dh_seed_element(const T* dhs, const T* dhn, int64_t last, int64_t idx) {
  T d = dhs ? dhs[idx] : T(0);
  if (dhn && idx >= last) d += dhn[idx - last];
  return d;
}

// ---- Elman RNN (G = H): h = act(pre-activation), in place.

template <typename T>
FASTNN_HD void rnn_forward_element(T* h, bool relu, int64_t idx) {
  const T v = h[idx];
  h[idx] = relu ? (v < T(0) ? T(0) : v) : hd_tanh(v);  // NaN passes the relu
}

// dg = d(pre-activation) from h = act(.) and the total gradient dh on h.
template <typename T>
FASTNN_HD void rnn_backward_element(const T* h, const T* dh, T* dg, bool relu, int64_t idx) {
  const T v = h[idx];
  dg[idx] = relu ? (v > T(0) ? dh[idx] : T(0)) : dh[idx] * (T(1) - v * v);
}

// ---- LSTM (G = 4H): c = f * c_prev + i * g, h_cell = o * tanh(c).

template <typename T>
FASTNN_HD void lstm_forward_element(LstmGates k, T* A, const T* c_prev, T* c, T* h_cell,
                                    int64_t H, int64_t idx) {
  const int64_t n = idx / H, j = idx % H;
  T* a = A + n * 4 * H + j;
  const T i = sigmoid_of(a[k.i * H]), f = sigmoid_of(a[k.f * H]), g = hd_tanh(a[k.g * H]),
          o = sigmoid_of(a[k.o * H]);
  const T cp = c_prev ? c_prev[idx] : T(0);
  const T cj = f * cp + i * g;
  a[k.i * H] = i;
  a[k.f * H] = f;
  a[k.g * H] = g;
  a[k.o * H] = o;
  c[idx] = cj;
  h_cell[idx] = o * hd_tanh(cj);
}

// From the activated gates A, c and c_prev, the gradient dh on h_cell and the running dc
// (updated in place to the gradient on c_prev): the gate gradients dA.
template <typename T>
FASTNN_HD void lstm_backward_element(LstmGates k, const T* A, const T* c, const T* c_prev,
                                     const T* dh, T* dc, T* dA, int64_t H, int64_t idx) {
  const int64_t n = idx / H, j = idx % H;
  const T* a = A + n * 4 * H + j;
  T* da = dA + n * 4 * H + j;
  const T i = a[k.i * H], f = a[k.f * H], g = a[k.g * H], o = a[k.o * H];
  const T cp = c_prev ? c_prev[idx] : T(0);
  const T tc = hd_tanh(c[idx]);
  const T d = dh[idx];
  const T dcell = dc[idx] + d * o * (T(1) - tc * tc);
  da[k.o * H] = d * tc * o * (T(1) - o);
  da[k.i * H] = dcell * g * i * (T(1) - i);
  da[k.g * H] = dcell * i * (T(1) - g * g);
  da[k.f * H] = dcell * cp * f * (T(1) - f);
  dc[idx] = dcell * f;
}

// ---- GRU, the book's equations (blocks z, r, n): two bodies per step around the GEMM of
// r * h_prev with Wh's n block.

// z, r = sigmoid in place; rh = r * h_prev (aux, the n block's GEMM input).
template <typename T>
FASTNN_HD void gru_book_forward_zr_element(GruGates k, T* A, const T* h_prev, T* rh, int64_t H,
                                           int64_t idx) {
  const int64_t n = idx / H, j = idx % H;
  T* a = A + n * 3 * H + j;
  const T hp = h_prev ? h_prev[idx] : T(0);
  const T z = sigmoid_of(a[k.z * H]), r = sigmoid_of(a[k.r * H]);
  a[k.z * H] = z;
  a[k.r * H] = r;
  rh[idx] = r * hp;
}

// n = tanh in place; h = (1 - z) * h_prev + z * n.
template <typename T>
FASTNN_HD void gru_book_forward_n_element(GruGates k, T* A, const T* h_prev, T* h, int64_t H,
                                          int64_t idx) {
  const int64_t n = idx / H, j = idx % H;
  T* a = A + n * 3 * H + j;
  const T hp = h_prev ? h_prev[idx] : T(0);
  const T z = a[k.z * H], nn = hd_tanh(a[k.n * H]);
  a[k.n * H] = nn;
  h[idx] = (T(1) - z) * hp + z * nn;
}

// From the total gradient dh on h: the z and n blocks of dA.
template <typename T>
FASTNN_HD void gru_book_backward_zn_element(GruGates k, const T* A, const T* h_prev, const T* dh,
                                            T* dA, int64_t H, int64_t idx) {
  const int64_t n = idx / H, j = idx % H;
  const T* a = A + n * 3 * H + j;
  T* da = dA + n * 3 * H + j;
  const T hp = h_prev ? h_prev[idx] : T(0);
  const T z = a[k.z * H], nn = a[k.n * H], d = dh[idx];
  da[k.n * H] = d * z * (T(1) - nn * nn);
  da[k.z * H] = d * (nn - hp) * z * (T(1) - z);
}

// From drh = d(r * h_prev) (the n block's gradient through Wh): the r block of dA, and
// dh_prev += the direct gradient on h_prev, dh * (1 - z) + r * drh.
template <typename T>
FASTNN_HD void gru_book_backward_r_element(GruGates k, const T* A, const T* h_prev, const T* dh,
                                           const T* drh, T* dA, T* dh_prev, int64_t H,
                                           int64_t idx) {
  const int64_t n = idx / H, j = idx % H;
  const T* a = A + n * 3 * H + j;
  const T hp = h_prev ? h_prev[idx] : T(0);
  const T r = a[k.r * H], z = a[k.z * H];
  dA[n * 3 * H + k.r * H + j] = drh[idx] * hp * r * (T(1) - r);
  dh_prev[idx] += dh[idx] * (T(1) - z) + r * drh[idx];
}

// ---- GRU, PyTorch's equations (blocks r, z, n): hg = h_prev @ W_hh^T (null: zeros) and b_hh
// (null: none) make the hidden part; aux = its n block, W_hn h_prev + b_hn.

template <typename T>
FASTNN_HD T gru_hidden_part(const T* hg, const T* bh, int64_t H, int64_t n, int64_t block,
                            int64_t j) {
  T v = hg ? hg[n * 3 * H + block * H + j] : T(0);
  if (bh) v += bh[block * H + j];
  return v;
}

template <typename T>
FASTNN_HD void gru_torch_forward_element(GruGates k, T* A, const T* hg, const T* bh,
                                         const T* h_prev, T* aux, T* h, int64_t H, int64_t idx) {
  const int64_t n = idx / H, j = idx % H;
  T* a = A + n * 3 * H + j;
  const T gr = gru_hidden_part(hg, bh, H, n, k.r, j), gz = gru_hidden_part(hg, bh, H, n, k.z, j),
          gn = gru_hidden_part(hg, bh, H, n, k.n, j);
  const T hp = h_prev ? h_prev[idx] : T(0);
  const T r = sigmoid_of(a[k.r * H] + gr);
  const T z = sigmoid_of(a[k.z * H] + gz);
  const T nn = hd_tanh(a[k.n * H] + r * gn);
  a[k.r * H] = r;
  a[k.z * H] = z;
  a[k.n * H] = nn;
  aux[idx] = gn;
  h[idx] = (T(1) - z) * nn + z * hp;
}

// dA: gradients of the input projection's pre-activations; dAh: those of the hidden part
// (equal but for the n block, scaled by r); dh_prev += dh * z.
template <typename T>
FASTNN_HD void gru_torch_backward_element(GruGates k, const T* A, const T* aux, const T* h_prev,
                                          const T* dh, T* dA, T* dAh, T* dh_prev, int64_t H,
                                          int64_t idx) {
  const int64_t n = idx / H, j = idx % H;
  const T* a = A + n * 3 * H + j;
  T* da = dA + n * 3 * H + j;
  T* dah = dAh + n * 3 * H + j;
  const T hp = h_prev ? h_prev[idx] : T(0);
  const T r = a[k.r * H], z = a[k.z * H], nn = a[k.n * H], d = dh[idx];
  const T dn = d * (T(1) - z) * (T(1) - nn * nn);
  const T dr = dn * aux[idx] * r * (T(1) - r);
  const T dz = d * (hp - nn) * z * (T(1) - z);
  da[k.r * H] = dah[k.r * H] = dr;
  da[k.z * H] = dah[k.z * H] = dz;
  da[k.n * H] = dn;
  dah[k.n * H] = dn * r;
  dh_prev[idx] += d * z;
}

}  // namespace fastnn::body
