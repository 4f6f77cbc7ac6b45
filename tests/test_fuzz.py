"""Property-based fuzzing of every kernel family against fastnn.reference (hypothesis).

Random shapes (empty and 1-sized batches, odd sizes, windows as large as the padded input),
strides, pads, input dtypes, memory layouts (C, Fortran, strided, reversed views) and extreme
values (0, +-1e30, +-inf, NaN): the kernel equals the reference within the dtype's tolerance,
NaN where the reference gives NaN, or both reject the input. Profiles live in conftest.py:
"ci" (bounded, derandomized; the default) and "long" (HYPOTHESIS_PROFILE=long or
--hypothesis-profile=long). The number of examples run is printed in pytest's summary.
"""

import collections

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastnn.layers as L
import fastnn.time_layers as TL
from fastnn import ops, optim, util
from fastnn.reference import functional as F, layers as R, time_layers as RT, util as RU
from conftest import assert_parity, tolerance

# The reference computes with extreme values too: NumPy's overflow/invalid warnings are expected.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

EXAMPLES = collections.Counter()  # examples run per test, reported by conftest

EXTREMES = [0.0, 1.0, -1.0, 1e30, -1e30, np.inf, -np.inf, np.nan]
LAYOUTS = ["C", "F", "strided", "reversed"]
FLOATS = [np.float32, np.float64]

dims = st.integers(1, 6)
batch = st.sampled_from([0, 1, 1, 2, 3, 5])


@st.composite
def arrays(draw, shape, dtype=None, extremes=True, layouts=True, huge=True):
    """A random array of `shape`: normal values, some replaced by extremes, in a random dtype
    (float32/float64, or an int dtype that the kernels promote) and memory layout."""
    seed = draw(st.integers(0, 2**32 - 1))
    dtype = dtype or draw(st.sampled_from(FLOATS + [np.int32]))
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape) * (3 if np.dtype(dtype).kind == "i" else 1)
    if extremes and a.size and np.dtype(dtype).kind == "f":
        pool = EXTREMES if huge else [v for v in EXTREMES if not 1 < abs(v) < np.inf]
        for v in draw(st.lists(st.sampled_from(pool), max_size=3)):
            a.flat[rng.integers(a.size)] = v
    a = a.astype(dtype)
    layout = draw(st.sampled_from(LAYOUTS)) if layouts else "C"
    return relayout(a, layout)


def relayout(a, layout):
    """The same values as `a` in another memory layout (a copy or a view of a bigger array)."""
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided" and a.ndim:
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if layout == "reversed" and a.ndim:
        return np.ascontiguousarray(a[::-1])[::-1]
    return a


def float_of(*arrays):
    """The compute dtype of the reference: NumPy's promotion, ints become float64."""
    dt = np.result_type(*[a.dtype for a in arrays])
    return dt if dt.kind == "f" else np.dtype(np.float64)


def magnitude(*arrays):
    """Product of the largest finite |value| of each array: the size of the terms a sum of
    their products adds up."""
    m = 1.0
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        m *= max(1.0, float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0)))
    return m


def check(actual, expected, dtype, reduce_len=1, what="", terms=1.0):
    """assert_parity, with the absolute tolerance scaled by `terms` (see magnitude()) when the
    result sums terms much larger than itself: +1e30 - 1e30 + 0.1 cancels differently in
    every summation order, so only eps * max|term| is meaningful there."""
    EXAMPLES["comparisons"] += 1
    if terms <= 1e6:
        assert_parity(actual, expected, dtype, reduce_len=reduce_len, err_msg=what)
    else:
        _check_cancelling(actual, expected, dtype, reduce_len, what, terms)


def _check_cancelling(actual, expected, dtype, reduce_len, what, terms):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == np.dtype(dtype), what
    rtol, atol = tolerance(dtype, reduce_len)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * terms, err_msg=what)


# ------------------------------------------------------------------ activations

@given(st.data(), st.sampled_from(["Relu", "Sigmoid", "Tanh"]),
       st.lists(st.integers(0, 5), min_size=1, max_size=4))
def test_activations(data, name, shape):
    EXAMPLES["test_activations"] += 1
    x = data.draw(arrays(tuple(shape), dtype=data.draw(st.sampled_from(FLOATS))))
    dout = data.draw(arrays(tuple(shape), dtype=x.dtype))
    layer, ref = getattr(L, name)(), getattr(R, name)()
    out = layer.forward(x)
    check(out, ref.forward(x.copy()), x.dtype, what=f"{name}.forward")
    check(layer.backward(dout.copy()), ref.backward(dout.copy()), x.dtype,
          what=f"{name}.backward")


# ------------------------------------------------------------------ affine

