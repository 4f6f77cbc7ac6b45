import numpy as np
import pytest

import fastnn
from fastnn import ops
from fastnn import layers as L
from fastnn.reference import layers as R
from conftest import assert_parity, gradcheck

SHAPES = [  # (x.shape, M)
    ((1, 5), 3),
    ((7, 13), 1),
    ((16, 33), 10),
    ((4, 3, 5, 2), 6),  # flattened to (4, 30)
    ((3, 2, 7), 9),
    ((300, 4, 50), 100),  # float32 forward in chunks of 48 rows and a 12-row tail (core/blas.h)
]


def _pair(rng, dtype, x_shape, M):
    D = int(np.prod(x_shape[1:]))
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal((D, M)).astype(dtype)
    b = rng.standard_normal(M).astype(dtype)
    return x, W, b


@pytest.mark.parametrize("x_shape,M", SHAPES)
def test_parity_with_reference(rng, xp, dtype, x_shape, M):
    x, W, b = _pair(rng, dtype, x_shape, M)
    N, D = x_shape[0], int(np.prod(x_shape[1:]))
    ours, ref = L.Affine(xp.asarray(W), xp.asarray(b)), R.Affine(W, b)
    assert_parity(ours.forward(xp.asarray(x)), ref.forward(x), dtype, reduce_len=D)
    dout = rng.standard_normal((N, M)).astype(dtype)
    assert_parity(ours.backward(xp.asarray(dout)), ref.backward(dout), dtype, reduce_len=M)
    assert_parity(ours.dW, ref.dW, dtype, reduce_len=N)
    assert_parity(ours.db, ref.db, dtype, reduce_len=N)
    assert ours.original_x_shape == x_shape
    assert ours.x.shape == (N, D)


def test_gradients_match_finite_differences(rng):
    x, W, b = _pair(rng, np.float64, (4, 2, 3), 5)
    G = rng.standard_normal((4, 5))
    layer = L.Affine(W, b)
    loss = lambda: float(np.sum(layer.forward(x) * G))  # noqa: E731
    loss()
    dx = layer.backward(G)
    dW, db = layer.dW.copy(), layer.db.copy()
    gradcheck(loss, x, dx)
    gradcheck(loss, W, dW)
    gradcheck(loss, b, db)


def test_keeps_callers_parameters_and_sees_in_place_updates(rng):
    x, W, b = _pair(rng, np.float64, (3, 4), 2)
    layer = L.Affine(W, b)
    assert layer.W is W and layer.b is b
    first = layer.forward(x)
    layer.backward(np.ones((3, 2)))
    W -= 0.1 * layer.dW
    b -= 0.1 * layer.db
    np.testing.assert_allclose(layer.forward(x), x @ W + b, rtol=1e-12)
    assert not np.allclose(first, layer.forward(x))


def test_x_attribute_is_the_books_flattened_view(rng):
    x, W, b = _pair(rng, np.float64, (2, 3, 4), 5)
    layer = L.Affine(W, b)
    layer.forward(x)
    assert np.shares_memory(layer.x, x)


@pytest.mark.parametrize("x_dt,W_dt,dout_dt,out_dt,dx_dt,dW_dt", [
    (np.float32, np.float64, np.float64, np.float64, np.float64, np.float64),
    (np.float32, np.float32, np.float32, np.float32, np.float32, np.float32),
    (np.int64, np.float32, np.float32, np.float64, np.float32, np.float64),
    (np.float64, np.float32, np.float32, np.float64, np.float32, np.float64),
])
def test_mixed_dtypes_follow_numpy_promotion(rng, x_dt, W_dt, dout_dt, out_dt, dx_dt, dW_dt):
    x = (rng.standard_normal((3, 4)) * 3).astype(x_dt)
    W = rng.standard_normal((4, 2)).astype(W_dt)
    b = rng.standard_normal(2).astype(W_dt)
    ours, ref = L.Affine(W, b), R.Affine(W, b)
    out = ours.forward(x)
    assert out.dtype == out_dt == ref.forward(x).dtype
    assert_parity(out, ref.forward(x), out_dt, reduce_len=4)
    dout = rng.standard_normal((3, 2)).astype(dout_dt)
    dx = ours.backward(dout)
    ref_dx = ref.backward(dout)
    assert (dx.dtype, ours.dW.dtype, ours.db.dtype) == (dx_dt, dW_dt, np.dtype(dout_dt))
    assert (ref_dx.dtype, ref.dW.dtype) == (dx_dt, dW_dt)
    assert_parity(dx, ref_dx, dx_dt, reduce_len=2)
    assert_parity(ours.dW, ref.dW, dW_dt, reduce_len=3)


