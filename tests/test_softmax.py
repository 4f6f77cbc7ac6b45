import warnings

import numpy as np
import pytest

import fastnn
from fastnn import ops
from fastnn import layers as L
from fastnn.reference import functional as F
from fastnn.reference import layers as R
from conftest import assert_parity, gradcheck, to_host


@pytest.mark.parametrize("shape", [(5,), (1, 1), (4, 10), (3, 2, 7), (0, 4)])
def test_softmax_parity(rng, xp, dtype, shape):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    y = to_host(ops.softmax(xp.asarray(x)))
    assert_parity(y, F.softmax(x), dtype, reduce_len=shape[-1])
    np.testing.assert_allclose(y.sum(axis=-1), 1, rtol=1e-5)


def test_softmax_is_accurate_to_a_few_ulp_over_the_whole_range(dtype):
    lo = np.log(np.finfo(dtype).tiny) + 2  # the smallest exp that is still a normal number
    x = np.concatenate([[0.0], np.linspace(lo, 0, 50001)]).astype(dtype)
    x = np.stack([x, x[::-1] + 3])
    y = ops.softmax(x)
    exact = F.softmax(x.astype(np.longdouble))
    np.testing.assert_allclose(y, exact, rtol=4 * np.finfo(dtype).eps,
                               atol=1e3 * np.finfo(dtype).tiny)  # y/sum may be subnormal
    tiny_log = np.log(np.finfo(dtype).tiny)
    below = np.array([[0, tiny_log - 1, tiny_log - 50, -np.inf]], dtype)  # flushed to 0
    np.testing.assert_array_less(ops.softmax(below)[0, 1:], 2 * np.finfo(dtype).tiny)


@pytest.mark.parametrize("N,C", [(1, 1), (1, 5), (8, 10), (33, 3)])
@pytest.mark.parametrize("one_hot", [False, True], ids=["labels", "onehot"])
def test_layer_parity_with_reference(rng, dtype, N, C, one_hot):
    x = (rng.standard_normal((N, C)) * 4).astype(dtype)
    t = rng.integers(0, C, N)
    if one_hot:
        t = np.eye(C, dtype=dtype)[t]
    ours, ref = L.SoftmaxWithLoss(), R.SoftmaxWithLoss()
    loss, ref_loss = ours.forward(x, t), ref.forward(x, t)
    assert isinstance(loss, np.generic) and loss.dtype == dtype
    assert_parity(loss, ref_loss, dtype, reduce_len=N * C)
    assert_parity(ours.y, ref.y, dtype, reduce_len=C)
    assert ours.t is t
    for dout in (1, 2.5):
        assert_parity(ours.backward(dout), ref.backward(dout), dtype, reduce_len=C)
    assert_parity(ours.backward(), (ref.y - (t if one_hot else np.eye(C)[t])) / N, dtype,
                  reduce_len=C)


def test_loss_is_the_books_formula_with_its_epsilon():
    y_logits = np.array([[0.0, 0.0, 1e4], [1.0, 2.0, 3.0]])
    t = np.array([0, 2])
    layer = L.SoftmaxWithLoss()
    loss = layer.forward(y_logits, t)
    p = F.softmax(y_logits)
    expected = -(np.log(p[0, 0] + 1e-7) + np.log(p[1, 2] + 1e-7)) / 2
    assert loss == pytest.approx(expected, rel=1e-12)
    assert loss == pytest.approx(F.cross_entropy_error(p, t), rel=1e-12)
    assert loss > 8  # -log(1e-7) / 2: the epsilon bounds the first term


def test_soft_targets_use_argmax_for_loss_and_t_for_gradient(rng):
    x = rng.standard_normal((4, 3))
    t = rng.random((4, 3))
    ours, ref = L.SoftmaxWithLoss(), R.SoftmaxWithLoss()
    assert ours.forward(x, t) == pytest.approx(ref.forward(x, t), rel=1e-12)
    assert ours.forward(x, t) == pytest.approx(
        F.cross_entropy_error(F.softmax(x), t.argmax(axis=1)), rel=1e-12)
    np.testing.assert_allclose(ours.backward(), (F.softmax(x) - t) / 4, rtol=1e-12)


