"""Embedding gather / scatter-add and EmbeddingDot (negative sampling) kernels against
fastnn.reference: the book's Embedding (W[idx]; dW = 0 then np.add.at) and EmbeddingDot."""

import numpy as np
import pytest

import fastnn
import fastnn.reference.time_layers as ref
from fastnn import ops
from fastnn import time_layers as fast
from fastnn.reference.negative_sampling_layer import EmbeddingDot as RefEmbeddingDot
from conftest import assert_parity, gradcheck


def _add_at(V, D, idx, dout, dtype):
    dW = np.zeros((V, D), dtype=dtype)
    np.add.at(dW, idx, dout)
    return dW


@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4), (0,), (4, 0)])
def test_forward_is_the_gather(rng, dtype, shape):
    W = rng.standard_normal((11, 6)).astype(dtype)
    idx = rng.integers(0, 11, size=shape)
    out = ops.embedding_forward(W, idx)
    assert out.shape == tuple(shape) + (6,) and out.dtype == dtype
    np.testing.assert_array_equal(out, W[idx])


@pytest.mark.parametrize("id_dtype", [np.int8, np.uint8, np.int32, np.uint64, np.int64])
def test_any_integer_ids(rng, id_dtype):
    W = rng.standard_normal((9, 3))
    idx = rng.integers(0, 9, size=(4, 2)).astype(id_dtype)
    np.testing.assert_array_equal(ops.embedding_forward(W, idx), W[idx])
    d = rng.standard_normal((4, 2, 3))
    dW = np.full_like(W, 7.0)
    ops.embedding_backward(dW, idx, d)
    np.testing.assert_array_equal(dW, _add_at(9, 3, idx.astype(np.int64), d, W.dtype))


@pytest.mark.parametrize("n,V,D", [(40, 5, 7), (700, 10000, 65), (3000, 50, 33), (0, 4, 3)])
def test_backward_is_add_at_to_the_bit(rng, dtype, n, V, D):
    """Repeated ids add in NumPy's order, so even float32 sums agree exactly."""
    idx = rng.integers(0, V, size=n)
    d = rng.standard_normal((n, D)).astype(dtype)
    dW = rng.standard_normal((V, D)).astype(dtype)  # stale values are zeroed first
    assert ops.embedding_backward(dW, idx, d) is dW
    np.testing.assert_array_equal(dW, _add_at(V, D, idx, d, dtype))


def test_backward_is_the_same_at_every_thread_count(rng, restore_threads):
    idx = rng.integers(0, 30, size=(50, 40))   # every row hit many times
    d = rng.standard_normal((50, 40, 64)).astype(np.float32)
    results = []
    for n in (1, 2, 3):
        fastnn.set_num_threads(n)
        dW = np.empty((30, 64), np.float32)
        ops.embedding_backward(dW, idx, d)
        results.append(dW)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    np.testing.assert_array_equal(results[0], _add_at(30, 64, idx, d, np.float32))


@pytest.mark.parametrize("bad", [5, -1, 1 << 40])
def test_ids_out_of_range_raise_index_error(bad):
    W = np.zeros((5, 3))
    idx = np.array([[0, 1], [bad, 2]])
    with pytest.raises(IndexError, match=rf"Embedding: index {bad} is out of bounds for W with "
                                         r"5 rows"):
        ops.embedding_forward(W, idx)
    dW = np.ones((5, 3))
    with pytest.raises(IndexError, match=rf"index {bad} is out of bounds"):
        ops.embedding_backward(dW, idx, np.zeros((2, 2, 3)))
    with pytest.raises(IndexError, match=rf"EmbeddingDot: index {bad} is out of bounds"):
        ops.embedding_dot_forward(W, idx[1], np.zeros((2, 3)))