def test_empty_batch_and_empty_axes(dtype):
    W = np.ones((12, 3), dtype)
    b = np.arange(3, dtype=dtype)
    layer = L.Affine(W, b)
    out = layer.forward(np.zeros((0, 3, 4), dtype))
    assert out.shape == (0, 3) and out.dtype == dtype
    dx = layer.backward(np.zeros((0, 3), dtype))
    assert dx.shape == (0, 3, 4)
    np.testing.assert_array_equal(layer.dW, np.zeros((12, 3)))
    np.testing.assert_array_equal(layer.db, np.zeros(3))
    # No features: out is b on every row; no outputs: dx is zero.
    layer = L.Affine(np.zeros((0, 3), dtype), b)
    np.testing.assert_array_equal(layer.forward(np.zeros((2, 0), dtype)), [b, b])
    layer = L.Affine(np.zeros((4, 0), dtype), np.zeros(0, dtype))
    assert layer.forward(np.ones((2, 4), dtype)).shape == (2, 0)
    np.testing.assert_array_equal(layer.backward(np.zeros((2, 0), dtype)), np.zeros((2, 4)))


def test_non_contiguous_and_fortran_inputs(rng, dtype):
    x = np.asfortranarray(rng.standard_normal((6, 5)).astype(dtype))
    W = rng.standard_normal((10, 3)).astype(dtype)[::2]  # every other row: (5, 3), strided
    b = rng.standard_normal(6).astype(dtype)[::2]
    dout = rng.standard_normal((3, 6)).astype(dtype).T  # (6, 3), transposed view
    ours, ref = L.Affine(W, b), R.Affine(W, b)
    assert_parity(ours.forward(x), ref.forward(x), dtype, reduce_len=5)
    assert_parity(ours.backward(dout), ref.backward(dout), dtype, reduce_len=3)
    assert_parity(ours.dW, ref.dW, dtype, reduce_len=6)
    assert_parity(ours.db, ref.db, dtype, reduce_len=6)


def test_nan_propagates(dtype):
    x = np.ones((3, 4), dtype)
    x[1, 2] = np.nan
    layer = L.Affine(np.ones((4, 2), dtype), np.zeros(2, dtype))
    out = layer.forward(x)
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
    layer.backward(np.ones((3, 2), dtype))
    assert np.isnan(layer.dW[2]).all() and np.isfinite(layer.dW[[0, 1, 3]]).all()


def test_ops_entry_points_flatten_like_the_layer(rng):
    x, W, b = _pair(rng, np.float64, (2, 3, 2), 4)
    out = ops.affine_forward(x, W, b)
    np.testing.assert_allclose(out, x.reshape(2, 6) @ W + b, rtol=1e-12)
    dx, dW, db = ops.affine_backward(np.ones((2, 4)), x, W)
    assert dx.shape == x.shape and dW.shape == W.shape and db.shape == (4,)