@pytest.mark.parametrize("one_hot", [False, True], ids=["labels", "onehot"])
def test_gradient_matches_finite_differences(rng, one_hot):
    x = rng.standard_normal((5, 4))
    t = rng.integers(0, 4, 5)
    if one_hot:
        t = np.eye(4)[t]
    layer = L.SoftmaxWithLoss()
    layer.forward(x, t)
    dx = layer.backward(1.5)
    # (y - t) / N is the exact gradient of the loss without the book's + 1e-7 (eps=0).
    loss = lambda: 1.5 * float(ops.softmax_cross_entropy_forward(x, t, eps=0.0)[1])  # noqa: E731
    gradcheck(loss, x, dx)


@pytest.mark.parametrize("t", [2, np.int64(2), np.array([2]), np.array([0, 0, 1, 0])],
                         ids=["int", "npint", "array1", "onehot"])
def test_single_sample_1d_x(rng, t):
    x = rng.standard_normal(4)
    ours, ref = L.SoftmaxWithLoss(), R.SoftmaxWithLoss()
    loss = ours.forward(x, t)
    assert loss == pytest.approx(F.cross_entropy_error(F.softmax(x), t), rel=1e-12)
    assert loss == pytest.approx(ref.forward(x, t), rel=1e-12)
    assert ours.y.shape == (4,)
    dx = ours.backward()
    np.testing.assert_allclose(dx, ref.backward(), rtol=1e-12)
    np.testing.assert_allclose(dx, F.softmax(x) - np.eye(4)[2], rtol=1e-12)


def test_extreme_logits_are_stable(dtype):
    x = np.array([[1e4, -1e4, 0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype)
    t = np.array([1, 0, 0])
    layer = L.SoftmaxWithLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = layer.forward(x, t)
        dx = layer.backward()
        y = ops.softmax(x)
    assert np.isfinite(loss) and np.isfinite(dx).all() and np.isfinite(y).all()
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3] * 3, [0.5, 0.5, 0]], rtol=1e-6)
    expected = -(np.log(dtype.type(1e-7)) + 2 * np.log(dtype.type(1 / 3) + 1e-7)
                 + np.log(dtype.type(0.5) + 1e-7)) / 3 + np.log(dtype.type(1 / 3) + 1e-7) / 3
    assert loss == pytest.approx(expected, rel=1e-5)


def test_empty_batch_loss_is_nan_without_warnings(dtype):
    layer = L.SoftmaxWithLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = layer.forward(np.zeros((0, 5), dtype), np.zeros(0, np.int64))
        dx = layer.backward()
        ref_loss = F.cross_entropy_error(np.zeros((0, 5), dtype), np.zeros(0, np.int64))
    assert np.isnan(loss) and loss.dtype == dtype and np.isnan(ref_loss)
    assert layer.y.shape == (0, 5) and dx.shape == (0, 5)


def test_nan_propagates(dtype):
    x = np.zeros((3, 4), dtype)
    x[1, 3] = np.nan
    layer = L.SoftmaxWithLoss()
    assert np.isnan(layer.forward(x, np.array([0, 0, 0])))
    assert np.isnan(layer.y[1]).all() and np.isfinite(layer.y[[0, 2]]).all()
    dx = layer.backward()
    assert np.isnan(dx[1]).all() and np.isfinite(dx[[0, 2]]).all()


def test_non_contiguous_fortran_and_mixed_dtypes(rng):
    x = np.asfortranarray(rng.standard_normal((6, 5)).astype(np.float32))
    t = np.eye(5)[rng.integers(0, 5, 6)]  # float64 one-hot
    ours, ref = L.SoftmaxWithLoss(), R.SoftmaxWithLoss()
    loss = ours.forward(x, t)
    assert loss.dtype == np.float32
    assert_parity(loss, ref.forward(x, t), np.float32, reduce_len=30)
    dx = ours.backward()
    assert dx.dtype == ref.backward().dtype == np.float64  # float32 y - float64 t
    # y is float32, so dx agrees to float32 precision
    assert_parity(dx.astype(np.float32), ref.backward().astype(np.float32), np.float32,
                  reduce_len=5)
    labels = rng.integers(0, 6, 20)[::2]  # strided labels
    xs = rng.standard_normal((10, 12))[:, ::2]
    assert_parity(L.SoftmaxWithLoss().forward(xs, labels), R.SoftmaxWithLoss().forward(xs, labels),
                  np.float64)
    xi = rng.integers(-3, 3, (4, 6))  # integer logits compute in float64
    assert L.SoftmaxWithLoss().forward(xi, labels[:4]).dtype == np.float64


