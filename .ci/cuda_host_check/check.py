"""The host code of csrc/cuda/{rnn,lstm,gru}.cu (built by run.sh against the stand-in
launch.cuh) against the CPU kernels of fastnn.ops, float64, both layouts, with and without
states, LSTM projections (P = 2 and P = 0), D = 0, T = 0, N = 0. Empty arrays are passed as
null pointers, as CuPy does. Usage: python check.py LIB"""
import ctypes
import itertools
import sys

import numpy as np

from fastnn import ops

lib = ctypes.CDLL(sys.argv[1])
i64 = ctypes.c_int64
rng = np.random.default_rng(1)


def ptr(a):
    return None if a is None else ctypes.c_void_p(a.ctypes.data if a.size else 0)


def out(*shape):
    return np.full(shape, np.nan)


def weight(torch_layout, K, G):
    return rng.standard_normal((G, K) if torch_layout else (K, G)) * 0.5


def maybe(flag, *shape):
    return rng.standard_normal(shape) if flag else None


def close(got, want, what):
    assert len(got) == len(want), what
    for k, (g, w) in enumerate(zip(got, want)):
        if w is None:
            assert g is None, f"{what}: result {k}"
        else:
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10, err_msg=f"{what}: result {k}")


calls = 0
for (T, N, D, H), tl, st in itertools.product(
        [(5, 3, 4, 6), (1, 1, 1, 1), (3, 2, 0, 3), (0, 2, 3, 4), (3, 0, 2, 4), (4, 7, 5, 9)],
        [False, True], [False, True]):
    what = f"T={T} N={N} D={D} H={H} torch={tl} states={st}"
    x = rng.standard_normal((T, N, D))
    dhs_given = T % 2 == 1 or not st  # also a final-state gradient alone
    for relu in (False, True):
        Wx, Wh, b, h0 = weight(tl, D, H), weight(tl, H, H), maybe(st, H), maybe(st, N, H)
        want = ops.rnn_forward(x, h0, Wx, Wh, b, relu, tl)
        hs = out(T, N, H)
        lib.m_rnn_forward(tl, relu, ptr(x), ptr(h0), ptr(Wx), ptr(Wh), ptr(b), i64(T), i64(N),
                          i64(D), i64(H), ptr(hs))
        close([hs], [want], f"rnn_forward {what}")
        dhs, dhn = maybe(dhs_given, T, N, H), maybe(st, N, H)
        want = ops.rnn_backward(x, h0, Wx, Wh, want, dhs, dhn, relu, tl)
        got = [out(T, N, D), out(N, H), out(*Wx.shape), out(*Wh.shape), out(H)]
        lib.m_rnn_backward(tl, relu, ptr(x), ptr(h0), ptr(Wx), ptr(Wh), ptr(hs), ptr(dhs),
                           ptr(dhn), i64(T), i64(N), i64(D), i64(H), *map(ptr, got))
        close(got, want, f"rnn_backward {what}")
        calls += 2
    for P in ([H, 2, 0] if tl else [H]):
        proj = P != H
        Wx, Wh, b = weight(tl, D, 4 * H), weight(tl, P, 4 * H), rng.standard_normal(4 * H)
        Whr = rng.standard_normal((P, H)) * 0.5 if proj else None
        h0, c0 = maybe(st, N, P), maybe(st, N, H)
        want = ops.lstm_forward(x, h0, c0, Wx, Wh, b, Whr, tl)
        got = [out(T, N, P), out(T, N, H), out(T, N, 4 * H), out(T, N, H) if proj else None]
        # A present Whr without elements must not read as absent (fastnn/ops/cuda.py passes a real
        # allocation); 8 is never dereferenced, any access would crash.
        whr = ptr(Whr) if Whr is None or Whr.size else ctypes.c_void_p(8)
        lib.m_lstm_forward(tl, ptr(x), ptr(h0), ptr(c0), ptr(Wx), ptr(Wh), ptr(b), whr, i64(T),
                           i64(N), i64(D), i64(H), i64(P), *map(ptr, got))
        close(got, want, f"lstm_forward P={P} {what}")
        hs, cs, gates, hfull = want
        dhs, dhn, dcn = maybe(dhs_given, T, N, P), maybe(st, N, P), maybe(st, N, H)
        want = ops.lstm_backward(x, h0, c0, Wx, Wh, Whr, hs, cs, gates, hfull, dhs, dhn, dcn, tl)
        got = [out(T, N, D), out(N, P), out(N, H), out(*Wx.shape), out(*Wh.shape), out(4 * H),
               out(P, H) if proj else None]
        lib.m_lstm_backward(tl, ptr(x), ptr(h0), ptr(c0), ptr(Wx), ptr(Wh), whr, ptr(hs),
                            ptr(cs), ptr(gates), ptr(hfull), ptr(dhs), ptr(dhn), ptr(dcn), i64(T),
                            i64(N), i64(D), i64(H), i64(P), *map(ptr, got))
        close(got, want, f"lstm_backward P={P} {what}")
        calls += 2
    Wx, Wh, bx = weight(tl, D, 3 * H), weight(tl, H, 3 * H), rng.standard_normal(3 * H)
    bh, h0 = maybe(tl and st, 3 * H), maybe(st, N, H)
    want = ops.gru_forward(x, h0, Wx, Wh, bx, bh, tl)
    got = [out(T, N, H), out(T, N, 3 * H), out(T, N, H)]
    lib.m_gru_forward(tl, ptr(x), ptr(h0), ptr(Wx), ptr(Wh), ptr(bx), ptr(bh), i64(T), i64(N),
                      i64(D), i64(H), *map(ptr, got))
    close(got, want, f"gru_forward {what}")
    hs, gates, aux = want
    dhs, dhn = maybe(dhs_given, T, N, H), maybe(st, N, H)
    want = ops.gru_backward(x, h0, Wx, Wh, hs, gates, aux, dhs, dhn, tl)
    got = [out(T, N, D), out(N, H), out(*Wx.shape), out(*Wh.shape), out(3 * H),
           out(3 * H) if tl else None]
    lib.m_gru_backward(tl, ptr(x), ptr(h0), ptr(Wx), ptr(Wh), ptr(hs), ptr(gates), ptr(aux),
                       ptr(dhs), ptr(dhn), i64(T), i64(N), i64(D), i64(H), *map(ptr, got))
    close(got, want, f"gru_backward {what}")
    calls += 2
print(f"cuda_host_check: {calls} calls match the CPU kernels "
      f"({lib.m_launches()} kernel launches, {lib.m_gemms()} GEMMs)")
