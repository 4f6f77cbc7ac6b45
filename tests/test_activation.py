import warnings

import numpy as np
import pytest

import fastnn
from fastnn import ops
from fastnn import layers as L
from fastnn.reference import functional as F
from fastnn.reference import layers as R
from conftest import assert_parity, gradcheck, to_host


def test_relu_kernel_matches_numpy(rng, dtype):
    x = rng.standard_normal((7, 13)).astype(dtype)
    y, mask = ops.relu_forward(x)
    assert_parity(y, np.where(x > 0, x, 0), dtype)
    np.testing.assert_array_equal(mask, x <= 0)


def test_sigmoid_tanh_kernels(rng, dtype):
    x = rng.standard_normal(1000).astype(dtype)
    assert_parity(ops.sigmoid_forward(x), 1 / (1 + np.exp(-x)), dtype)
    assert_parity(ops.tanh_forward(x), np.tanh(x), dtype)


@pytest.mark.parametrize("dtype, ulps", [(np.float32, 2), (np.float64, 3)])
def test_tanh_to_a_few_ulps(dtype, ulps, threads):
    """The Tanh kernel's vectorised tanh: relative error within a few ulps of NumPy's from
    denormals to saturation, across its switch at |x| = 0.625; signed zeros, +-inf and NaN as
    NumPy gives them."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(20000) * s for s in (1e-30, 1e-6, 0.1, 0.6, 2, 20)]
                       + [np.linspace(0.6, 0.65, 5001), -np.linspace(0.6, 0.65, 5001)]
                       ).astype(dtype)
    got = ops.tanh_forward(x).astype(np.float64)
    exact = np.tanh(x.astype(np.float64))  # for float64: NumPy's, itself within an ulp
    tiny, eps = np.finfo(dtype).tiny, np.finfo(dtype).eps
    assert np.max(np.abs(got - exact) / np.maximum(np.abs(exact), tiny) / eps) <= ulps
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 50.0, -50.0], dtype)
    out = ops.tanh_forward(special)
    np.testing.assert_array_equal(out, np.tanh(special))
    np.testing.assert_array_equal(np.signbit(out), np.signbit(np.tanh(special)))


def test_complex_input_raises_type_error():
    with pytest.raises(TypeError, match="Relu"):
        ops.relu_forward(np.ones(3, dtype=complex))


def test_thread_count_round_trip():
    n = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
    finally:
        fastnn.set_num_threads(n)
    with pytest.raises(ValueError):
        fastnn.set_num_threads(0)


# ---------------------------------------------------------------- layer classes

@pytest.mark.parametrize("name", ["Relu", "Sigmoid", "Tanh"])
@pytest.mark.parametrize("shape", [(1,), (5, 7), (2, 3, 4, 5), (0, 3)])
def test_layer_parity_with_reference(rng, xp, dtype, name, shape):
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    ours, ref = getattr(L, name)(), getattr(R, name)()
    assert_parity(ours.forward(xp.asarray(x)), ref.forward(x), dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    assert_parity(ours.backward(xp.array(dout)), ref.backward(dout.copy()), dtype)
    if name == "Relu":
        np.testing.assert_array_equal(to_host(ours.mask), ref.mask)
        assert_parity(ours.forward(xp.asarray(x)), F.relu(x), dtype)
    else:
        assert_parity(ours.out, ref.out, dtype)


@pytest.mark.parametrize("name", ["Relu", "Sigmoid", "Tanh"])
def test_layer_gradients_match_finite_differences(rng, name):
    x = rng.standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep Relu away from its kink
    G = rng.standard_normal((4, 5))
    layer = getattr(L, name)()
    loss = lambda: float(np.sum(layer.forward(x) * G))  # noqa: E731
    loss()
    gradcheck(loss, x, layer.backward(G.copy()))


def test_relu_backward_writes_into_dout_like_the_book(rng):
    x = rng.standard_normal((4, 6))
    layer = L.Relu()
    layer.forward(x)
    dout = np.ones((4, 6))
    assert layer.backward(dout) is dout
    np.testing.assert_array_equal(dout, x > 0)
    strided = np.ones((4, 12))[:, ::2]  # not contiguous: still updated in place
    assert layer.backward(strided) is strided
    np.testing.assert_array_equal(strided, x > 0)
    ints = np.full((4, 6), 3)
    assert layer.backward(ints) is ints and ints.dtype == np.int64
    np.testing.assert_array_equal(ints, 3 * (x > 0))


def test_sigmoid_and_tanh_are_stable_at_large_inputs(dtype):
    x = np.array([-1e4, -50, 0, 50, 1e4], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for layer in (L.Sigmoid(), L.Tanh()):
            y = layer.forward(x)
            dx = layer.backward(np.ones_like(x))
            assert np.isfinite(y).all() and np.isfinite(dx).all()
        ref = F.sigmoid(x)
    np.testing.assert_allclose(L.Sigmoid().forward(x), [0, 0, 0.5, 1, 1], atol=1e-20)
    np.testing.assert_allclose(ref, [0, 0, 0.5, 1, 1], atol=1e-20)
    np.testing.assert_array_equal(L.Tanh().forward(x), [-1, -1, 0, 1, 1])


def test_activation_layers_mixed_dtypes_and_nan(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    x[1, 1] = np.nan
    for name in ("Relu", "Sigmoid", "Tanh"):
        layer = getattr(L, name)()
        y = layer.forward(x)
        assert y.dtype == np.float32 and np.isnan(y[1, 1]) and np.isfinite(np.delete(y, 5)).all()
        dx = layer.backward(np.ones((3, 4)))  # float64 dout
        if name != "Relu":
            assert dx.dtype == np.float64  # float64 dout * float32 out
    f = np.asfortranarray(rng.standard_normal((5, 3)))
    assert_parity(L.Sigmoid().forward(f), R.Sigmoid().forward(f), np.float64)
    assert_parity(L.Tanh().forward(f[::2]), R.Tanh().forward(f[::2]), np.float64)


def test_activation_layer_bad_inputs():
    for name in ("Relu", "Sigmoid", "Tanh"):
        layer = getattr(L, name)()
        with pytest.raises(TypeError, match=name):
            layer.forward(np.ones(3, complex))
        with pytest.raises(TypeError, match=name):
            layer.forward(np.array(["a", "b"]))
        layer.forward(np.ones((2, 3)))
        with pytest.raises(ValueError, match=rf"{name}.backward: dout has shape \(3, 2\)"):
            layer.backward(np.ones((3, 2)))


# ---------------------------------------------------------------- ReLU6 and SiLU (the builder's)

from fastnn.reference import builder_layers as B  # noqa: E402


@pytest.mark.parametrize("name", ["ReLU6", "SiLU"])
@pytest.mark.parametrize("shape", [(1,), (5, 7), (2, 3, 4, 5), (0, 3), (40000,)])
def test_relu6_silu_match_reference(rng, dtype, name, shape):
    x = (5 * rng.standard_normal(shape) + 2).astype(dtype)
    ref = getattr(B, name)()
    expected = ref.forward(x)
    y = getattr(ops, name.lower() + "_forward")(x)
    assert_parity(y, expected, dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    second = y if name == "ReLU6" else x
    dx = getattr(ops, name.lower() + "_backward")(dout, second)
    assert_parity(dx, ref.backward(dout), dtype)


def test_relu6_silu_edges(dtype):
    x = np.array([-np.inf, -1e4, -100, -1, 0, 6, 7, 100, 1e4, np.inf, np.nan], dtype)
    y = ops.relu6_forward(x)
    np.testing.assert_array_equal(y, np.clip(x, 0, 6))
    dx = ops.relu6_backward(np.ones_like(x), y)
    np.testing.assert_array_equal(dx, ((x > 0) & (x < 6)).astype(dtype))
    with np.errstate(over="ignore", invalid="ignore"):
        expected = B.SiLU().forward(x)
    s = ops.silu_forward(x)
    finite = np.isfinite(expected)
    assert_parity(s[finite], expected[finite], dtype)
    assert s[-2] == np.inf and np.isnan(s[-1]) and s[1] == 0
    ds = ops.silu_backward(np.ones_like(x), x)
    assert np.all(np.isfinite(ds[1:-2])) and np.isnan(ds[-1])


def test_relu6_silu_gradients_match_finite_differences(rng):
    x = 4 * rng.standard_normal((3, 7)) + 2
    x = x[np.abs(x) > 1e-3].copy()  # away from ReLU6's kinks at 0
    x = x[np.abs(x - 6) > 1e-3].copy()
    w = rng.standard_normal(x.shape)
    for name, second in (("relu6", lambda y: y), ("silu", lambda y: x)):
        fwd, bwd = getattr(ops, name + "_forward"), getattr(ops, name + "_backward")
        y = fwd(x)
        gradcheck(lambda: float(np.sum(fwd(x) * w)), x, bwd(w, second(y)))


def test_relu6_silu_bad_input():
    with pytest.raises(ValueError, match=r"ReLU6.backward: dout has shape \(3,\)"):
        ops.relu6_backward(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"SiLU.backward: dout has shape \(3,\) but the forward "
                                         r"input had shape \(4,\)"):
        ops.silu_backward(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="SiLU"):
        ops.silu_forward(np.ones(3, complex))
