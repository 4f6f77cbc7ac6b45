// extern "C" entry points (double) over the recurrent .cu host code, for check.py (ctypes).
#include "cuda/ops.h"

namespace fastnn::cuda { long g_launches = 0, g_gemms = 0; }
using namespace fastnn::cuda;
using D = double;
static Layout lay(int torch) { return torch ? Layout::Torch : Layout::Book; }

extern "C" {
long m_launches() { return g_launches; }
long m_gemms() { return g_gemms; }
void m_rnn_forward(int torch, int relu, const D* x, const D* h0, const D* Wx, const D* Wh,
                   const D* b, int64_t T, int64_t N, int64_t Dd, int64_t H, D* hs) {
  rnn_forward<D>(lay(torch), relu, x, h0, Wx, Wh, b, T, N, Dd, H, hs, nullptr);
}
void m_rnn_backward(int torch, int relu, const D* x, const D* h0, const D* Wx, const D* Wh,
                    const D* hs, const D* dhs, const D* dhn, int64_t T, int64_t N, int64_t Dd,
                    int64_t H, D* dx, D* dh0, D* dWx, D* dWh, D* db) {
  rnn_backward<D>(lay(torch), relu, x, h0, Wx, Wh, hs, dhs, dhn, T, N, Dd, H, dx, dh0, dWx, dWh,
                  db, nullptr);
}
void m_lstm_forward(int torch, const D* x, const D* h0, const D* c0, const D* Wx, const D* Wh,
                    const D* b, const D* Whr, int64_t T, int64_t N, int64_t Dd, int64_t H,
                    int64_t P, D* hs, D* cs, D* gates, D* hfull) {
  lstm_forward<D>(lay(torch), x, h0, c0, Wx, Wh, b, Whr, T, N, Dd, H, P, hs, cs, gates, hfull,
                  nullptr);
}
void m_lstm_backward(int torch, const D* x, const D* h0, const D* c0, const D* Wx, const D* Wh,
                     const D* Whr, const D* hs, const D* cs, const D* gates, const D* hfull,
                     const D* dhs, const D* dhn, const D* dcn, int64_t T, int64_t N, int64_t Dd,
                     int64_t H, int64_t P, D* dx, D* dh0, D* dc0, D* dWx, D* dWh, D* db,
                     D* dWhr) {
  lstm_backward<D>(lay(torch), x, h0, c0, Wx, Wh, Whr, hs, cs, gates, hfull, dhs, dhn, dcn, T, N,
                   Dd, H, P, dx, dh0, dc0, dWx, dWh, db, dWhr, nullptr);
}
void m_gru_forward(int torch, const D* x, const D* h0, const D* Wx, const D* Wh, const D* bx,
                   const D* bh, int64_t T, int64_t N, int64_t Dd, int64_t H, D* hs, D* gates,
                   D* aux) {
  gru_forward<D>(lay(torch), x, h0, Wx, Wh, bx, bh, T, N, Dd, H, hs, gates, aux, nullptr);
}
void m_gru_backward(int torch, const D* x, const D* h0, const D* Wx, const D* Wh, const D* hs,
                    const D* gates, const D* aux, const D* dhs, const D* dhn, int64_t T,
                    int64_t N, int64_t Dd, int64_t H, D* dx, D* dh0, D* dWx, D* dWh, D* dbx,
                    D* dbh) {
  gru_backward<D>(lay(torch), x, h0, Wx, Wh, hs, gates, aux, dhs, dhn, T, N, Dd, H, dx, dh0, dWx,
                  dWh, dbx, dbh, nullptr);
}
}
