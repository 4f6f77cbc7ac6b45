"""Numerical safety: softmax/cross-entropy and sigmoid at logits of +-1e4, float64 gradient
checks of the loss, and LSTM/GRU/RNN over T = 1000 steps with saturating inputs: no overflow,
no NaN, and the reference's values."""

import numpy as np
import pytest

import fastnn.layers as L
import fastnn.time_layers as TL
from fastnn import ops
from fastnn.reference import functional as F, layers as R, time_layers as RT
from conftest import assert_parity, gradcheck


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_with_loss_at_1e4(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4 - 1, -1e4]], dtype)
    t = np.array([1, 2, 0])
    layer = L.SoftmaxWithLoss()
    with np.errstate(over="raise", invalid="raise"):  # the reference must not overflow either
        expected = R.SoftmaxWithLoss().forward(x, t)
    loss = layer.forward(x, t)
    assert np.isfinite(loss) and np.all(np.isfinite(layer.y))
    # row 0 puts all mass on class 0, so -log(0 + 1e-7) is the loss of its label 1
    assert_parity(loss, expected, dtype)
    np.testing.assert_allclose(layer.y.sum(axis=1), 1, rtol=1e-6)
    dx = layer.backward()
    assert np.all(np.isfinite(dx))
    onehot = np.eye(3)[t]
    np.testing.assert_allclose(dx, (layer.y - onehot) / 3, rtol=1e-6, atol=1e-7)


def test_softmax_with_loss_gradient_float64_at_large_logits():
    rng = np.random.default_rng(5)
    # rows shifted by +-1e4: softmax is shift invariant, so the probabilities stay moderate
    # (where the loss's +1e-7 is negligible and the book's gradient is the exact one)
    x = rng.standard_normal((4, 5)) * 2 + np.array([[1e4], [-1e4], [0], [5e3]])
    t = np.array([0, 3, 4, 1])
    layer = L.SoftmaxWithLoss()
    layer.forward(x, t)
    dx = layer.backward()
    gradcheck(lambda: L.SoftmaxWithLoss().forward(x, t), x, dx, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_at_1e4(dtype):
    x = np.array([-1e4, -800, -100, -1, 0, 1, 100, 800, 1e4], dtype)
    with np.errstate(over="raise", invalid="raise"):
        y = L.Sigmoid().forward(x)
    assert np.all(np.isfinite(y)) and np.all((y >= 0) & (y <= 1))
    assert y[0] == 0 and y[-1] == 1 and y[4] == 0.5
    assert_parity(y, F.sigmoid(x), dtype)
    layer = L.Sigmoid()
    layer.forward(x)
    assert np.all(np.isfinite(layer.backward(np.ones_like(x))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_at_1e4(dtype):
    x = np.array([-1e4, -20, 0, 20, 1e4], dtype)
    assert_parity(L.Tanh().forward(x), np.tanh(x), dtype)


def _weights(rng, D, H, gates, scale, dtype):
    return (rng.standard_normal((D, gates * H)).astype(dtype) * scale,
            rng.standard_normal((H, gates * H)).astype(dtype) * scale,
            rng.standard_normal(gates * H).astype(dtype) * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,gates", [("TimeLSTM", 4), ("TimeGRU", 3), ("TimeRNN", 1)])
def test_recurrent_T1000_saturating(name, gates, dtype):
    # Weights and inputs large enough to saturate every gate: exp(-x) overflows for naive
    # formulas, and the LSTM cell state grows by up to 1 per step (|c| <= T).
    rng = np.random.default_rng(11)
    N, T, D, H = 2, 1000, 3, 4
    Wx, Wh, b = _weights(rng, D, H, gates, 50.0, dtype)
    xs = (rng.standard_normal((N, T, D)) * 100).astype(dtype)
    layer = getattr(TL, name)(Wx, Wh, b)
    ref = getattr(RT, name)(Wx.copy(), Wh.copy(), b.copy())
    hs = layer.forward(xs)
    assert np.all(np.isfinite(hs))
    with np.errstate(all="ignore"):
        expected = ref.forward(xs)
    assert_parity(hs, expected, dtype, reduce_len=T)
    dhs = rng.standard_normal(hs.shape).astype(dtype)
    dxs = layer.backward(dhs)
    for g in [dxs, *layer.grads]:
        assert np.all(np.isfinite(g))
    with np.errstate(all="ignore"):
        expected_dx = ref.backward(dhs)
    assert_parity(dxs, expected_dx, dtype, reduce_len=T)


@pytest.mark.parametrize("name,gates", [("TimeLSTM", 4), ("TimeGRU", 3)])
def test_recurrent_T1000_long_memory(name, gates):
    # Forget gate / update gate pinned open: the state carries over 1000 steps; LSTM's cell
    # state accumulates to ~T without overflow.
    N, T, D, H = 1, 1000, 1, 2
    dtype = np.float32
    Wx = np.zeros((D, gates * H), dtype)
    Wh = np.zeros((H, gates * H), dtype)
    b = np.zeros(gates * H, dtype)
    if name == "TimeLSTM":  # gates f, g, i, o: f = 1, g = 1, i = 1, o = 1
        b[:] = 1e4
    else:  # z = 0 (take the candidate), candidate saturates at 1
        b[:H] = -1e4
        b[2 * H:] = 1e4
    layer = getattr(TL, name)(Wx, Wh, b)
    hs = layer.forward(np.ones((N, T, D), dtype))
    assert np.all(np.isfinite(hs))
    if name == "TimeLSTM":
        assert layer.c[0, 0] == pytest.approx(T)  # c_t = c_{t-1} + 1
        assert hs[0, -1, 0] == pytest.approx(1.0)
    dxs = layer.backward(np.ones_like(hs))
    assert np.all(np.isfinite(dxs)) and all(np.all(np.isfinite(g)) for g in layer.grads)


def test_nn_lstm_gru_T1000():
    from fastnn.nn import GRU, LSTM
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((1000, 2, 3)) * 1e3).astype(np.float32)
    for cls in (LSTM, GRU):
        m = cls(3, 5, num_layers=2)
        out, _ = m(x)
        assert out.shape == (1000, 2, 5) and np.all(np.isfinite(out))


def test_softmax_rows_of_1e4_in_ops():
    x = np.array([[1e4, 1e4], [-1e4, 1e4]], np.float32)
    np.testing.assert_allclose(ops.softmax(x), [[0.5, 0.5], [0, 1]])


def test_big_endian_data_computes_in_its_native_dtype():
    """Arrays read big-endian (some .npy and IDX files) compute and return the native dtype."""
    x = np.arange(-3, 3, dtype=">f4").reshape(2, 3)
    assert ops.relu_forward(x)[0].dtype == np.float32
    assert ops.softmax(x).dtype == np.float32
    assert ops.sigmoid_forward(x).dtype == np.float32
    assert ops.compute_dtype("x", x.astype(">f8")) == np.float64
    np.testing.assert_array_equal(ops.relu_forward(x)[0], np.maximum(x, 0))