@given(st.data(), batch, st.lists(dims, min_size=1, max_size=3), st.integers(0, 6))
def test_affine(data, N, feat, M):
    EXAMPLES["test_affine"] += 1
    D = int(np.prod(feat))
    x = data.draw(arrays((N, *feat)))
    W = data.draw(arrays((D, M), extremes=False))
    b = data.draw(arrays((M,), dtype=W.dtype, extremes=False))
    dt = float_of(x, W, b)
    layer, ref = L.Affine(W, b), R.Affine(W.astype(dt), b.astype(dt))
    out = layer.forward(x)
    check(out, ref.forward(x.astype(dt)), dt, reduce_len=D, what="Affine.forward",
          terms=magnitude(x, W))
    dout = data.draw(arrays(out.shape, dtype=dt, extremes=False))
    check(layer.backward(dout), ref.backward(dout), dt, reduce_len=M, what="Affine dx")
    check(layer.dW, ref.dW, dt, reduce_len=N, what="Affine dW", terms=magnitude(x, dout))
    check(layer.db, ref.db, dt, reduce_len=N, what="Affine db")


# ------------------------------------------------------------------ softmax, cross-entropy

@given(st.data(), batch, st.integers(1, 9), st.booleans(),
       st.sampled_from([1.0, 1e4]))
def test_softmax_with_loss(data, N, C, one_hot, scale):
    EXAMPLES["test_softmax_with_loss"] += 1
    dt = np.dtype(data.draw(st.sampled_from(FLOATS)))
    x = data.draw(arrays((N, C), dtype=dt)) * dt.type(scale)
    labels = np.asarray(data.draw(st.lists(st.integers(0, C - 1), min_size=N, max_size=N)),
                        np.int64)
    t = np.eye(C, dtype=dt)[labels] if one_hot else labels
    layer, ref = L.SoftmaxWithLoss(), R.SoftmaxWithLoss()
    loss = layer.forward(x, t)
    check(loss, ref.forward(x, t), dt, what="loss")
    check(layer.y, ref.y, dt, what="softmax")
    check(layer.backward(), ref.backward(), dt, what="dx")


@given(st.data(), st.lists(st.integers(0, 6), min_size=1, max_size=3))
def test_softmax_any_axes(data, shape):
    EXAMPLES["test_softmax_any_axes"] += 1
    x = data.draw(arrays(tuple(shape)))
    dt = float_of(x)
    if shape[-1] == 0:  # rows of no classes: NumPy's max (the reference) refuses, fastnn is empty
        check(ops.softmax(x), np.zeros(shape, dt), dt)
        return
    check(ops.softmax(x), F.softmax(x.astype(dt)), dt, reduce_len=shape[-1], what="softmax")


# ------------------------------------------------------------------ batch normalization

@given(st.data(), batch, st.sampled_from([(3,), (1,), (7,), (2, 2, 3), (1, 1, 1)]),
       st.booleans(), st.booleans())
def test_batchnorm(data, N, feat, train, extremes):
    EXAMPLES["test_batchnorm"] += 1
    D = int(np.prod(feat))
    dt = np.dtype(data.draw(st.sampled_from(FLOATS)))
    # no +-1e30 in float32: the reference's float32 (x - mean)**2 overflows to inf where fastnn,
    # summing squares in double, gets the right variance
    big_ok = dt == np.float64
    x = data.draw(arrays((N, *feat), dtype=dt, extremes=extremes, huge=big_ok))
    gamma = data.draw(arrays((D,), dtype=dt, extremes=False, layouts=False))
    beta = data.draw(arrays((D,), dtype=dt, extremes=False, layouts=False))
    rm = data.draw(arrays((D,), dtype=np.float64, extremes=False, layouts=False))
    rv = np.abs(data.draw(arrays((D,), dtype=np.float64, extremes=False, layouts=False)))
    layer = L.BatchNormalization(gamma, beta, 0.9, rm.copy(), rv.copy())
    ref = R.BatchNormalization(gamma, beta, 0.9, rm.copy(), rv.copy())
    with np.errstate(all="ignore"):
        expected = ref.forward(x, train)
    out = layer.forward(x, train)
    # inference mixes in the float64 running averages: NumPy promotes the output to float64
    check(out, expected, expected.dtype, reduce_len=max(N, 1), what="BatchNormalization.forward")
    # float64 running averages: fastnn averages x in float64, the reference in x's dtype
    for got, want in [(layer.running_mean, ref.running_mean), (layer.running_var, ref.running_var)]:
        assert got.dtype == want.dtype == np.float64
        check(got.astype(dt), want.astype(dt), dt, reduce_len=max(N, 1))
    if train and not extremes:
        dout = data.draw(arrays(x.shape, dtype=dt, extremes=False))
        with np.errstate(all="ignore"):
            expected = ref.backward(dout)
        # backward divides by std = sqrt(var + 1e-6): cancellation scales with 1 / std
        check(layer.backward(dout), expected, dt, reduce_len=max(N, 1) * 1e3, what="dx")
        check(layer.dgamma, ref.dgamma, dt, reduce_len=max(N, 1))
        check(layer.dbeta, ref.dbeta, dt, reduce_len=max(N, 1))


