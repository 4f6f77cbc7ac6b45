"""The CUDA kernels' per-element bodies (csrc/cuda/body), run in CPU loops through the
test-only module ``fastnn._C_testing`` (tests/native), against fastnn.reference (the recurrent
ones against the CPU kernels). The loops use the same decomposition as the .cu kernels (one
element, pixel, row or column-share per thread); the GEMMs, done by cuBLAS on the GPU, are NumPy
here. The module is built only on request, so without it this file is skipped."""

import importlib.util

import numpy as np
import pytest

from fastnn import ops
from fastnn.reference import layers as ref
from fastnn.reference import util as ref_util
from fastnn.reference.functional import softmax as ref_softmax

# Skipped only when the module is absent: one that is there but fails to load is an error.
if importlib.util.find_spec("fastnn._C_testing") is None:
    pytest.skip("the test-only module fastnn._C_testing is not built: .ci/dev_build.sh builds it "
                "(or configure with -DFASTNN_TESTING=ON, or pip with "
                "-C cmake.define.FASTNN_TESTING=ON)", allow_module_level=True)
from fastnn import _C_testing as bodies  # noqa: E402

from conftest import assert_parity, gradcheck

# (N, C, H, W, FH, FW, stride, pad): square, non-square, odd, overlapping, padded, batch 1,
# windows larger than stride, stride larger than window, window as large as the padded input.
GEOMETRIES = [
    (2, 3, 7, 7, 3, 3, 1, 0),
    (1, 1, 5, 8, 2, 3, 2, 1),
    (3, 2, 9, 6, 3, 2, 2, 2),
    (2, 4, 4, 4, 2, 2, 2, 0),
    (1, 2, 6, 5, 1, 1, 3, 0),
    (2, 1, 3, 3, 5, 5, 1, 1),
]
GEO_IDS = ["-".join(map(str, g)) for g in GEOMETRIES]


def _x(rng, dtype, *shape):
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- activations

def test_relu(rng, dtype):
    x = _x(rng, dtype, 4, 7)
    x[0, 0], x[1, 1] = np.nan, 0.0
    y, mask = bodies._body_relu_forward(x)
    layer = ref.Relu()
    expected = layer.forward(x.copy())
    assert_parity(y, expected, dtype)
    np.testing.assert_array_equal(mask, layer.mask)
    assert np.isnan(y[0, 0]) and y[1, 1] == 0
    dout = _x(rng, dtype, 4, 7)
    assert_parity(bodies._body_relu_backward(dout, mask), layer.backward(dout.copy()), dtype)


@pytest.mark.parametrize("name", ["Sigmoid", "Tanh"])
def test_sigmoid_tanh(rng, dtype, name):
    x = _x(rng, dtype, 3, 5, 2) * 4
    x[0, 0, 0] = np.nan
    fwd = getattr(bodies, f"_body_{name.lower()}_forward")
    bwd = getattr(bodies, f"_body_{name.lower()}_backward")
    layer = getattr(ref, name)()
    y = fwd(x)
    assert_parity(y, layer.forward(x), dtype)
    assert np.isnan(y[0, 0, 0])
    dout = _x(rng, dtype, 3, 5, 2)
    assert_parity(bwd(dout, y), layer.backward(dout), dtype)


def test_sigmoid_extremes(dtype):
    x = np.array([-1000, -50, 0, 50, 1000], dtype=dtype)
    with np.errstate(over="ignore"):
        assert_parity(bodies._body_sigmoid_forward(x), 1 / (1 + np.exp(-x)), dtype)


# ---------------------------------------------------------------- im2col, col2im, convolution

@pytest.mark.parametrize("geo", GEOMETRIES, ids=GEO_IDS)
def test_im2col_col2im(rng, dtype, geo):
    N, C, H, W, FH, FW, stride, pad = geo
    x = _x(rng, dtype, N, C, H, W)
    col = bodies._body_im2col(x, FH, FW, stride, pad)
    np.testing.assert_array_equal(col, ref_util.im2col(x, FH, FW, stride, pad))
    dcol = _x(rng, dtype, *col.shape)
    assert_parity(bodies._body_col2im(dcol, [N, C, H, W], FH, FW, stride, pad),
                  ref_util.col2im(dcol, (N, C, H, W), FH, FW, stride, pad), dtype,
                  reduce_len=FH * FW)


def test_col2im_is_adjoint_of_im2col(rng):
    # <im2col(x), c> == <x, col2im(c)> for every geometry: the gather covers each entry once.
    for N, C, H, W, FH, FW, stride, pad in GEOMETRIES:
        x = rng.standard_normal((N, C, H, W))
        col = bodies._body_im2col(x, FH, FW, stride, pad)
        c = rng.standard_normal(col.shape)
        lhs = float(np.sum(col * c))
        rhs = float(np.sum(x * bodies._body_col2im(c, [N, C, H, W], FH, FW, stride, pad)))
        assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def _conv_forward(x, W, b, stride, pad):
    """The GPU algorithm: im2col body, GEMM (cuBLAS there, NumPy here), layout+bias body."""
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = (H + 2 * pad - FH) // stride + 1, (Wd + 2 * pad - FW) // stride + 1
    col = bodies._body_im2col(x, FH, FW, stride, pad)
    return bodies._body_conv_out(col @ W.reshape(FN, -1).T, b, N, OH, OW)


def _conv_backward(dout, x, W, stride, pad):
    FN, C, FH, FW = W.shape
    col = bodies._body_im2col(x, FH, FW, stride, pad)
    rows = bodies._body_conv_dout_rows(dout)
    db = bodies._body_column_sum(rows)
    dW = (rows.T @ col).reshape(W.shape)
    dx = bodies._body_col2im(rows @ W.reshape(FN, -1), list(x.shape), FH, FW, stride, pad)
    return dx, dW, db