def test_bad_inputs_raise_clear_errors(rng):
    W, b = np.ones((6, 3)), np.ones(3)
    layer = L.Affine(W, b)
    with pytest.raises(RuntimeError, match=r"Affine.backward: call forward\(x\) first"):
        layer.backward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Affine: x has 5 features per sample but W expects 6 "
                                         r"\(x.shape=\(2, 5\), W.shape=\(6, 3\)\)"):
        layer.forward(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"Affine: b has length 4 but W has 3 columns"):
        L.Affine(W, np.ones(4)).forward(np.ones((2, 6)))
    with pytest.raises(ValueError, match=r"Affine: W must be 2-D"):
        L.Affine(np.ones(6), b).forward(np.ones((2, 6)))
    with pytest.raises(ValueError, match=r"Affine: W must be 2-D .* and b 1-D"):
        L.Affine(W, np.ones((1, 3))).forward(np.ones((2, 6)))
    with pytest.raises(ValueError, match=r"Affine: x must have a batch axis"):
        layer.forward(np.float64(3.0))
    with pytest.raises(ValueError, match=r"x has 1 features per sample but W expects 6"):
        layer.forward(np.ones(6))  # a 1-D x is N samples of one feature, as in the book
    layer.forward(np.ones((2, 3, 2)))
    with pytest.raises(ValueError, match=r"Affine.backward: dout has shape \(2, 4\) but the "
                                         r"forward output had shape \(2, 3\)"):
        layer.backward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"Affine.backward: dout has shape \(3,\)"):
        layer.backward(np.ones(3))
    for bad in (np.ones((2, 6), complex), np.array([[object()] * 6] * 2), np.full((2, 6), "a")):
        with pytest.raises(TypeError, match="Affine"):
            layer.forward(bad)
    with pytest.raises(TypeError, match="Affine"):
        L.Affine(W.astype(complex), b).forward(np.ones((2, 6)))
    with pytest.raises(TypeError, match="Affine"):
        layer.backward(np.ones((2, 3), complex))


def test_threaded_path_matches_reference(rng, dtype):
    n = fastnn.get_num_threads()
    fastnn.set_num_threads(2)  # past kParallelGrain elements the kernels split rows/columns
    try:
        x, W, b = _pair(rng, dtype, (300, 70), 600)
        ours, ref = L.Affine(W, b), R.Affine(W, b)
        assert_parity(ours.forward(x), ref.forward(x), dtype, reduce_len=70)
        dout = rng.standard_normal((300, 600)).astype(dtype)
        assert_parity(ours.backward(dout), ref.backward(dout), dtype, reduce_len=600)
        assert_parity(ours.dW, ref.dW, dtype, reduce_len=300)
        assert_parity(ours.db, ref.db, dtype, reduce_len=300)
    finally:
        fastnn.set_num_threads(n)


@pytest.mark.parametrize("x_shape,M", [((7, 13), 5), ((300, 4, 50), 70), ((0, 6), 3),
                                       ((4, 9), 0)])
def test_param_backward_without_dx_matches_reference(rng, dtype, x_shape, M):
    # The path a network's first layer takes: dW and db only, dx never computed.
    x, W, b = _pair(rng, dtype, x_shape, M)
    N = x_shape[0]
    ours, ref = L.Affine(W, b), R.Affine(W, b)
    ours.forward(x)
    ref.forward(x)
    dout = rng.standard_normal((N, M)).astype(dtype)
    assert ours._param_backward(dout) is None
    ref.backward(dout)
    assert_parity(ours.dW, ref.dW, dtype, reduce_len=max(N, 1))
    assert_parity(ours.db, ref.db, dtype, reduce_len=max(N, 1))
    assert ops.affine_backward(dout, x, W, need_dx=False)[0] is None
    with pytest.raises(RuntimeError, match="call forward"):
        L.Affine(W, b)._param_backward(dout)


@pytest.mark.parametrize("x_shape,M", SHAPES)
def test_transposed_weights_are_read_in_place(rng, dtype, x_shape, M):
    """W = A.T of a C-contiguous A (the book's weight tying, TimeAffine(embed_W.T, b)): the
    kernels read A as it is and give dW laid out like W."""
    x, W, b = _pair(rng, dtype, x_shape, M)
    A = np.ascontiguousarray(W.T)
    D = W.shape[0]
    out = ops.affine_forward(x, A.T, b)
    assert_parity(out, x.reshape(len(x), -1) @ W + b, dtype, reduce_len=D)
    dout = rng.standard_normal(out.shape).astype(dtype)
    for need_dx in (True, False):
        dx, dW, db = ops.affine_backward(dout, x, A.T, need_dx=need_dx)
        x2 = x.reshape(len(x), -1)
        if need_dx:
            assert_parity(dx, (dout @ W.T).reshape(x.shape), dtype, reduce_len=M)
        else:
            assert dx is None
        assert_parity(dW, x2.T @ dout, dtype, reduce_len=len(x))
        assert dW.shape == W.shape and (dW.flags.f_contiguous or W.size <= max(W.shape))
        assert_parity(db, dout.sum(axis=0), dtype, reduce_len=len(x))