# ------------------------------------------------------------------ windows: geometry

@st.composite
def windows(draw, max_channels=3):
    """(N, C, H, W, FH, FW, stride, pad); mostly valid, sometimes a window larger than the
    padded input (which fastnn rejects)."""
    N = draw(batch)
    C = draw(st.integers(1, max_channels))
    H, W = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    pad = draw(st.sampled_from([0, 0, 1, 2]))
    stride = draw(st.sampled_from([1, 1, 2, 3]))
    FH = draw(st.integers(1, H + 2 * pad + 1))
    FW = draw(st.integers(1, W + 2 * pad + 1))
    if draw(st.booleans()):  # window exactly the padded input: one output position
        FH, FW = H + 2 * pad, W + 2 * pad
    return N, C, H, W, FH, FW, stride, pad


def valid(H, W, FH, FW, pad):
    return FH <= H + 2 * pad and FW <= W + 2 * pad


def reference_rejects(fn):
    """What the reference does with a window larger than the padded input: raise, or (with
    an output size of 0) return an empty result. fastnn raises ValueError instead."""
    try:
        out = fn()
    except Exception:
        return
    assert np.size(out) == 0


@given(st.data(), windows())
def test_im2col_col2im(data, geom):
    EXAMPLES["test_im2col_col2im"] += 1
    N, C, H, W, FH, FW, stride, pad = geom
    x = data.draw(arrays((N, C, H, W)))
    if not valid(H, W, FH, FW, pad):
        with pytest.raises(ValueError, match="larger than the padded input"):
            util.im2col(x, FH, FW, stride, pad)
        reference_rejects(lambda: RU.im2col(x, FH, FW, stride, pad))
        return
    dt = float_of(x)
    col = util.im2col(x, FH, FW, stride, pad)
    check(col, RU.im2col(x.astype(dt), FH, FW, stride, pad), dt, what="im2col")
    dcol = data.draw(arrays(col.shape, dtype=dt))
    check(util.col2im(dcol, x.shape, FH, FW, stride, pad),
          RU.col2im(dcol, x.shape, FH, FW, stride, pad), dt, reduce_len=FH * FW, what="col2im",
          terms=magnitude(dcol))


@given(st.data(), windows(), st.integers(1, 4), st.booleans())
def test_convolution(data, geom, FN, with_bias):
    EXAMPLES["test_convolution"] += 1
    N, C, H, W, FH, FW, stride, pad = geom
    x = data.draw(arrays((N, C, H, W)))
    Wt = data.draw(arrays((FN, C, FH, FW), extremes=False))
    b = data.draw(arrays((FN,), dtype=Wt.dtype, extremes=False)) if with_bias else None
    layer = L.Convolution(Wt, b, stride, pad)
    if not valid(H, W, FH, FW, pad):
        with pytest.raises(ValueError, match="larger than the padded input"):
            layer.forward(x)
        reference_rejects(lambda: R.Convolution(Wt, 0 if b is None else b, stride,
                                                pad).forward(x))
        return
    dt = float_of(x, Wt, *([] if b is None else [b]))
    ref = R.Convolution(Wt.astype(dt), np.zeros(FN, dt) if b is None else b.astype(dt),
                        stride, pad)
    out = layer.forward(x)
    check(out, ref.forward(x.astype(dt)), dt, reduce_len=C * FH * FW, what="conv forward",
          terms=magnitude(x, Wt))
    dout = data.draw(arrays(out.shape, dtype=dt, extremes=False))
    positions = N * out.shape[2] * out.shape[3]
    check(layer.backward(dout), ref.backward(dout), dt, reduce_len=FN * FH * FW, what="dx")
    check(layer.dW, ref.dW, dt, reduce_len=positions, what="dW", terms=magnitude(x, dout))
    check(layer.db, ref.db, dt, reduce_len=positions, what="db")