@pytest.mark.parametrize("geo", GEOMETRIES, ids=GEO_IDS)
def test_convolution(rng, dtype, geo):
    N, C, H, W, FH, FW, stride, pad = geo
    FN = 3
    x, Wt, b = _x(rng, dtype, N, C, H, W), _x(rng, dtype, FN, C, FH, FW), _x(rng, dtype, FN)
    layer = ref.Convolution(Wt, b, stride, pad)
    out = _conv_forward(x, Wt, b, stride, pad)
    assert_parity(out, layer.forward(x), dtype, reduce_len=C * FH * FW)
    assert_parity(_conv_forward(x, Wt, None, stride, pad), layer.forward(x) - b[:, None, None],
                  dtype, reduce_len=C * FH * FW)
    dout = _x(rng, dtype, *out.shape)
    dx, dW, db = _conv_backward(dout, x, Wt, stride, pad)
    ref_dx = layer.backward(dout)
    rl = max(1, N * out.shape[2] * out.shape[3])
    assert_parity(dx, ref_dx, dtype, reduce_len=FN * FH * FW)
    assert_parity(dW, layer.dW, dtype, reduce_len=rl)
    assert_parity(db, layer.db, dtype, reduce_len=rl)


def test_convolution_gradcheck(rng):
    x, W = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2))
    b, dout = rng.standard_normal(3), None
    out = _conv_forward(x, W, b, 2, 1)
    dout = rng.standard_normal(out.shape)
    dx, dW, db = _conv_backward(dout, x, W, 2, 1)
    loss = lambda: float(np.sum(_conv_forward(x, W, b, 2, 1) * dout))  # noqa: E731
    gradcheck(loss, x, dx)
    gradcheck(loss, W, dW)
    gradcheck(loss, b, db)


def test_empty_batch_windows(dtype):
    x = np.zeros((0, 3, 5, 5), dtype)
    col = bodies._body_im2col(x, 3, 3, 1, 1)
    assert col.shape == (0, 27)
    assert bodies._body_col2im(col, [0, 3, 5, 5], 3, 3, 1, 1).shape == (0, 3, 5, 5)
    assert _conv_forward(x, np.zeros((2, 3, 3, 3), dtype), None, 1, 1).shape == (0, 2, 5, 5)
    dx, dW, db = _conv_backward(np.zeros((0, 2, 5, 5), dtype), x, np.ones((2, 3, 3, 3), dtype),
                                1, 1)
    assert dx.shape == (0, 3, 5, 5) and (dW == 0).all() and (db == 0).all()
    out, arg = bodies._body_maxpool_forward(x, 2, 2, 2, 0)
    assert out.shape == arg.shape == (0, 3, 2, 2)
    assert bodies._body_maxpool_backward(out, arg, [0, 3, 5, 5], 2, 2, 2, 0).shape == x.shape
    assert bodies._body_avgpool_forward(x, 2, 2, 2, 0).shape == (0, 3, 2, 2)
    assert bodies._body_avgpool_backward(out, [0, 3, 5, 5], 2, 2, 2, 0).shape == x.shape


# ---------------------------------------------------------------- depthwise convolution

# (N, C, H, W, FH, FW, stride, pad, F): groups = C, F filters per channel. Square and
# non-square windows and images, stride 1 to 3 (3 skips pixels), pad 0 to 2, a window as large
# as the padded input, F = 1 and 2.
DEPTHWISE = [
    (2, 3, 7, 7, 3, 3, 1, 1, 1),
    (2, 3, 8, 7, 3, 3, 2, 1, 2),
    (1, 4, 6, 9, 2, 3, 2, 0, 1),
    (3, 2, 5, 6, 3, 2, 1, 2, 2),
    (2, 2, 9, 8, 1, 2, 3, 0, 1),
    (1, 3, 3, 3, 5, 5, 1, 1, 2),
    (2, 2, 6, 6, 3, 3, 2, 2, 2),
]
DW_IDS = ["-".join(map(str, g)) for g in DEPTHWISE]


def _depthwise_case(rng, dtype, geo):
    N, C, H, W, FH, FW, stride, pad, F = geo
    x, Wt = _x(rng, dtype, N, C, H, W), _x(rng, dtype, C * F, 1, FH, FW)
    return x, Wt, _x(rng, dtype, C * F), stride, pad