def test_ignore_label_and_out_for_time_layers(rng, dtype):
    x = rng.standard_normal((6, 4)).astype(dtype)
    t = np.array([1, -1, 3, 0, -1, 2])
    y, loss = ops.softmax_cross_entropy_forward(x, t, eps=0.0, ignore_label=-1)
    keep = t != -1
    p = F.softmax(x.astype(np.float64))
    expected = -np.log(p[keep, t[keep]]).sum() / keep.sum()
    assert_parity(loss, expected, dtype, reduce_len=24)
    dx = ops.softmax_cross_entropy_backward(y, t, 2.0, ignore_label=-1, out=y)
    assert dx is y
    target = np.zeros((6, 4))
    target[np.flatnonzero(keep), t[keep]] = 1
    assert_parity(dx, (p - target) * 2.0 / keep.sum() * keep[:, None], dtype, reduce_len=4)


def test_bad_inputs_raise_clear_errors():
    layer = L.SoftmaxWithLoss()
    with pytest.raises(RuntimeError, match=r"SoftmaxWithLoss.backward: call forward"):
        layer.backward()
    x = np.zeros((3, 4))
    with pytest.raises(IndexError, match=r"SoftmaxWithLoss: label 4 \(at index 1\) is out of "
                                         r"range for 4 classes"):
        layer.forward(x, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match=r"label -1 \(at index 2\) is out of range for 4"):
        layer.forward(x, np.array([0, 1, -1]))
    with pytest.raises(IndexError, match=r"out of range for 4 classes"):
        layer.forward(x, np.array([0, 1, 2 ** 63], dtype=np.uint64))
    with pytest.raises(ValueError, match=r"SoftmaxWithLoss: got 2 labels for a batch of 3 with 4 "
                                         r"classes \(t.shape=\(2,\), x.shape=\(3, 4\)\)"):
        layer.forward(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"got 12 labels for a batch of 3"):
        layer.forward(x, np.zeros((4, 3), np.int64))
    with pytest.raises(TypeError, match=r"SoftmaxWithLoss: integer labels t must have an "
                                        r"integer dtype, got float64"):
        layer.forward(x, np.array([0.0, 1.0, 2.0]))
    for bad in (x.astype(complex), x.astype(object)):
        with pytest.raises(TypeError, match="SoftmaxWithLoss"):
            layer.forward(bad, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="SoftmaxWithLoss: labels t of dtype <U1"):
        layer.forward(x, np.array(["a", "b", "c"]))
    with pytest.raises(ValueError, match=r"SoftmaxWithLoss: expected x of shape \(N, C\), "
                                         r"got x.shape=\(2, 3, 4\)"):
        layer.forward(np.zeros((2, 3, 4)), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=r"a single sample \(x.shape=\(4,\)\) needs one label"):
        layer.forward(np.zeros(4), np.array([0, 1]))
    layer.forward(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"SoftmaxWithLoss.backward: the loss is a scalar, so "
                                         r"dout must be one number; got dout.shape=\(3, 4\)"):
        layer.backward(np.ones((3, 4)))
    with pytest.raises(TypeError, match=r"SoftmaxWithLoss.backward: dout of dtype complex"):
        layer.backward(1j)
    y = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"out= needs integer labels"):
        ops.softmax_cross_entropy_backward(y, np.eye(4)[:3], out=y)
    with pytest.raises(ValueError, match=r"out must be a writeable C-contiguous float64 array"):
        ops.softmax_cross_entropy_backward(y, np.array([0, 1, 2]), out=y.astype(np.float32))
    with pytest.raises(TypeError, match="softmax"):
        ops.softmax(np.ones(3, complex))
    with pytest.raises(ValueError, match="softmax: x must have at least one axis"):
        ops.softmax(np.float64(1.0))


def test_threaded_path_matches_reference(rng, dtype):
    n = fastnn.get_num_threads()
    fastnn.set_num_threads(2)  # past kParallelGrain elements the kernels split the rows
    try:
        x = (3 * rng.standard_normal((300, 200))).astype(dtype)
        t = rng.integers(0, 200, 300)
        ours, ref = L.SoftmaxWithLoss(), R.SoftmaxWithLoss()
        assert_parity(ours.forward(x, t), ref.forward(x, t), dtype, reduce_len=300 * 200)
        assert_parity(ours.y, ref.y, dtype, reduce_len=200)
        assert_parity(ours.backward(), ref.backward(), dtype, reduce_len=200)
    finally:
        fastnn.set_num_threads(n)