@given(st.data(), windows(), st.sampled_from(["Pooling", "AvgPooling"]))
def test_pooling(data, geom, name):
    EXAMPLES["test_pooling"] += 1
    N, C, H, W, FH, FW, stride, pad = geom
    x = data.draw(arrays((N, C, H, W)))
    layer = getattr(L, name)(FH, FW, stride, pad)
    ref = getattr(R, name)(FH, FW, stride, pad)
    if not valid(H, W, FH, FW, pad):
        with pytest.raises(ValueError, match="larger than the padded input"):
            layer.forward(x)
        reference_rejects(lambda: ref.forward(x))
        return
    dt = float_of(x)
    xr = x.astype(dt)
    out = layer.forward(x)
    check(out, ref.forward(xr), dt, reduce_len=FH * FW, what=f"{name}.forward",
          terms=magnitude(x))
    if name == "Pooling":
        np.testing.assert_array_equal(layer.arg_max, ref.arg_max)
    dout = data.draw(arrays(out.shape, dtype=dt))
    check(layer.backward(dout), ref.backward(dout), dt, reduce_len=FH * FW,
          what=f"{name}.backward", terms=magnitude(dout))


def test_reference_im2col_of_an_empty_batch():
    # reshape(0, -1) is ambiguous: the reference once raised here, fastnn gives (0, C*FH*FW)
    x = np.zeros((0, 2, 4, 4))
    assert RU.im2col(x, 3, 2, 1, 1).shape == (0, 12)
    assert util.im2col(x, 3, 2, 1, 1).shape == (0, 12)


# ------------------------------------------------------------------ recurrent layers (vol. 2)

@given(st.data(), st.sampled_from([("TimeRNN", 1), ("TimeLSTM", 4), ("TimeGRU", 3)]),
       st.sampled_from([0, 1, 2, 3]), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4),
       st.booleans())
def test_time_recurrent(data, layer_gates, N, T, D, H, extremes):
    EXAMPLES["test_time_recurrent"] += 1
    name, gates = layer_gates
    dt = np.dtype(data.draw(st.sampled_from(FLOATS)))
    xs = data.draw(arrays((N, T, D), dtype=dt, extremes=extremes))
    Wx, Wh, b = (data.draw(arrays(s, dtype=dt, extremes=False, layouts=False))
                 for s in [(D, gates * H), (H, gates * H), (gates * H,)])
    layer, ref = getattr(TL, name)(Wx, Wh, b), getattr(RT, name)(Wx.copy(), Wh.copy(), b.copy())
    hs = layer.forward(xs)
    check(hs, ref.forward(xs), dt, reduce_len=T * (D + H), what=f"{name}.forward")
    if extremes:
        return  # saturated gates: the backward's products of 0 * inf differ in order
    dhs = data.draw(arrays(hs.shape, dtype=dt, extremes=False))
    check(layer.backward(dhs), ref.backward(dhs), dt, reduce_len=T * gates * H, what="dxs")
    for g, rg, what in zip(layer.grads, ref.grads, ["dWx", "dWh", "db"]):
        check(g, rg, dt, reduce_len=N * T, what=what)


# ------------------------------------------------------------------ optimizers (the book's formulas)

def _book_update(name, p, g, state, lr):
    """One step of the book's common/optimizer.py on copies (state: dict kept between steps)."""
    if name == "SGD":
        p -= lr * g
    elif name == "Momentum":
        state["v"] = 0.9 * state.get("v", 0) - lr * g
        p += state["v"]
    elif name == "AdaGrad":
        state["h"] = state.get("h", 0) + g * g
        p -= lr * g / (np.sqrt(state["h"]) + 1e-7)
    elif name == "Adam":
        state["it"] = state.get("it", 0) + 1
        m, v = state.get("m", np.zeros_like(p)), state.get("v", np.zeros_like(p))
        lr_t = lr * np.sqrt(1.0 - 0.999 ** state["it"]) / (1.0 - 0.9 ** state["it"])
        m += (1 - 0.9) * (g - m)
        v += (1 - 0.999) * (g ** 2 - v)
        state["m"], state["v"] = m, v
        p -= lr_t * m / (np.sqrt(v) + 1e-7)


@given(st.data(), st.sampled_from(["SGD", "Momentum", "AdaGrad", "Adam"]),
       st.lists(st.integers(0, 5), min_size=1, max_size=3), st.integers(1, 3))
def test_optimizers(data, name, shape, steps):
    EXAMPLES["test_optimizers"] += 1
    dt = np.dtype(data.draw(st.sampled_from(FLOATS)))
    p = data.draw(arrays(tuple(shape), dtype=dt, extremes=False, layouts=False))
    expected, state = p.copy(), {}
    opt = getattr(optim, name)(lr=0.01)
    for _ in range(steps):
        g = data.draw(arrays(tuple(shape), dtype=dt))
        opt.update({"W": p}, {"W": g})
        _book_update(name, expected, g.copy(), state, 0.01)
    check(p, expected, dt, reduce_len=steps, what=name)
