"""fastnn.nn.RNN / LSTM / GRU against torch.nn (autograd as the oracle), numerical gradients,
the course exercise of checking hand-written rnn_forward code, and bad input."""

import numpy as np
import pytest

import fastnn
import fastnn.nn as fnn
from conftest import assert_parity, gradcheck

T_, N_, D_, H_ = 5, 3, 4, 6

CONFIGS = [  # num_layers, bidirectional, batch_first, give h0
    (1, False, False, False),
    (2, True, True, True),
    (2, False, False, True),
    (1, True, False, False),
]
MODES = [("RNN", {"nonlinearity": "tanh"}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}),
         ("GRU", {})]


def _torch():
    return pytest.importorskip("torch", reason="torch parity tests need torch (CI installs it)")


def _compare_with_torch(kind, kw, L, bidir, batch_first, give_h0, dtype, unbatched=False,
                        N=N_, H=H_):
    torch = _torch()
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    torch.manual_seed(0)
    kw = dict(kw, num_layers=L, bidirectional=bidir, batch_first=batch_first)
    tm = getattr(torch.nn, kind)(D_, H, **kw).to(tdt)
    fm = getattr(fnn, kind)(D_, H, dtype=dtype, **kw)
    fm.load_state_dict(tm.state_dict())  # torch tensors go in as they are
    assert list(fm.state_dict()) == list(tm.state_dict())
    dirs = 2 if bidir else 1
    Hout = kw.get("proj_size", 0) or H
    if unbatched:
        x_shape, h_shape, c_shape = (T_, D_), (L * dirs, Hout), (L * dirs, H)
    else:
        x_shape = (N, T_, D_) if batch_first else (T_, N, D_)
        h_shape, c_shape = (L * dirs, N, Hout), (L * dirs, N, H)
    x = torch.randn(*x_shape, dtype=tdt, requires_grad=True)
    h0 = torch.randn(*h_shape, dtype=tdt, requires_grad=True)
    c0 = torch.randn(*c_shape, dtype=tdt, requires_grad=True)
    lstm = kind == "LSTM"
    hx_t = ((h0, c0) if lstm else h0) if give_h0 else None
    hx_f = None if not give_h0 else (
        (h0.detach().numpy(), c0.detach().numpy()) if lstm else h0.detach().numpy())
    out_t, hn_t = tm(x, hx_t)
    out_f, hn_f = fm(x.detach().numpy(), hx_f)
    red = D_ + H
    assert_parity(out_f, out_t.detach().numpy(), dtype, reduce_len=red * L, err_msg="output")
    states_t = hn_t if lstm else (hn_t,)
    states_f = hn_f if lstm else (hn_f,)
    for sf, st in zip(states_f, states_t):
        assert_parity(sf, st.detach().numpy(), dtype, reduce_len=red * L, err_msg="h_n/c_n")

    d_out = torch.randn_like(out_t)
    d_states = [torch.randn_like(s) for s in states_t]
    loss = (out_t * d_out).sum() + sum((s * d).sum() for s, d in zip(states_t, d_states))
    loss.backward()
    dx = fm.backward(d_out.numpy(), *[d.numpy() for d in d_states])
    red_b = T_ * N * red * L
    assert_parity(dx, x.grad.numpy(), dtype, reduce_len=red_b, err_msg="d_input")
    if give_h0:
        assert_parity(fm.d_h0, h0.grad.numpy(), dtype, reduce_len=red_b, err_msg="d_h0")
        if lstm:
            assert_parity(fm.d_c0, c0.grad.numpy(), dtype, reduce_len=red_b, err_msg="d_c0")
    assert list(fm.grads) == list(tm.state_dict())
    for name, p in tm.named_parameters():
        assert_parity(fm.grads[name], p.grad.numpy(), dtype, reduce_len=red_b, err_msg=name)