@pytest.mark.parametrize("geo", DEPTHWISE, ids=DW_IDS)
def test_depthwise(rng, dtype, geo):
    x, Wt, b, stride, pad = _depthwise_case(rng, dtype, geo)
    C, (FN, _, FH, FW) = x.shape[1], Wt.shape
    layer = ref.Convolution(Wt, b, stride, pad, groups=C)
    expected = layer.forward(x)
    out = bodies._body_depthwise_forward(x, Wt, b, stride, pad)
    assert_parity(out, expected, dtype, reduce_len=FH * FW)
    assert_parity(bodies._body_depthwise_forward(x, Wt, None, stride, pad),
                  expected - b[:, None, None], dtype, reduce_len=FH * FW)
    dout = _x(rng, dtype, *out.shape)
    dx, dW, db = bodies._body_depthwise_backward(dout, x, Wt, stride, pad, True)
    rl = max(1, x.shape[0] * out.shape[2] * out.shape[3])
    assert_parity(dx, layer.backward(dout), dtype, reduce_len=(FN // C) * FH * FW)
    assert_parity(dW, layer.dW, dtype, reduce_len=rl)
    assert_parity(db, layer.db, dtype, reduce_len=rl)
    none_dx, dW2, db2 = bodies._body_depthwise_backward(dout, x, Wt, stride, pad, False)
    assert none_dx is None
    np.testing.assert_array_equal(dW2, dW)
    np.testing.assert_array_equal(db2, db)


@pytest.mark.parametrize("geo", DEPTHWISE[:4], ids=DW_IDS[:4])
def test_depthwise_matches_cpu_kernel(rng, dtype, geo):
    """The CUDA bodies and the CPU depthwise kernel (csrc/cpu/conv.cpp) are twins."""
    x, Wt, b, stride, pad = _depthwise_case(rng, dtype, geo)
    C, (FN, _, FH, FW) = x.shape[1], Wt.shape
    out = bodies._body_depthwise_forward(x, Wt, b, stride, pad)
    assert_parity(out, ops.conv2d_forward(x, Wt, b, stride, pad, groups=C), dtype,
                  reduce_len=FH * FW)
    dout = _x(rng, dtype, *out.shape)
    rl = max(1, dout.size // FN)
    for got, want in zip(bodies._body_depthwise_backward(dout, x, Wt, stride, pad, True),
                         ops.conv2d_backward(dout, x, Wt, b, stride, pad, groups=C)):
        assert_parity(got, want, dtype, reduce_len=rl)


def test_depthwise_gradcheck(rng):
    x, Wt, b = (rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((4, 1, 3, 2)),
                rng.standard_normal(4))
    out = bodies._body_depthwise_forward(x, Wt, b, 2, 1)
    dout = rng.standard_normal(out.shape)
    dx, dW, db = bodies._body_depthwise_backward(dout, x, Wt, 2, 1, True)

    def loss():
        return float(np.sum(bodies._body_depthwise_forward(x, Wt, b, 2, 1) * dout))

    gradcheck(loss, x, dx)
    gradcheck(loss, Wt, dW)
    gradcheck(loss, b, db)


def test_depthwise_more_positions_than_threads(rng, dtype):
    """dW and db sum N*OH*OW = 2*24*24 terms, more than the 256 shares of a column sum."""
    x, Wt, b, stride, pad = _depthwise_case(rng, dtype, (2, 3, 24, 24, 3, 3, 1, 1, 2))
    layer = ref.Convolution(Wt, b, stride, pad, groups=3)
    dout = _x(rng, dtype, *layer.forward(x).shape)
    dx, dW, db = bodies._body_depthwise_backward(dout, x, Wt, stride, pad, True)
    assert_parity(dx, layer.backward(dout), dtype, reduce_len=18)
    assert_parity(dW, layer.dW, dtype, reduce_len=2 * 24 * 24)
    assert_parity(db, layer.db, dtype, reduce_len=2 * 24 * 24)


def test_depthwise_empty_batch(dtype):
    x, Wt = np.zeros((0, 3, 5, 5), dtype), np.ones((6, 1, 3, 3), dtype)
    assert bodies._body_depthwise_forward(x, Wt, None, 2, 1).shape == (0, 6, 3, 3)
    dx, dW, db = bodies._body_depthwise_backward(np.zeros((0, 6, 3, 3), dtype), x, Wt, 2, 1,
                                                 True)
    assert dx.shape == x.shape and dW.shape == Wt.shape and db.shape == (6,)
    assert (dW == 0).all() and (db == 0).all()


def test_depthwise_nan_inf_like_numpy(dtype):
    """Padding is zeros that are multiplied: an inf tap over padding gives NaN, as the
    reference's im2col GEMM does; a NaN pixel reaches exactly the outputs that see it."""
    x = np.arange(32, dtype=dtype).reshape(1, 2, 4, 4) / 8
    x[0, 1, 2, 2] = np.nan
    Wt = np.ones((2, 1, 3, 3), dtype)
    Wt[0, 0, 0, 0] = np.inf
    b = np.zeros(2, dtype)
    layer = ref.Convolution(Wt, b, 1, 1, groups=2)
    with np.errstate(invalid="ignore"):
        expected = layer.forward(x)
        out = bodies._body_depthwise_forward(x, Wt, b, 1, 1)
        assert_parity(out, expected, dtype, reduce_len=9)
        assert np.isnan(out[0, 0, 0, 0]) and np.isposinf(out[0, 0, 2, 2])
        dout = np.ones(out.shape, dtype)
        dx, dW, db = bodies._body_depthwise_backward(dout, x, Wt, 1, 1, True)
        assert_parity(dx, layer.backward(dout), dtype, reduce_len=9)
        assert_parity(dW, layer.dW, dtype, reduce_len=16)
    assert np.isnan(dW[1]).all() and np.isfinite(dW[0]).all()


def test_depthwise_rejects_bad_shapes(dtype):
    x = np.zeros((1, 3, 5, 5), dtype)
    with pytest.raises(ValueError):  # FN = 4 filters do not split over C = 3 channels
        bodies._body_depthwise_forward(x, np.zeros((4, 1, 3, 3), dtype), None, 1, 0)
    with pytest.raises(ValueError):  # W must have one channel per filter
        bodies._body_depthwise_forward(x, np.zeros((3, 2, 3, 3), dtype), None, 1, 0)
    with pytest.raises(ValueError):
        bodies._body_depthwise_backward(np.zeros((1, 3, 2, 2), dtype), x,
                                        np.zeros((3, 1, 3, 3), dtype), 1, 0, True)


# ---------------------------------------------------------------- pooling

@pytest.mark.parametrize("geo", GEOMETRIES, ids=GEO_IDS)
def test_maxpool(rng, dtype, geo):
    N, C, H, W, FH, FW, stride, pad = geo
    x = _x(rng, dtype, N, C, H, W)
    layer = ref.Pooling(FH, FW, stride, pad)
    out, arg = bodies._body_maxpool_forward(x, FH, FW, stride, pad)
    np.testing.assert_array_equal(out, layer.forward(x))
    # The reference's arg_max is ordered (n, oh, ow, c); ours is (n, c, oh, ow).
    ref_arg = layer.arg_max.reshape(N, out.shape[2], out.shape[3], C).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(arg, ref_arg)
    dout = _x(rng, dtype, *out.shape)
    assert_parity(bodies._body_maxpool_backward(dout, arg, [N, C, H, W], FH, FW, stride, pad),
                  layer.backward(dout), dtype, reduce_len=FH * FW)


def test_maxpool_ties_nan_and_padding(dtype):
    x = np.zeros((1, 1, 4, 4), dtype)  # all ties: the first cell of each window
    x[0, 0, 2, 3] = np.nan
    out, arg = bodies._body_maxpool_forward(x, 2, 2, 2, 0)
    layer = ref.Pooling(2, 2, 2, 0)
    np.testing.assert_array_equal(out, layer.forward(x))
    np.testing.assert_array_equal(arg.ravel(), layer.arg_max)
    assert np.isnan(out[0, 0, 1, 1]) and arg[0, 0, 1, 1] == 1
    # Negative inputs under padding: padding is -inf, never the maximum.
    xn = -np.ones((1, 1, 3, 3), dtype)
    out, arg = bodies._body_maxpool_forward(xn, 2, 2, 1, 1)
    np.testing.assert_array_equal(out, ref.Pooling(2, 2, 1, 1).forward(xn))
    assert (out == -1).all() and arg[0, 0, 0, 0] == 3


def test_maxpool_backward_ignores_foreign_arg(dtype):
    dout = np.ones((1, 1, 2, 2), dtype)
    arg = np.array([[[[0, -1], [4, 99]]]], np.int32)  # out-of-window indices route nothing
    dx = bodies._body_maxpool_backward(dout, arg, [1, 1, 4, 4], 2, 2, 2, 0)
    assert dx.sum() == 1 and dx[0, 0, 0, 0] == 1


@pytest.mark.parametrize("geo", GEOMETRIES, ids=GEO_IDS)
def test_avgpool(rng, dtype, geo):
    N, C, H, W, FH, FW, stride, pad = geo
    x = _x(rng, dtype, N, C, H, W)
    layer = ref.AvgPooling(FH, FW, stride, pad)
    out = bodies._body_avgpool_forward(x, FH, FW, stride, pad)
    assert_parity(out, layer.forward(x), dtype, reduce_len=FH * FW)
    dout = _x(rng, dtype, *out.shape)
    assert_parity(bodies._body_avgpool_backward(dout, [N, C, H, W], FH, FW, stride, pad),
                  layer.backward(dout), dtype, reduce_len=FH * FW)


def test_pool_nan_propagates(dtype):
    x = np.arange(16, dtype=dtype).reshape(1, 1, 4, 4)
    x[0, 0, 0, 0] = np.nan
    out = bodies._body_avgpool_forward(x, 2, 2, 2, 0)
    assert np.isnan(out[0, 0, 0, 0]) and np.isfinite(out[0, 0, 1]).all()


# ---------------------------------------------------------------- affine

@pytest.mark.parametrize("N", [0, 1, 5, 300])
def test_affine(rng, dtype, N):
    x, W, b = _x(rng, dtype, N, 2, 3), _x(rng, dtype, 6, 4), _x(rng, dtype, 4)
    layer = ref.Affine(W, b)
    out = bodies._body_bias_add(x.reshape(N, 6) @ W, b)
    assert_parity(out, layer.forward(x), dtype, reduce_len=6)
    dout = _x(rng, dtype, N, 4)
    layer.backward(dout)
    assert_parity(bodies._body_column_sum(dout), layer.db, dtype, reduce_len=max(N, 1))


def test_column_sum_more_rows_than_threads(rng, dtype):
    a = _x(rng, dtype, 1000, 3)
    assert_parity(bodies._body_column_sum(a), a.sum(axis=0), dtype, reduce_len=1000)
    a[7, 1] = np.nan
    assert np.isnan(bodies._body_column_sum(a)[1])


# ---------------------------------------------------------------- softmax, cross entropy

def test_softmax_rows(rng, dtype):
    x = _x(rng, dtype, 6, 9) * 30
    x[2, 3] = np.nan
    y = bodies._body_softmax(x)
    expected = ref_softmax(x.astype(np.float64)).astype(dtype)
    assert_parity(y, expected, dtype, reduce_len=9)
    assert np.isnan(y[2]).all() and np.isfinite(np.delete(y, 2, axis=0)).all()
    assert_parity(bodies._body_softmax(np.full((2, 3), 1e4, dtype)), np.full((2, 3), 1 / 3), dtype)


@pytest.mark.parametrize("onehot", [False, True])
def test_softmax_with_loss(rng, dtype, onehot):
    N, C = 7, 5
    x, t = _x(rng, dtype, N, C), rng.integers(0, C, N)
    layer = ref.SoftmaxWithLoss()
    tt = np.eye(C, dtype=dtype)[t] if onehot else t
    loss = layer.forward(x, tt)
    y, rows = bodies._body_softmax_ce_forward(x, t, 1e-7, None)
    assert_parity(y, layer.y, dtype, reduce_len=C)
    assert_parity(rows.sum() / N, loss, dtype, reduce_len=N)
    expected = layer.backward(2.0)
    if onehot:
        dx = bodies._body_softmax_ce_backward_dense(y, tt, 2.0 / N)
    else:
        dx = bodies._body_softmax_ce_backward(y, t, 2.0 / N, None)
    assert_parity(dx, expected, dtype)


def test_softmax_ce_ignore_label(rng, dtype):
    N, C = 6, 4
    x, t = _x(rng, dtype, N, C), np.array([0, -1, 3, -1, 2, 1])
    y, rows = bodies._body_softmax_ce_forward(x, t, 0.0, -1)
    keep = t != -1
    y_ref = ref_softmax(x)
    expected_rows = -np.log(y_ref[np.arange(N), np.where(keep, t, 0)])
    assert_parity(rows[keep], expected_rows[keep], dtype)
    assert (rows[~keep] == 0).all()
    dx = bodies._body_softmax_ce_backward(y, t, 1.0 / keep.sum(), -1)
    target = np.zeros_like(y_ref)
    target[np.arange(N)[keep], t[keep]] = 1
    assert_parity(dx, (y_ref - target) * keep[:, None] / keep.sum(), dtype)


def test_softmax_ce_bad_label_is_nan_not_a_wild_read(rng, dtype):
    x, t = _x(rng, dtype, 3, 4), np.array([0, 4, -2])
    _, rows = bodies._body_softmax_ce_forward(x, t, 1e-7, None)
    assert np.isfinite(rows[0]) and np.isnan(rows[1:]).all()
    dx = bodies._body_softmax_ce_backward(bodies._body_softmax(x), t, 1.0, None)
    assert np.isfinite(dx[0]).all() and np.isnan(dx[1:]).all()


def test_softmax_ce_gradcheck(rng):
    x, t = rng.standard_normal((4, 5)), rng.integers(0, 5, 4)

    def loss():
        return float(bodies._body_softmax_ce_forward(x, t, 0.0, None)[1].sum() / 4)

    y, _ = bodies._body_softmax_ce_forward(x, t, 0.0, None)
    gradcheck(loss, x, bodies._body_softmax_ce_backward(y, t, 0.25, None))


# ---------------------------------------------------------------- batch normalization

@pytest.mark.parametrize("N,D", [(8, 5), (1, 3), (300, 2), (0, 4)])
def test_batchnorm(rng, dtype, N, D):
    x = _x(rng, dtype, N, D) * 3 + 1
    gamma, beta = _x(rng, dtype, D), _x(rng, dtype, D)
    rm, rv = _x(rng, dtype, D), np.abs(_x(rng, dtype, D))
    layer = ref.BatchNormalization(gamma, beta, 0.9, rm.copy(), rv.copy())
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = layer.forward(x, train_flg=True)
        out, xc, xn, std, nrm, nrv = bodies._body_batchnorm_forward_train(x, gamma, beta, rm, rv,
                                                                      0.9, 10e-7)
    rl = max(N, 1)
    assert_parity(out, expected, dtype, reduce_len=rl)
    assert_parity(nrm, layer.running_mean, dtype, reduce_len=rl)
    assert_parity(nrv, layer.running_var, dtype, reduce_len=rl)
    if N == 0:
        assert np.isnan(std).all()
        return
    assert_parity(xc, layer.xc, dtype, reduce_len=rl)
    assert_parity(xn, layer.xn, dtype, reduce_len=rl)
    assert_parity(std, layer.std, dtype, reduce_len=rl)
    dout = _x(rng, dtype, N, D)
    dx, dgamma, dbeta = bodies._body_batchnorm_backward(dout, gamma, xc, xn, std)
    # dx is a difference of O(N) sums: compare at the scale of those sums.
    assert_parity(dx, layer.backward(dout), dtype, reduce_len=rl * rl)
    assert_parity(dgamma, layer.dgamma, dtype, reduce_len=rl)
    assert_parity(dbeta, layer.dbeta, dtype, reduce_len=rl)
    infer = bodies._body_batchnorm_forward_infer(x, gamma, beta, nrm, nrv, 10e-7)
    assert_parity(infer, layer.forward(x, train_flg=False), dtype, reduce_len=rl)


def test_batchnorm_gradcheck(rng):
    x, gamma, beta = rng.standard_normal((6, 3)), rng.standard_normal(3), rng.standard_normal(3)
    zeros = np.zeros(3)
    dout = rng.standard_normal((6, 3))

    def loss():
        out = bodies._body_batchnorm_forward_train(x, gamma, beta, zeros, zeros, 0.9, 10e-7)[0]
        return float(np.sum(out * dout))

    _, xc, xn, std, _, _ = bodies._body_batchnorm_forward_train(x, gamma, beta, zeros, zeros, 0.9,
                                                            10e-7)
    dx, dgamma, dbeta = bodies._body_batchnorm_backward(dout, gamma, xc, xn, std)
    gradcheck(loss, x, dx, rtol=1e-5, atol=1e-7)
    gradcheck(loss, gamma, dgamma)
    gradcheck(loss, beta, dbeta)


# ---------------------------------------------------------------- optimizers

def _book_update(name, p, state, g, hyper):
    """The book's common/optimizer.py update rules, one step, in NumPy."""
    if name == "sgd":
        p -= hyper[0] * g
    elif name == "momentum":
        state[0][...] = hyper[1] * state[0] - hyper[0] * g
        p += state[0]
    elif name == "nesterov":
        lr, mom = hyper
        state[0] *= mom
        state[0] -= lr * g
        p += mom * mom * state[0]
        p -= (1 + mom) * lr * g
    elif name == "adagrad":
        state[0] += g * g
        p -= hyper[0] * g / (np.sqrt(state[0]) + hyper[1])
    elif name == "rmsprop":
        lr, decay, eps = hyper
        state[0] *= decay
        state[0] += (1 - decay) * g * g
        p -= lr * g / (np.sqrt(state[0]) + eps)
    elif name == "adam":
        lr_t, b1, b2, eps = hyper
        state[0] += (1 - b1) * (g - state[0])
        state[1] += (1 - b2) * (g ** 2 - state[1])
        p -= lr_t * state[0] / (np.sqrt(state[1]) + eps)


OPTIMIZERS = {
    "sgd": (0, [0.1]),
    "momentum": (1, [0.1, 0.9]),
    "nesterov": (1, [0.1, 0.9]),
    "adagrad": (1, [0.1, 1e-7]),
    "rmsprop": (1, [0.1, 0.99, 1e-7]),
    "adam": (2, [0.01, 0.9, 0.999, 1e-8]),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_bodies(rng, dtype, name):
    n_state, hyper = OPTIMIZERS[name]
    p = _x(rng, dtype, 4, 6)
    state = [np.abs(_x(rng, dtype, 4, 6)) for _ in range(n_state)]
    p_ref, state_ref = p.copy(), [s.copy() for s in state]
    hyper_t = [dtype.type(h) for h in hyper]
    for _ in range(3):
        g = _x(rng, dtype, 4, 6)
        bodies._body_optim(name, p, state, g, hyper)
        _book_update(name, p_ref, state_ref, g, hyper_t)
    assert_parity(p, p_ref, dtype, reduce_len=3)
    for s, s_ref in zip(state, state_ref):
        assert_parity(s, s_ref, dtype, reduce_len=3)


def test_optimizer_body_bad_name(dtype):
    p = np.zeros(3, dtype)
    with pytest.raises(ValueError, match="unknown optimizer"):
        bodies._body_optim("lion", p, [], p.copy(), [0.1])
    with pytest.raises(ValueError, match="missing state"):
        bodies._body_optim("adam", p, [], p.copy(), [0.1, 0.9, 0.999, 1e-8])


# ---------------------------------------------------------------- recurrent (rnn, lstm, gru)
# The time loops of csrc/cuda/{rnn,lstm,gru}.cu, step for step, with NumPy for cuBLAS and the
# step bodies of body/recurrent.h, against the CPU kernels (ops). The backward passes get the
# CPU forward's caches, so each direction is compared on its own.

def _kg(W, torch_layout):
    """A gate weight seen as (K, G), as GateWeight reads it."""
    return W.T if torch_layout else W


def _from_kg(dW, torch_layout):
    return np.ascontiguousarray(dW.T if torch_layout else dW)


def _input_projection(x, Wx, b, torch_layout):
    T, N, D = x.shape
    out = x.reshape(T * N, D) @ _kg(Wx, torch_layout)
    if b is not None:
        out = bodies._body_bias_add(out, b)
    return out.reshape(T, N, -1)


def _grad_w_hidden(h0, hs, dG):
    """sum_t h_{t-1}^T dG_t: h_0 .. h_{T-2} in one product, plus h0^T dG_0 when h0 is given."""
    K, G = hs.shape[2], dG.shape[2]
    dW = hs[:-1].reshape(-1, K).T @ dG[1:].reshape(-1, G)
    return dW if h0 is None else dW + h0.T @ dG[0]


def _input_grads(x, Wx, dG, torch_layout):
    """(dx, dWx, db) from the gate gradients of every step."""
    T, N, D = x.shape
    dG2 = dG.reshape(T * N, -1)
    dx = (dG2 @ _kg(Wx, torch_layout).T).reshape(T, N, D)
    return dx, _from_kg(x.reshape(T * N, D).T @ dG2, torch_layout), bodies._body_column_sum(dG2)


def _gpu_rnn_forward(x, h0, Wx, Wh, b, relu, torch_layout):
    hs = _input_projection(x, Wx, b, torch_layout)
    wh = _kg(Wh, torch_layout)
    for t in range(len(hs)):
        h_prev = hs[t - 1] if t else h0
        pre = hs[t] if h_prev is None else hs[t] + h_prev @ wh
        hs[t] = bodies._body_rnn_step_forward(np.ascontiguousarray(pre), relu)
    return hs


def _gpu_rnn_backward(x, h0, Wx, Wh, hs, dhs, dhn, relu, torch_layout):
    T, N, _ = x.shape
    H = hs.shape[2]
    wh = _kg(Wh, torch_layout)
    dh_all = bodies._body_dh_seed(dhs, dhn, T, N, H)
    dh0 = np.zeros((N, H), x.dtype)
    dG = np.empty_like(hs)
    for t in reversed(range(T)):
        dG[t] = bodies._body_rnn_step_backward(hs[t], dh_all[t], relu)
        dh_prev = dh_all[t - 1] if t else dh0
        dh_prev += dG[t] @ wh.T
    dx, dWx, db = _input_grads(x, Wx, dG, torch_layout)
    return dx, dh0, dWx, _from_kg(_grad_w_hidden(h0, hs, dG), torch_layout), db


def _gpu_lstm_forward(x, h0, c0, Wx, Wh, b, Whr, torch_layout):
    gates = _input_projection(x, Wx, b, torch_layout)
    T, N, G = gates.shape
    H = G // 4
    wh = _kg(Wh, torch_layout)
    hs, cs = np.empty((T, N, wh.shape[0]), x.dtype), np.empty((T, N, H), x.dtype)
    hfull = None if Whr is None else np.empty((T, N, H), x.dtype)
    for t in range(T):
        h_prev = hs[t - 1] if t else h0
        c_prev = cs[t - 1] if t else c0
        A = gates[t] if h_prev is None else gates[t] + h_prev @ wh
        gates[t], cs[t], h_cell = bodies._body_lstm_step_forward(np.ascontiguousarray(A), c_prev,
                                                             torch_layout)
        if Whr is None:
            hs[t] = h_cell
        else:
            hfull[t], hs[t] = h_cell, h_cell @ Whr.T
    return hs, cs, gates, hfull


def _gpu_lstm_backward(x, h0, c0, Wx, Wh, Whr, hs, cs, gates, hfull, dhs, dhn, dcn,
                       torch_layout):
    T, N, _ = x.shape
    P, H = hs.shape[2], cs.shape[2]
    wh = _kg(Wh, torch_layout)
    dc = np.zeros((N, H), x.dtype) if dcn is None else dcn
    dh_all = bodies._body_dh_seed(dhs, dhn, T, N, P)
    dh0 = np.zeros((N, P), x.dtype)
    dG = np.empty_like(gates)
    for t in reversed(range(T)):
        dhc = dh_all[t] if Whr is None else dh_all[t] @ Whr
        c_prev = cs[t - 1] if t else c0
        dG[t], dc = bodies._body_lstm_step_backward(gates[t], cs[t], c_prev,
                                                np.ascontiguousarray(dhc), dc, torch_layout)
        dh_prev = dh_all[t - 1] if t else dh0
        dh_prev += dG[t] @ wh.T
    dx, dWx, db = _input_grads(x, Wx, dG, torch_layout)
    dWhr = None if Whr is None else dh_all.reshape(T * N, P).T @ hfull.reshape(T * N, H)
    return (dx, dh0, dc, dWx, _from_kg(_grad_w_hidden(h0, hs, dG), torch_layout), db, dWhr)


def _gpu_gru_forward(x, h0, Wx, Wh, bx, bh, torch_layout):
    gates = _input_projection(x, Wx, bx, torch_layout)
    T, N, G = gates.shape
    H = G // 3
    wh = _kg(Wh, torch_layout)
    hs, aux = np.empty((T, N, H), x.dtype), np.empty((T, N, H), x.dtype)
    for t in range(T):
        h_prev = hs[t - 1] if t else h0
        A = gates[t].copy()
        if torch_layout:
            hg = None if h_prev is None else np.ascontiguousarray(h_prev @ wh)
            gates[t], aux[t], hs[t] = bodies._body_gru_torch_step_forward(A, hg, bh, h_prev)
        else:  # blocks z, r, n
            if h_prev is not None:
                A[:, :2 * H] += h_prev @ wh[:, :2 * H]
            A, aux[t] = bodies._body_gru_book_step_forward_zr(A, h_prev)
            if h_prev is not None:
                A[:, 2 * H:] += aux[t] @ wh[:, 2 * H:]
            gates[t], hs[t] = bodies._body_gru_book_step_forward_n(A, h_prev)
    return hs, gates, aux


def _gpu_gru_backward(x, h0, Wx, Wh, hs, gates, aux, dhs, dhn, torch_layout):
    T, N, _ = x.shape
    H = hs.shape[2]
    wh = _kg(Wh, torch_layout)
    dh_all = bodies._body_dh_seed(dhs, dhn, T, N, H)
    dh0 = np.zeros((N, H), x.dtype)
    dG, dGh = np.empty_like(gates), np.empty_like(gates)
    for t in reversed(range(T)):
        h_prev = hs[t - 1] if t else h0
        dh_prev = dh_all[t - 1] if t else dh0
        if torch_layout:
            dG[t], dGh[t], new = bodies._body_gru_torch_step_backward(gates[t], aux[t], h_prev,
                                                                   dh_all[t], dh_prev)
            dh_prev[...] = new + dGh[t] @ wh.T
        else:
            dA = bodies._body_gru_book_step_backward_zn(gates[t], h_prev, dh_all[t])
            drh = np.ascontiguousarray(dA[:, 2 * H:] @ wh[:, 2 * H:].T)
            dG[t], new = bodies._body_gru_book_step_backward_r(gates[t], h_prev, dh_all[t], drh, dA,
                                                           dh_prev)
            dh_prev[...] = new + dG[t][:, :2 * H] @ wh[:, :2 * H].T
    dx, dWx, dbx = _input_grads(x, Wx, dG, torch_layout)
    if torch_layout:
        dWh, dbh = _grad_w_hidden(h0, hs, dGh), bodies._body_column_sum(dGh.reshape(T * N, -1))
    else:
        dWh = np.concatenate([_grad_w_hidden(h0, hs, dG[:, :, :2 * H]),
                              aux.reshape(-1, H).T @ dG[:, :, 2 * H:].reshape(-1, H)], axis=1)
        dbh = None
    return dx, dh0, dWx, _from_kg(dWh, torch_layout), dbx, dbh


def _seq_inputs(rng, dtype, T, N, D, H, g, torch_layout, P=None):
    """x, Wx, Wh, b (each layout's shapes, gate dimension g*H; Wh's input size P or H)."""
    P = H if P is None else P
    G = g * H
    x = _x(rng, dtype, T, N, D)
    Wx = (rng.standard_normal((G, D) if torch_layout else (D, G)) * 0.5).astype(dtype)
    Wh = (rng.standard_normal((G, P) if torch_layout else (P, G)) * 0.5).astype(dtype)
    return x, Wx, Wh, _x(rng, dtype, G)


def _check_results(got, want, dtype, reduce_len):
    assert len(got) == len(want)
    for i, (a, e) in enumerate(zip(got, want)):
        if e is None:
            assert a is None, f"result {i}"
        else:
            assert_parity(a, e, dtype, reduce_len=reduce_len, err_msg=f"result {i}")


LAYOUTS = pytest.mark.parametrize("torch_layout", [False, True], ids=["book", "torch"])
STATES = pytest.mark.parametrize("states", [False, True], ids=["zero-state", "h0"])
SEQ_SHAPES = [(5, 3, 4, 6), (1, 1, 1, 1), (3, 2, 0, 3)]  # (T, N, D, H); D = 0: no input


@LAYOUTS
@STATES
@pytest.mark.parametrize("relu", [False, True], ids=["tanh", "relu"])
@pytest.mark.parametrize("shape", SEQ_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_rnn_bodies_match_cpu(rng, dtype, torch_layout, states, relu, shape):
    T, N, D, H = shape
    x, Wx, Wh, b = _seq_inputs(rng, dtype, T, N, D, H, 1, torch_layout)
    h0 = _x(rng, dtype, N, H) if states else None
    b = b if states else None  # the bias is optional too
    hs = ops.rnn_forward(x, h0, Wx, Wh, b, relu, torch_layout)
    assert_parity(_gpu_rnn_forward(x, h0, Wx, Wh, b, relu, torch_layout), hs, dtype,
                  reduce_len=D + H)
    dhs = _x(rng, dtype, *hs.shape)
    dhn = _x(rng, dtype, N, H) if states else None
    _check_results(_gpu_rnn_backward(x, h0, Wx, Wh, hs, dhs, dhn, relu, torch_layout),
                   ops.rnn_backward(x, h0, Wx, Wh, hs, dhs, dhn, relu, torch_layout), dtype,
                   T * N * H)


@LAYOUTS
@STATES
@pytest.mark.parametrize("shape", SEQ_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_lstm_bodies_match_cpu(rng, dtype, torch_layout, states, shape):
    T, N, D, H = shape
    x, Wx, Wh, b = _seq_inputs(rng, dtype, T, N, D, H, 4, torch_layout)
    h0, c0 = (_x(rng, dtype, N, H), _x(rng, dtype, N, H)) if states else (None, None)
    fwd = ops.lstm_forward(x, h0, c0, Wx, Wh, b, None, torch_layout)
    _check_results(_gpu_lstm_forward(x, h0, c0, Wx, Wh, b, None, torch_layout), fwd, dtype,
                   D + H)
    hs, cs, gates, _ = fwd
    dhs = _x(rng, dtype, *hs.shape)
    dhn, dcn = (_x(rng, dtype, N, H), _x(rng, dtype, N, H)) if states else (None, None)
    args = (x, h0, c0, Wx, Wh, None, hs, cs, gates, None, dhs, dhn, dcn, torch_layout)
    _check_results(_gpu_lstm_backward(*args), ops.lstm_backward(*args), dtype, T * N * 4 * H)


@STATES
def test_lstm_projection_bodies_match_cpu(rng, dtype, states):
    T, N, D, H, P = 4, 3, 5, 6, 2
    x, Wx, Wh, b = _seq_inputs(rng, dtype, T, N, D, H, 4, True, P)
    Whr = (rng.standard_normal((P, H)) * 0.5).astype(dtype)
    h0, c0 = (_x(rng, dtype, N, P), _x(rng, dtype, N, H)) if states else (None, None)
    fwd = ops.lstm_forward(x, h0, c0, Wx, Wh, b, Whr, True)
    _check_results(_gpu_lstm_forward(x, h0, c0, Wx, Wh, b, Whr, True), fwd, dtype, D + H)
    hs, cs, gates, hfull = fwd
    dhs = _x(rng, dtype, *hs.shape)
    dhn = _x(rng, dtype, N, P) if states else None
    args = (x, h0, c0, Wx, Wh, Whr, hs, cs, gates, hfull, dhs, dhn, None, True)
    _check_results(_gpu_lstm_backward(*args), ops.lstm_backward(*args), dtype, T * N * 4 * H)


@LAYOUTS
@STATES
@pytest.mark.parametrize("shape", SEQ_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gru_bodies_match_cpu(rng, dtype, torch_layout, states, shape):
    T, N, D, H = shape
    x, Wx, Wh, bx = _seq_inputs(rng, dtype, T, N, D, H, 3, torch_layout)
    h0 = _x(rng, dtype, N, H) if states else None
    bh = _x(rng, dtype, 3 * H) if torch_layout and states else None
    fwd = ops.gru_forward(x, h0, Wx, Wh, bx, bh, torch_layout)
    _check_results(_gpu_gru_forward(x, h0, Wx, Wh, bx, bh, torch_layout), fwd, dtype, D + H)
    hs, gates, aux = fwd
    dhs = _x(rng, dtype, *hs.shape)
    dhn = _x(rng, dtype, N, H) if states else None
    args = (x, h0, Wx, Wh, hs, gates, aux, dhs, dhn, torch_layout)
    _check_results(_gpu_gru_backward(*args), ops.gru_backward(*args), dtype, T * N * 3 * H)


def test_dh_seed_adds_dhn_to_the_last_step(rng, dtype):
    T, N, P = 3, 2, 4
    dhs = _x(rng, dtype, T, N, P)
    dhn = _x(rng, dtype, N, P)
    expected = dhs.copy()
    expected[-1] += dhn
    np.testing.assert_array_equal(bodies._body_dh_seed(dhs, dhn, T, N, P), expected)
    np.testing.assert_array_equal(bodies._body_dh_seed(dhs, None, T, N, P), dhs)
    only_dhn = bodies._body_dh_seed(None, dhn, T, N, P)
    np.testing.assert_array_equal(only_dhn[-1], dhn)
    assert (only_dhn[:-1] == 0).all()


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_recurrent_bodies_propagate_nan(rng, dtype, family):
    T, N, D, H = 3, 2, 3, 4
    lstm = family == "lstm"
    x, Wx, Wh, b = _seq_inputs(rng, dtype, T, N, D, H, 4 if lstm else 3, not lstm)
    x[0, 1, 0] = np.nan
    if lstm:
        hs = _gpu_lstm_forward(x, None, None, Wx, Wh, b, None, False)[0]
    else:
        hs = _gpu_gru_forward(x, None, Wx, Wh, b, None, True)[0]
    # x[0, 1, 0] reaches every gate of sample 1 at step 0 and the recurrence carries it on;
    # sample 0 never sees it.
    assert np.isnan(hs[:, 1]).all() and np.isfinite(hs[:, 0]).all()


def test_recurrent_body_size_checks(dtype):
    with pytest.raises(ValueError, match="state size mismatch: expected 4 elements, got 3"):
        bodies._body_lstm_step_forward(np.zeros((2, 8), dtype), np.zeros(3, dtype), False)
    with pytest.raises(ValueError, match=r"A must be \(N, 3H\)"):
        bodies._body_gru_book_step_forward_zr(np.zeros((2, 4), dtype), None)
    with pytest.raises(ValueError, match="hg/bh size mismatch"):
        bodies._body_gru_torch_step_forward(np.zeros((2, 6), dtype), None, np.zeros(5, dtype), None)
    with pytest.raises(ValueError, match="dh_seed: size mismatch"):
        bodies._body_dh_seed(None, None, 0, 2, 3)