def test_bad_arguments_in_the_users_words():
    W = np.zeros((5, 3))
    with pytest.raises(IndexError, match="word ids must be integers, got an array of dtype "
                                         "float64"):
        ops.embedding_forward(W, np.array([1.0]))
    with pytest.raises(ValueError, match=r"W must be 2-D \(V, D\), got W.shape=\(5,\)"):
        ops.embedding_forward(np.zeros(5), np.array([1]))
    with pytest.raises(ValueError, match=r"Embedding.backward: dout has shape \(2, 4\) but the "
                                         r"forward output had shape \(2, 3\)"):
        ops.embedding_backward(np.zeros((5, 3)), np.array([1, 2]), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="complex"):
        ops.embedding_backward(np.zeros((5, 3)), np.array([1]), np.zeros((1, 3), complex))
    with pytest.raises(ValueError, match=r"expected idx of shape \(N,\) and h of shape \(N, 3\)"):
        ops.embedding_dot_forward(W, np.array([1, 2]), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"dout has shape \(3,\) but the forward output had "
                                         r"shape \(2,\)"):
        ops.embedding_dot_backward(np.zeros((5, 3)), np.array([1, 2]), np.zeros((2, 3)),
                                    np.zeros(3), W)


def test_backward_into_a_strided_or_other_dtype_grad(rng):
    idx = np.array([3, 1, 3])
    d = rng.standard_normal((3, 4))
    big = np.ones((6, 8))
    dW = big[:, ::2]                          # not contiguous: NumPy's add.at path
    ops.embedding_backward(dW, idx, d)
    np.testing.assert_array_equal(dW, _add_at(6, 4, idx, d, np.float64))
    np.testing.assert_array_equal(big[:, 1::2], 1.0)
    dW32 = np.ones((6, 4), np.float32)        # float64 dout into a float32 grad, cast first
    ops.embedding_backward(dW32, idx, d)
    np.testing.assert_array_equal(dW32, _add_at(6, 4, idx, d.astype(np.float32), np.float32))
    ro = np.zeros((6, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ops.embedding_backward(ro, idx, d)


def test_integer_W_gathers_like_numpy():
    W = np.arange(12).reshape(4, 3)
    np.testing.assert_array_equal(ops.embedding_forward(W, np.array([3, 0])), W[[3, 0]])
    with pytest.raises(IndexError, match="index 4 is out of bounds"):
        ops.embedding_forward(W, np.array([4]))


# ------------------------------------------------------------------ the layers

@pytest.mark.parametrize("cls", ["Embedding", "TimeEmbedding"])
def test_layers_match_the_reference(rng, dtype, cls):
    W = rng.standard_normal((20, 8)).astype(dtype)
    a, r = getattr(fast, cls)(W), getattr(ref, cls)(W.copy())
    assert not isinstance(a, getattr(ref, cls))
    assert a.params[0] is W and a.grads[0].shape == W.shape and a.idx is None
    for _ in range(2):  # the second round overwrites the grads
        ids = rng.integers(0, 20, size=(4, 6))
        np.testing.assert_array_equal(a.forward(ids), r.forward(ids))
        assert a.idx is ids
        d = rng.standard_normal((4, 6, 8)).astype(dtype)
        assert a.backward(d) is None and r.backward(d) is None
        np.testing.assert_array_equal(a.grads[0], r.grads[0])
    grad = a.grads[0]
    W *= 2  # an optimizer's in-place update is seen by the next forward
    np.testing.assert_array_equal(a.forward(ids), W[ids])
    a.backward(d)
    assert a.grads[0] is grad


def test_embedding_gradcheck(rng):
    W = rng.standard_normal((6, 3))
    layer = fast.TimeEmbedding(W)
    ids = np.array([[0, 2, 2], [5, 0, 2]])
    d = rng.standard_normal((2, 3, 3))

    def loss():
        return float(np.sum(layer.forward(ids) * d))

    loss()
    layer.backward(d)
    gradcheck(loss, W, layer.grads[0].copy())


# ------------------------------------------------------------------ EmbeddingDot

@pytest.mark.parametrize("N,V,D", [(1, 3, 4), (100, 10000, 100), (64, 7, 33), (0, 5, 4)])
def test_embedding_dot_matches_the_reference(rng, dtype, N, V, D):
    W = rng.standard_normal((V, D)).astype(dtype)
    idx = rng.integers(0, V, size=N)
    h = rng.standard_normal((N, D)).astype(dtype)
    r = RefEmbeddingDot(W.copy())
    out = ops.embedding_dot_forward(W, idx, h)
    assert_parity(out, r.forward(h, idx), dtype, reduce_len=D)
    dout = rng.standard_normal(N).astype(dtype)
    dW = np.full_like(W, 3.0)
    dh = ops.embedding_dot_backward(dW, idx, h, dout, W)
    assert_parity(dh, r.backward(dout), dtype)
    assert_parity(dW, r.grads[0], dtype, reduce_len=N)


def test_embedding_dot_repeated_ids_and_promotion(rng):
    W = rng.standard_normal((4, 5)).astype(np.float32)
    idx = np.array([2, 2, 0, 2])
    h = rng.standard_normal((4, 5))                 # float64 h: the book's result is float64
    r = RefEmbeddingDot(W.copy())
    out = ops.embedding_dot_forward(W, idx, h)
    assert out.dtype == np.float64
    assert_parity(out, r.forward(h, idx), np.float64, reduce_len=5)
    dout = rng.standard_normal(4)
    dW = np.zeros_like(W)                           # the layer's float32 grad, as the book's
    dh = ops.embedding_dot_backward(dW, idx, h, dout, W)
    assert dh.dtype == np.float64 and dW.dtype == np.float32
    assert_parity(dh, r.backward(dout), np.float64)
    assert_parity(dW, r.grads[0], np.float32)


def test_embedding_dot_gradcheck(rng):
    W = rng.standard_normal((5, 4))
    idx = np.array([1, 3, 1])
    h = rng.standard_normal((3, 4))
    dout = rng.standard_normal(3)

    def loss():
        return float(ops.embedding_dot_forward(W, idx, h) @ dout)

    dW = np.empty_like(W)
    dh = ops.embedding_dot_backward(dW, idx, h, dout, W)
    gradcheck(loss, W, dW)
    gradcheck(loss, h, dh)


class _DeviceLike(np.ndarray):
    """A NumPy array that says it lives on a GPU (__cuda_array_interface__): the ops take their
    device path, the NumPy expressions the book's code runs on CuPy."""

    @property
    def __cuda_array_interface__(self):
        return {}


def test_device_arrays_take_the_array_code_path(rng):
    W = rng.standard_normal((8, 3)).astype(np.float32)
    idx = rng.integers(0, 8, size=(2, 5))
    Wd, idd = W.view(_DeviceLike), idx.view(_DeviceLike)
    out = ops.embedding_forward(Wd, idd)
    assert isinstance(out, _DeviceLike)
    np.testing.assert_array_equal(out, W[idx])
    d = rng.standard_normal((2, 5, 3)).astype(np.float32).view(_DeviceLike)
    dW = np.ones_like(W).view(_DeviceLike)
    ops.embedding_backward(dW, idd, d)
    np.testing.assert_array_equal(dW, _add_at(8, 3, idx, np.asarray(d), np.float32))
    h = rng.standard_normal((5, 3)).astype(np.float32).view(_DeviceLike)
    r = RefEmbeddingDot(W.copy())
    assert_parity(ops.embedding_dot_forward(Wd, idd[0], h), r.forward(np.asarray(h), idx[0]),
                  np.float32, reduce_len=3)
    dout = rng.standard_normal(5).astype(np.float32).view(_DeviceLike)
    dh = ops.embedding_dot_backward(dW, idd[0], h, dout, Wd)
    assert_parity(dh, r.backward(np.asarray(dout)), np.float32)
    assert_parity(dW, r.grads[0], np.float32, reduce_len=5)