@pytest.mark.parametrize("L,bidir,batch_first,give_h0", CONFIGS)
@pytest.mark.parametrize("kind,kw", MODES, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_matches_torch(kind, kw, L, bidir, batch_first, give_h0, dtype):
    _compare_with_torch(kind, kw, L, bidir, batch_first, give_h0, dtype)


@pytest.mark.parametrize("kind,kw", MODES, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_unbatched_input_matches_torch(kind, kw):
    _compare_with_torch(kind, kw, 2, True, False, True, np.float64, unbatched=True)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_without_bias_matches_torch(kind):
    _compare_with_torch(kind, {"bias": False}, 2, True, False, True, np.float64)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("L,bidir,give_h0", [(1, False, False), (2, True, True)])
def test_lstm_projection_matches_torch(L, bidir, give_h0, dtype):
    _compare_with_torch("LSTM", {"proj_size": 4}, L, bidir, False, give_h0, dtype)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("kind,kw", MODES + [("LSTM", {"proj_size": 4})],
                         ids=["rnn_tanh", "rnn_relu", "lstm", "gru", "lstm_proj"])
def test_batch_split_between_threads_matches_torch(kind, kw, threads, restore_threads, dtype):
    # 13 rows: each thread walks the sequence for its own slice, whatever the thread count.
    fastnn.set_num_threads(threads)
    _compare_with_torch(kind, kw, 2, True, False, True, dtype, N=13)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind,kw,H", [("RNN", {}, 256), ("LSTM", {}, 128), ("GRU", {}, 128)],
                         ids=["rnn", "lstm", "gru"])
def test_steps_in_row_chunks_match_torch(kind, kw, H, threads, restore_threads, dtype):
    # 40 rows: float32 steps go to OpenBLAS in chunks of 8 or 16 rows, a shorter one last,
    # where it has its AVX-512 small kernels (core/blas.h).
    fastnn.set_num_threads(threads)
    _compare_with_torch(kind, kw, 1, True, False, True, dtype, N=40, H=H)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("kind,kw,H", [("RNN", {}, 1024), ("LSTM", {}, 512), ("GRU", {}, 592),
                                       ("LSTM", {"proj_size": 1024}, 2048)],
                         ids=["rnn", "lstm", "gru", "lstm_proj"])
def test_large_steps_match_torch(kind, kw, H, dtype):
    # 8 x gates*H x H (and 8 x 1024 x 2048 through W_hr) per step: past the size where the
    # per-step GEMMs split over threads and read the weights transposed in place.
    _compare_with_torch(kind, kw, 1, False, False, True, dtype, N=8, H=H)


def test_eval_mode_disables_dropout_like_torch():
    torch = _torch()
    torch.manual_seed(0)
    tm = torch.nn.LSTM(D_, H_, num_layers=2, dropout=0.5).eval()
    fm = fnn.LSTM(D_, H_, num_layers=2, dropout=0.5).eval()
    fm.load_state_dict(tm.state_dict())
    x = np.random.default_rng(0).standard_normal((T_, N_, D_)).astype(np.float32)
    assert_parity(fm(x)[0], tm(torch.from_numpy(x))[0].detach().numpy(), np.float32,
                  reduce_len=20)


def test_train_mode_dropout_gradients(rng):
    m = fnn.GRU(3, 4, num_layers=2, dropout=0.4, dtype=np.float64)
    x = rng.standard_normal((4, 2, 3))
    d = rng.standard_normal((4, 2, 4))

    def loss():  # the same dropout masks on every call
        m._rng = np.random.default_rng(5)
        return float(np.sum(m(x)[0] * d))

    assert not np.allclose(loss(), float(np.sum(m.eval()(x)[0] * d)))
    m.train()
    loss()
    dx = m.backward(d)
    gradcheck(loss, x, dx)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_numerical_gradients(rng, kind):
    m = getattr(fnn, kind)(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    x = rng.standard_normal((4, 2, 3))
    h0 = rng.standard_normal((4, 2, 4))
    hx = (h0, rng.standard_normal((4, 2, 4))) if kind == "LSTM" else h0
    d_out = rng.standard_normal((4, 2, 8))
    d_hn = rng.standard_normal((4, 2, 4))

    def loss():
        out, hn = m(x, hx)
        hn = hn[0] if kind == "LSTM" else hn
        return float(np.sum(out * d_out) + np.sum(hn * d_hn))

    loss()
    dx = m.backward(d_out, d_hn)
    grads = {k: g.copy() for k, g in m.grads.items()}
    d_h0 = m.d_h0.copy()
    gradcheck(loss, x, dx)
    gradcheck(loss, h0, d_h0)
    for name, p in m.state_dict().items():  # the module's own arrays: edits are seen
        gradcheck(loss, p, grads[name])


def test_init_and_state_dict(rng):
    m = fnn.LSTM(5, 16, num_layers=2, bidirectional=True)
    assert list(m.state_dict()) == [
        f"{w}_l{k}{s}" for k in range(2) for s in ("", "_reverse")
        for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert m.weight_ih_l0.shape == (64, 5) and m.weight_ih_l1.shape == (64, 32)
    assert m.weight_ih_l0.dtype == np.float32
    for p in m.parameters():
        assert np.abs(p).max() <= 0.25 and np.abs(p).max() > 0.2  # U(-1/sqrt(16), 1/sqrt(16))
    other = fnn.LSTM(5, 16, num_layers=2, bidirectional=True)
    other.load_state_dict({k: v.tolist() for k, v in m.state_dict().items()})
    x = rng.standard_normal((3, 2, 5)).astype(np.float32)
    np.testing.assert_array_equal(other(x)[0], m(x)[0])
    assert "LSTM(5, 16, num_layers=2, bidirectional=True)" == repr(m)


def test_dtype_follows_parameters_and_input(rng):
    m = fnn.RNN(3, 4)
    x32 = rng.standard_normal((2, 1, 3)).astype(np.float32)
    assert m(x32)[0].dtype == np.float32
    assert m(x32.astype(np.float64))[0].dtype == np.float64
    m.double()
    out, hn = m(x32)
    assert out.dtype == np.float64 and m.weight_hh_l0.dtype == np.float64
    m.backward(np.ones_like(out))
    assert m.grads["weight_hh_l0"].dtype == np.float64


# ---- the course exercise: a hand-written NumPy RNN checked against the module with allclose

def rnn_forward(x, h0, Wx, Wh, bx, bh):
    """Plain NumPy tanh RNN over x (T, N, D) with torch's weight layout."""
    h, hs = h0, []
    for x_t in x:
        h = np.tanh(x_t @ Wx.T + bx + h @ Wh.T + bh)
        hs.append(h)
    return np.stack(hs), h


def bidirectional_rnn_forward(x, h0, p):
    fwd, hf = rnn_forward(x, h0[0], p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"],
                          p["bias_hh_l0"])
    bwd, hb = rnn_forward(x[::-1], h0[1], p["weight_ih_l0_reverse"], p["weight_hh_l0_reverse"],
                          p["bias_ih_l0_reverse"], p["bias_hh_l0_reverse"])
    return np.concatenate([fwd, bwd[::-1]], axis=2), np.stack([hf, hb])


def test_course_exercise_rnn_forward(rng):
    m = fnn.RNN(4, 5, dtype=np.float64)
    x, h0 = rng.standard_normal((6, 3, 4)), rng.standard_normal((1, 3, 5))
    out, hn = m(x, h0)
    p = m.state_dict()
    mine, h_last = rnn_forward(x, h0[0], p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"],
                               p["bias_hh_l0"])
    assert np.allclose(out, mine) and np.allclose(hn[0], h_last)
    wrong, _ = rnn_forward(x, h0[0], p["weight_hh_l0"][:, :4], p["weight_hh_l0"],
                           p["bias_ih_l0"], p["bias_hh_l0"])
    assert not np.allclose(out, wrong)  # the check does catch a mistake


def test_course_exercise_bidirectional(rng):
    m = fnn.RNN(4, 5, bidirectional=True, batch_first=True, dtype=np.float64)
    x, h0 = rng.standard_normal((3, 6, 4)), rng.standard_normal((2, 3, 5))
    out, hn = m(x, h0)
    mine, hn_mine = bidirectional_rnn_forward(np.swapaxes(x, 0, 1), h0, m.state_dict())
    assert np.allclose(out, np.swapaxes(mine, 0, 1)) and np.allclose(hn, hn_mine)


# ---- bad input

def test_bad_input_gives_clear_errors():
    m = fnn.LSTM(4, 5, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM: input has 3 features but input_size is 4"):
        m(np.zeros((2, 3, 3), np.float32))
    with pytest.raises(ValueError,
                       match=r"LSTM: expected h0 of shape \(2, 3, 5\), got \(1, 3, 5\)"):
        m(np.zeros((2, 3, 4), np.float32), (np.zeros((1, 3, 5)), np.zeros((2, 3, 5))))
    with pytest.raises(ValueError, match=r"expected c0 of shape \(2, 3, 5\)"):
        m(np.zeros((2, 3, 4), np.float32), (np.zeros((2, 3, 5)), np.zeros((2, 3, 6))))
    with pytest.raises(ValueError, match=r"hx must be a tuple"):
        m(np.zeros((2, 3, 4), np.float32), np.zeros((2, 3, 5)))
    with pytest.raises(TypeError, match=r"LSTM: arrays of dtype complex128 are not supported"):
        m(np.zeros((2, 3, 4), complex))
    with pytest.raises(ValueError, match=r"2-D \(unbatched\) or 3-D"):
        m(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"d_output has shape"):
        m(np.zeros((2, 3, 4), np.float32))
        m.backward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(KeyError, match=r"missing keys \['weight_ih_l0'"):
        m.load_state_dict({})
    sd = dict(m.state_dict())
    sd["weight_hh_l1"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"weight_hh_l1 has shape \(3, 3\) but"):
        m.load_state_dict(sd)
    with pytest.raises(ValueError, match=r"unknown nonlinearity 'sigmoid'"):
        fnn.RNN(4, 5, nonlinearity="sigmoid")
    with pytest.raises(RuntimeError, match=r"before a forward"):
        fnn.GRU(2, 3).backward(np.zeros((1, 1, 3)))


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first,shape", [(False, (5, 2, 3)), (True, (2, 5, 3)),
                                               (False, (5, 3))])
def test_editing_the_output_in_place_leaves_backward_alone(rng, kind, batch_first, shape):
    # The output is not the cache backward reads (torch would refuse the in-place edit; here
    # the gradient is that of the forward as it ran).
    m = getattr(fnn, kind)(3, 4, batch_first=batch_first, dtype=np.float64)
    x = rng.standard_normal(shape)
    out, _ = m(x)
    d = rng.standard_normal(out.shape)
    dx = m.backward(d)
    grads = {k: v.copy() for k, v in m.grads.items()}
    out, _ = m(x)
    out *= 0.5
    np.testing.assert_array_equal(m.backward(d), dx)
    for k, v in grads.items():
        np.testing.assert_array_equal(m.grads[k], v, err_msg=k)
