"""Grouped and depthwise convolution: Convolution(..., groups=g) against the reference, torch and
numerical gradients, and its bad inputs."""

import numpy as np
import pytest

import fastnn
from fastnn import ops
from fastnn.layers import Convolution
from fastnn.reference import layers as ref
from conftest import assert_parity, gradcheck

# (N, C, H, W, FN, FH, FW, stride, pad, groups)
SHAPES = [
    (2, 4, 7, 7, 4, 3, 3, 1, 1, 4),        # depthwise
    (3, 6, 9, 8, 12, 3, 3, 2, 1, 6),       # depthwise, 2 filters per channel, stride 2
    (2, 5, 6, 11, 5, 5, 3, 3, 2, 5),       # depthwise, non-square, pad 2
    (1, 3, 4, 4, 3, 5, 5, 1, 2, 3),        # depthwise, window larger than the image
    (2, 3, 5, 5, 3, 1, 1, 1, 0, 3),        # depthwise 1x1
    (4, 32, 16, 16, 32, 3, 3, 1, 1, 32),   # MobileNet's depthwise layer
    (2, 8, 7, 6, 6, 3, 2, 1, 1, 2),        # two groups of 4 channels, 3 filters each
    (3, 6, 9, 9, 9, 3, 3, 2, 0, 3),        # three groups of 2 channels
    (0, 4, 5, 5, 4, 3, 3, 1, 1, 4),        # empty batch
]


def make(rng, shape, dtype):
    N, C, H, W, FN, FH, FW, stride, pad, groups = shape
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((FN, C // groups, FH, FW)).astype(dtype)
    b = rng.standard_normal(FN).astype(dtype)
    return x, Wt, b, stride, pad, groups


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", SHAPES)
def test_parity_with_reference(rng, dtype, threads, shape, restore_threads):
    fastnn.set_num_threads(threads)
    x, W, b, stride, pad, groups = make(rng, shape, dtype)
    layer, expect = Convolution(W, b, stride, pad, groups), ref.Convolution(W, b, stride, pad,
                                                                              groups)
    out = layer.forward(x)
    assert_parity(out, expect.forward(x), dtype, reduce_len=W[0].size)
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert_parity(layer.backward(dout), expect.backward(dout), dtype, reduce_len=W.shape[0])
    positions = max(1, out.shape[0] * out.shape[2] * out.shape[3])
    assert_parity(layer.dW, expect.dW, dtype, reduce_len=positions)
    assert_parity(layer.db, expect.db, dtype, reduce_len=positions)
    layer._param_backward(dout)
    assert_parity(layer.dW, expect.dW, dtype, reduce_len=positions)


@pytest.mark.parametrize("shape", SHAPES[:8])
def test_same_as_torch(rng, shape):
    torch = pytest.importorskip("torch")
    x, W, b, stride, pad, groups = make(rng, shape, np.float64)
    layer = Convolution(W, b, stride, pad, groups)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    tout = torch.nn.functional.conv2d(tx, tW, tb, stride=stride, padding=pad, groups=groups)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.dW, tW.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.db, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 5, 6, 6, 3, 3, 2, 1, 3), (1, 4, 4, 5, 2, 2, 3, 1, 1, 2)])
def test_gradients_numerically(rng, shape):
    x, W, b, stride, pad, groups = make(rng, shape, np.float64)
    layer = Convolution(W, b, stride, pad, groups)
    dout = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(dout)

    def loss():
        return float(np.sum(layer.forward(x) * dout))
    gradcheck(loss, x, dx)
    gradcheck(loss, W, layer.dW)
    gradcheck(loss, b, layer.db)


def test_col_W_reproduces_the_output(rng):
    x, W, b, stride, pad, groups = make(rng, (2, 6, 5, 5, 9, 3, 3, 1, 1, 3), np.float64)
    layer = Convolution(W, b, stride, pad, groups)
    out = layer.forward(x)
    flat = (layer.col @ layer.col_W + b).reshape(2, 5, 5, 9).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, flat, rtol=1e-12)


def test_groups_one_is_the_plain_convolution(rng):
    x, W, b, stride, pad, _ = make(rng, (2, 3, 6, 6, 4, 3, 3, 1, 1, 1), np.float64)
    np.testing.assert_array_equal(Convolution(W, b, stride, pad, 1).forward(x),
                                  Convolution(W, b, stride, pad).forward(x))


def test_bad_groups(rng):
    x = rng.standard_normal((2, 6, 5, 5))
    with pytest.raises(ValueError, match=r"x has 6 channels but W expects 2 per group x "
                                         r"groups=2"):
        ops.conv2d_forward(x, np.ones((4, 2, 3, 3)), None, groups=2)
    with pytest.raises(ValueError, match="FN=5 filters do not split into groups=3"):
        ops.conv2d_forward(x, np.ones((5, 2, 3, 3)), None, groups=3)
    with pytest.raises(ValueError, match="groups must be >= 1, got 0"):
        ops.conv2d_forward(x, np.ones((6, 6, 3, 3)), None, groups=0)
    with pytest.raises(TypeError, match="groups"):
        ops.conv2d_forward(x, np.ones((6, 1, 3, 3)), None, groups=1.5)
    # The binding keeps its own guard for direct _C calls.
    with pytest.raises(ValueError, match="channels"):
        fastnn._C.conv2d_forward(x, np.ones((6, 2, 3, 3)), None, 1, 0, 2)


def test_inf_in_the_image_gives_numpys_gradients(rng):
    x = rng.random((1, 2, 3, 5))
    x[0, 0, 1, 4] = np.inf
    W, b = rng.random((2, 1, 1, 3)), np.zeros(2)
    layer, expect = Convolution(W, b, 1, 0, 2), ref.Convolution(W, b, 1, 0, 2)
    d = np.ones_like(expect.forward(x))
    layer.forward(x)
    np.testing.assert_allclose(layer.backward(d), expect.backward(d), rtol=1e-12)
    np.testing.assert_allclose(layer.dW, expect.dW, rtol=1e-12)  # inf as NumPy, no NaN
    W[1, 0, 0, 1] = np.inf                                      # and an inf weight for dx
    layer, expect = Convolution(W, b, 1, 0, 2), ref.Convolution(W, b, 1, 0, 2)
    x[0, 0, 1, 4] = 1.0
    layer.forward(x)
    expect.forward(x)
    np.testing.assert_allclose(layer.backward(d), expect.backward(d), rtol=1e-12)


@pytest.mark.parametrize("stride", [4, 1000, 1 << 20])
def test_strides_longer_than_the_window(rng, stride):
    """Windows that skip pixels: the same numbers, in time and memory that do not grow with
    the stride."""
    x = rng.random((2, 3, 7, 6))
    W, b = rng.random((3, 1, 3, 3)), rng.random(3)
    layer, expect = Convolution(W, b, stride, 1, 3), ref.Convolution(W, b, stride, 1, 3)
    out = layer.forward(x)
    np.testing.assert_allclose(out, expect.forward(x), rtol=1e-12)
    d = rng.random(out.shape)
    np.testing.assert_allclose(layer.backward(d), expect.backward(d), rtol=1e-12)
    np.testing.assert_allclose(layer.dW, expect.dW, rtol=1e-12)
