import numpy as np
import pytest

from fastnn import ops
from fastnn.layers import Convolution
from fastnn.reference import layers as ref
from conftest import assert_parity, gradcheck

# (N, C, H, W, FN, FH, FW, stride, pad)
SHAPES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 0),
    (3, 1, 28, 28, 6, 5, 5, 1, 0),
    (2, 3, 7, 9, 4, 3, 2, 2, 1),
    (5, 2, 6, 11, 3, 4, 1, 3, 2),
    (2, 2, 3, 2, 3, 5, 5, 1, 2),
    (3, 16, 40, 37, 4, 3, 3, 1, 1),   # several blocks of output rows per image
    # Padded: the kernels' bordered image copies, with stride > 1, pad wider than the kernel,
    # non-square images and kernels, batch 0 and 1, and images of several row blocks.
    (0, 2, 5, 7, 3, 3, 2, 1, 1),
    (1, 2, 5, 7, 3, 3, 2, 1, 1),
    (4, 3, 9, 6, 5, 4, 3, 2, 2),
    (3, 2, 6, 5, 2, 2, 3, 3, 3),
    (5, 1, 1, 1, 2, 3, 3, 1, 1),
    (2, 32, 70, 45, 3, 5, 3, 2, 2),
    # DeepConvNet's second layer: float32 GEMMs in row chunks OpenBLAS runs unpacked (core/blas.h)
    (2, 16, 28, 28, 16, 3, 3, 1, 1),
    # Stride 1 (csrc/cpu/conv.cpp): forward tap by tap (8+ channels), dx by the transposed
    # convolution tap by tap (fewer filters than channels, or as many and at most 32; with
    # row and column paddings that differ), by its columns (under 8 filters), or by col2im;
    # 1x1 filters reading the image in place, or copying it (many float32 filters).
    (2, 16, 9, 11, 8, 3, 3, 1, 1),
    (2, 12, 8, 8, 12, 3, 3, 1, 1),
    (2, 16, 7, 9, 8, 3, 2, 1, 0),
    (2, 6, 7, 7, 3, 3, 3, 1, 1),
    (2, 8, 9, 9, 16, 5, 5, 1, 2),
    (3, 8, 5, 6, 4, 1, 1, 1, 0),
    (2, 24, 32, 32, 144, 1, 1, 1, 0),
]


def make(rng, shape, dtype):
    N, C, H, W, FN, FH, FW, stride, pad = shape
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((FN, C, FH, FW)).astype(dtype)
    b = rng.standard_normal(FN).astype(dtype)
    return x, Wt, b, stride, pad


def check_against_reference(layer, ref_layer, x, rng, dtype):
    out = layer.forward(x)
    expected = ref_layer.forward(x)
    C, FH, FW = layer.W.shape[1:]
    assert_parity(out, expected, dtype, reduce_len=C * FH * FW)
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert_parity(layer.backward(dout), ref_layer.backward(dout), dtype,
                  reduce_len=layer.W.shape[0])
    positions = x.shape[0] * out.shape[2] * out.shape[3]
    assert_parity(layer.dW, ref_layer.dW, dtype, reduce_len=positions)
    assert_parity(layer.db, ref_layer.db, dtype, reduce_len=positions)


@pytest.mark.parametrize("shape", SHAPES)
def test_parity_with_reference(rng, dtype, threads, shape):
    x, Wt, b, stride, pad = make(rng, shape, dtype)
    layer = Convolution(Wt, b, stride, pad)
    ref_layer = ref.Convolution(Wt, b, stride, pad)
    check_against_reference(layer, ref_layer, x, rng, dtype)
    np.testing.assert_array_equal(layer.col, ref_layer.col)
    np.testing.assert_array_equal(layer.col_W, ref_layer.col_W)
    assert layer.x is x


def test_randomized_shapes(dtype):
    rng = np.random.default_rng(7)
    for _ in range(12):
        FH, FW = rng.integers(1, 5, size=2)
        pad, stride = int(rng.integers(0, 3)), int(rng.integers(1, 4))
        H = int(rng.integers(max(1, FH - 2 * pad), 12))
        W = int(rng.integers(max(1, FW - 2 * pad), 12))
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 4)), H, W, int(rng.integers(1, 5)),
                 FH, FW, stride, pad)
        x, Wt, b, stride, pad = make(rng, shape, dtype)
        check_against_reference(Convolution(Wt, b, stride, pad),
                                ref.Convolution(Wt, b, stride, pad), x, rng, dtype)


@pytest.mark.parametrize("stride,pad", [(1, 0), (2, 1), (1, 2)])
def test_gradients_numerically(rng, stride, pad):
    x, Wt, b, _, _ = make(rng, (2, 2, 5, 6, 3, 3, 2, stride, pad), np.float64)
    layer = Convolution(Wt, b, stride, pad)
    dout = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(dout)

    def loss():
        return np.sum(layer.forward(x) * dout)

    gradcheck(loss, x, dx)
    gradcheck(loss, Wt, layer.dW)
    gradcheck(loss, b, layer.db)


def test_in_place_updates_are_seen(rng):
    x, Wt, b, _, _ = make(rng, (2, 2, 6, 6, 3, 3, 3, 1, 1), np.float32)
    layer = Convolution(Wt, b, 1, 1)
    layer.forward(x)
    dout = np.ones((2, 3, 6, 6), np.float32)
    layer.backward(dout)
    Wt -= 0.1 * layer.dW
    b -= 0.1 * layer.db
    assert layer.W is Wt and layer.b is b
    assert_parity(layer.forward(x), ref.Convolution(Wt, b, 1, 1).forward(x), np.float32,
                  reduce_len=18)
    np.testing.assert_array_equal(layer.col_W, Wt.reshape(3, -1).T)


def test_mixed_dtypes(rng):
    x, Wt, b, _, _ = make(rng, (2, 1, 8, 8, 3, 3, 3, 1, 0), np.float32)
    W64, b64 = Wt.astype(np.float64), b.astype(np.float64)
    layer, ref_layer = Convolution(W64, b64), ref.Convolution(W64, b64)
    out = layer.forward(x)
    assert out.dtype == np.float64
    # The float64 computation on the float32 values:
    assert_parity(out, ref_layer.forward(x.astype(np.float64)), np.float64)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = layer.backward(dout)
    assert dx.dtype == layer.dW.dtype == layer.db.dtype == np.float64
    assert_parity(dx, ref_layer.backward(dout.astype(np.float64)), np.float64)
    assert_parity(layer.dW, ref_layer.dW, np.float64)
    # Integer images with float32 weights promote like NumPy: int64 + float32 -> float64.
    xi = rng.integers(0, 255, size=(2, 1, 8, 8))
    assert Convolution(Wt, b).forward(xi).dtype == np.float64


def test_layouts(rng, dtype):
    x, Wt, b, _, _ = make(rng, (3, 2, 9, 7, 4, 3, 3, 2, 1), dtype)
    expected = ref.Convolution(Wt, b, 2, 1).forward(x)
    wide = np.zeros((3, 2, 9, 14), dtype)
    wide[..., ::2] = x
    W_f = np.asfortranarray(Wt)
    W_neg = Wt[:, :, ::-1, ::-1][:, :, ::-1, ::-1]  # same values, negative strides
    for xv, Wv in [(np.asfortranarray(x), Wt), (wide[..., ::2], W_f), (x, W_neg)]:
        assert_parity(Convolution(Wv, b, 2, 1).forward(xv), expected, dtype, reduce_len=18)
    b2 = b.reshape(1, -1)
    assert_parity(Convolution(Wt, b2, 2, 1).forward(x), expected, dtype, reduce_len=18)


def test_without_bias(rng):
    x, Wt, b, _, _ = make(rng, (2, 2, 5, 5, 3, 3, 3, 1, 0), np.float64)
    out = ops.conv2d_forward(x, Wt, None)
    assert_parity(out, ref.Convolution(Wt, np.zeros(3)).forward(x), np.float64)


def test_empty_batch(dtype):
    Wt, b = np.ones((4, 3, 3, 3), dtype), np.ones(4, dtype)
    layer = Convolution(Wt, b, 1, 1)
    out = layer.forward(np.zeros((0, 3, 8, 6), dtype))
    assert out.shape == (0, 4, 8, 6) and out.dtype == dtype
    dx = layer.backward(np.zeros((0, 4, 8, 6), dtype))
    assert dx.shape == (0, 3, 8, 6)
    np.testing.assert_array_equal(layer.dW, np.zeros_like(Wt))
    np.testing.assert_array_equal(layer.db, np.zeros(4))


def test_nan_propagates(rng):
    x, Wt, b, _, _ = make(rng, (2, 1, 8, 8, 2, 3, 3, 1, 0), np.float64)
    x[1, 0, 4, 4] = np.nan
    layer, ref_layer = Convolution(Wt, b), ref.Convolution(Wt, b)
    out = layer.forward(x)
    expected = ref_layer.forward(x)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    assert np.isnan(out).sum() == 2 * 9
    dout = np.ones_like(out)
    layer.backward(dout)
    ref_layer.backward(dout)
    np.testing.assert_array_equal(np.isnan(layer.dW), np.isnan(ref_layer.dW))
    assert np.isnan(layer.dW).all()


def test_attributes_before_forward():
    layer = Convolution(np.ones((2, 1, 3, 3)), np.zeros(2))
    assert layer.x is None and layer.col is None and layer.col_W is None
    assert layer.dW is None and layer.db is None


def test_bad_inputs():
    x = np.zeros((2, 3, 8, 8))
    W, b = np.zeros((4, 3, 3, 3)), np.zeros(4)
    cases = [
        (lambda: Convolution(W, b).forward(x[0]), ValueError,
         r"Convolution: x must be 4-D \(N, C, H, W\), got 3-D "
         r"\(x.shape=\(3, 8, 8\), W.shape=\(4, 3, 3, 3\)\)"),
        (lambda: Convolution(W[0], b).forward(x), ValueError,
         r"Convolution: W must be 4-D \(FN, C, FH, FW\), got 3-D"),
        (lambda: Convolution(np.zeros((4, 1, 3, 3)), b).forward(x), ValueError,
         r"Convolution: x has 3 channels but W expects 1 "
         r"\(x.shape=\(2, 3, 8, 8\), W.shape=\(4, 1, 3, 3\)\)"),
        (lambda: Convolution(np.zeros((4, 3, 9, 3)), b).forward(x), ValueError,
         r"Convolution: window 9x3 is larger than the padded input 8x8"),
        (lambda: Convolution(W, b, stride=0).forward(x), ValueError,
         r"Convolution: stride must be >= 1, got 0"),
        (lambda: Convolution(W, b, pad=-1).forward(x), ValueError,
         r"Convolution: pad must be >= 0, got -1"),
        (lambda: Convolution(W, np.zeros(3)).forward(x), ValueError,
         r"Convolution: b must have FN=4 elements.*b.shape=\(3,\)"),
        (lambda: Convolution(np.zeros((4, 3, 0, 3)), b).forward(x), ValueError,
         r"Convolution: window size must be at least 1x1, got 0x3"),
        (lambda: Convolution(W, b).forward(x.astype(complex)), TypeError,
         r"Convolution: arrays of dtype complex128 are not supported"),
        (lambda: Convolution(W.astype(object), b).forward(x), TypeError,
         r"Convolution: arrays of dtype object are not supported"),
        (lambda: Convolution(W, b, stride=1.0).forward(x), TypeError,
         r"Convolution: stride must be an integer"),
    ]
    for call, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            call()
    layer = Convolution(W, b)
    layer.forward(x)
    with pytest.raises(ValueError, match=r"Convolution.backward: dout has shape \(2, 4, 6, 5\) "
                                         r"but the forward output had shape \(2, 4, 6, 6\)"):
        layer.backward(np.zeros((2, 4, 6, 5)))
    with pytest.raises(TypeError, match="Convolution: arrays of dtype complex128"):
        layer.backward(np.zeros((2, 4, 6, 6), complex))


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="Convolution.backward called before forward"):
        Convolution(np.ones((2, 1, 3, 3)), np.zeros(2)).backward(np.ones((1, 2, 3, 3)))


def test_zero_channels_and_zero_filters(threads):
    # No input channels: the output is the bias and the gradients are empty or sums of dout.
    layer = Convolution(np.ones((3, 0, 2, 2)), np.array([1.0, 2.0, 3.0]))
    out = layer.forward(np.ones((2, 0, 4, 4)))
    expected = np.ones((2, 3, 3, 3)) * np.array([1.0, 2.0, 3.0])[:, None, None]
    np.testing.assert_array_equal(out, expected)
    assert layer.backward(np.ones_like(out)).shape == (2, 0, 4, 4)
    np.testing.assert_array_equal(layer.db, [18.0, 18.0, 18.0])
    # No filters: an empty output and a zero input gradient.
    layer = Convolution(np.ones((0, 2, 2, 2)), np.ones(0))
    out = layer.forward(np.ones((2, 2, 4, 4)))
    assert out.shape == (2, 0, 3, 3)
    np.testing.assert_array_equal(layer.backward(out), np.zeros((2, 2, 4, 4)))


def test_concurrent_calls_from_python_threads(rng):
    # The GIL is released and scratch buffers are per thread: parallel callers do not interfere.
    from concurrent.futures import ThreadPoolExecutor
    cases = [make(rng, (4, 3, 12, 10, 5, 3, 3, 1, 1), np.float64) for _ in range(4)]
    expected = [ref.Convolution(Wt, b, s, p).forward(x) for x, Wt, b, s, p in cases]

    def run(case):
        x, Wt, b, s, p = case
        return [Convolution(Wt, b, s, p).forward(x) for _ in range(20)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, cases))
    for outs, exp in zip(results, expected):
        for out in outs:
            assert_parity(out, exp, np.float64, reduce_len=27)


@pytest.mark.parametrize("shape", SHAPES)
def test_param_backward_without_dx_matches_reference(rng, dtype, threads, shape):
    # The path a network's first layer takes: dW and db only, dx never computed.
    x, Wt, b, stride, pad = make(rng, shape, dtype)
    layer, ref_layer = Convolution(Wt, b, stride, pad), ref.Convolution(Wt, b, stride, pad)
    out = layer.forward(x)
    ref_layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert layer._param_backward(dout) is None
    ref_layer.backward(dout)
    positions = x.shape[0] * out.shape[2] * out.shape[3]
    assert_parity(layer.dW, ref_layer.dW, dtype, reduce_len=positions)
    assert_parity(layer.db, ref_layer.db, dtype, reduce_len=positions)
    dx, dW, db = ops.conv2d_backward(dout, x, Wt, b, stride, pad, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dW, layer.dW)
    with pytest.raises(RuntimeError, match="before forward|forward"):
        Convolution(Wt, b, stride, pad)._param_backward(dout)



@pytest.mark.parametrize("pad", [0, 1])
def test_editing_x_after_forward_leaves_backward_alone(rng, pad):
    # The book keeps col, the columns of x taken at forward time: an in-place edit of x before
    # backward changes neither dW nor col. The layer still exposes the caller's x.
    x = rng.standard_normal((2, 3, 6, 5))
    Wt, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    layer = Convolution(Wt, b, 1, pad)
    book = ref.Convolution(Wt, b, 1, pad)
    out = layer.forward(x)
    book.forward(x.copy())
    col = layer.col
    x *= 0.5
    assert layer.x is x
    dout = rng.standard_normal(out.shape)
    assert_parity(layer.backward(dout), book.backward(dout), np.float64)
    assert_parity(layer.dW, book.dW, np.float64)
    np.testing.assert_array_equal(layer.col, col)
    layer.forward(x)
    layer._param_backward(dout)
    assert_parity(layer.dW, 0.5 * book.dW, np.float64)


@pytest.mark.parametrize("shape", [(2, 2, 6, 6, 1, 3, 1), (2, 16, 8, 8, 8, 3, 1),
                                   (2, 16, 8, 8, 8, 3, 0), (2, 3, 5, 5, 4, 1, 0)])
def test_inf_weight_gives_numpys_dx(shape):
    """A weight of inf: dx as NumPy's (the book's) col2im gives it (inf, no NaN from the zero
    border of dout, which the transposed-convolution path would multiply by the weight)."""
    N, C, H, W, FN, K, pad = shape
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, C, H, W))
    Wt = rng.standard_normal((FN, C, K, K))
    Wt[0, 0, 0, 0] = np.inf
    b = np.zeros(FN)
    ours, theirs = Convolution(Wt, b, 1, pad), ref.Convolution(Wt, b, 1, pad)
    y = ours.forward(x)
    dout = rng.standard_normal(y.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        theirs.forward(x)
        expected = theirs.backward(dout)
    got = ours.backward(dout)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))


def test_each_forward_keeps_its_own_input(rng):
    """The copy of x kept for backward is reused between batches of one shape: the second
    forward's backward sees the second x as it was, and the caller's arrays stay untouched."""
    Wt, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    layer, book = Convolution(Wt, b, 1, 1), ref.Convolution(Wt, b, 1, 1)
    x1, x2 = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 3, 6, 5))
    x1_before = x1.copy()
    layer.forward(x1)
    out = layer.forward(x2)
    book.forward(x2.copy())
    x2 += 1.0
    dout = rng.standard_normal(out.shape)
    assert_parity(layer.backward(dout), book.backward(dout), np.float64)
    assert_parity(layer.dW, book.dW, np.float64)
    np.testing.assert_array_equal(x1, x1_before)
    x3 = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)  # another shape and dtype
    book3 = ref.Convolution(Wt, b, 1, 1)
    out3 = layer.forward(x3)
    book3.forward(x3)
    dout3 = rng.standard_normal(out3.shape)
    assert_parity(layer.backward(dout3), book3.backward(dout3), np.float64)


# Grouped and depthwise shapes (N, C, H, W, FN, FH, FW, stride, pad, groups) beside SHAPES:
# the depthwise kernel copies x plane by plane as it splits it, at strides 1, 2 and 3.
KEEP_GROUPED = [(3, 6, 9, 8, 12, 3, 3, 2, 1, 6), (2, 4, 7, 7, 4, 3, 3, 1, 1, 4),
                (2, 5, 11, 10, 5, 3, 3, 3, 1, 5), (2, 8, 7, 6, 6, 3, 2, 1, 1, 2),
                (0, 4, 5, 5, 4, 3, 3, 1, 1, 4), (2, 3, 5, 5, 0, 3, 3, 1, 1, 1)]


@pytest.mark.parametrize("shape", [s + (1,) for s in SHAPES] + KEEP_GROUPED)
def test_keep_receives_a_copy_of_x(rng, dtype, threads, shape):
    """conv2d_forward(keep=...) writes x into keep, on every kernel path, and the output is the
    one without keep."""
    N, C, H, W, FN, FH, FW, stride, pad, groups = shape
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((FN, C // groups, FH, FW)).astype(dtype)
    b = rng.standard_normal(FN).astype(dtype)
    keep = np.full_like(x, np.nan)
    out = ops.conv2d_forward(x, Wt, b, stride, pad, groups=groups, keep=keep)
    np.testing.assert_array_equal(keep, x)
    np.testing.assert_array_equal(out, ops.conv2d_forward(x, Wt, b, stride, pad, groups=groups))


def test_keep_when_the_kernel_cannot_write_it(rng):
    """keep is still x's copy where the kernel computes in another dtype or keep is strided."""
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    Wt, b = rng.standard_normal((3, 1, 3, 3)), np.zeros(3)   # float64: computes in float64
    keep = np.zeros_like(x)
    ops.conv2d_forward(x, Wt, b, 2, 1, groups=3, keep=keep)
    np.testing.assert_array_equal(keep, x)
    strided = np.zeros((2, 3, 6, 12), np.float32)[..., ::2]
    ops.conv2d_forward(x, Wt.astype(np.float32), b, 1, 1, groups=3, keep=strided)
    np.testing.assert_array_equal(strided, x)


@pytest.mark.parametrize("keep, kind, error", [
    (np.zeros((2, 3, 6, 5)), ValueError, "keep must be a NumPy array of x's shape (2, 3, 6, 6) "
     "and dtype float64, got shape (2, 3, 6, 5)"),
    (np.zeros((2, 3, 6, 6), np.float32), ValueError, "got shape (2, 3, 6, 6) and dtype float32"),
    ([[0.0]], TypeError, "keep must be a NumPy array of x's shape (2, 3, 6, 6) and dtype "
     "float64, got list"),
])
def test_bad_keep(rng, keep, kind, error):
    x = rng.standard_normal((2, 3, 6, 6))
    with pytest.raises(kind) as e:
        ops.conv2d_forward(x, rng.standard_normal((3, 1, 3, 3)), None, 1, 1, groups=3, keep=keep)
    assert error in str(e.value)


@pytest.mark.parametrize("x_dtype", [np.float64, np.float32])  # the kernel's copy, NumPy's
@pytest.mark.parametrize("groups", [1, 3])
def test_read_only_keep(rng, x_dtype, groups):
    x = rng.standard_normal((2, 3, 6, 6)).astype(x_dtype)
    keep = np.zeros_like(x)
    keep.flags.writeable = False
    with pytest.raises(ValueError, match="^Convolution: keep is read-only$"):
        ops.conv2d_forward(x, rng.standard_normal((3, 3 // groups, 3, 3)), None, 1, 1,
                           groups=groups, keep=keep)


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_layer_ignores_edits_of_x_after_forward(rng, stride):
    """The depthwise kernel's copy of x is what the layer's backward reads."""
    x = rng.standard_normal((2, 4, 8, 7))
    Wt, b = rng.standard_normal((4, 1, 3, 3)), rng.standard_normal(4)
    layer = Convolution(Wt, b, stride, 1, groups=4)
    book = ref.Convolution(Wt, b, stride, 1, groups=4)
    out = layer.forward(x)
    book.forward(x.copy())
    x[:] = 7.0
    dout = rng.standard_normal(out.shape)
    assert_parity(layer.backward(dout), book.backward(dout), np.float64)
    assert_parity(layer.dW, book.dW, np.float64)


@pytest.mark.parametrize("shape", [(1, 4, 130, 130, 4, 3, 3, 1, 1, 4),    # depthwise
                                   (1, 4, 130, 130, 2, 3, 3, 1, 1, 1),    # one image: whole copy
                                   (3, 4, 130, 130, 2, 3, 3, 2, 1, 1),    # images in parallel
                                   (2, 4, 130, 130, 0, 3, 3, 1, 1, 1)])   # no filters
def test_keep_of_a_large_x(rng, threads, shape):
    """Copies big enough to be split between threads (parallel_copy and the per-image ones)."""
    N, C, H, W, FN, FH, FW, stride, pad, groups = shape
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    Wt = rng.standard_normal((FN, C // groups, FH, FW)).astype(np.float32)
    keep = np.full_like(x, np.nan)
    out = ops.conv2d_forward(x, Wt, None, stride, pad, groups=groups, keep=keep)
    np.testing.assert_array_equal(keep, x)
    np.testing.assert_array_equal(out, ops.conv2d_forward(x, Wt, None, stride, pad,
                                                          groups=groups))


@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("N", [1, 4])
@pytest.mark.parametrize("shift", [0, 37, -37])
def test_keep_overlapping_x(rng, groups, N, shift):
    """A keep that shares memory with x gets x's values, and the output is x's convolution."""
    shape = (N, 4, 9, 9)
    n = int(np.prod(shape))
    buf = rng.standard_normal(n + 128).astype(np.float32)
    x = buf[64:64 + n].reshape(shape)
    keep = buf[64 + shift:64 + shift + n].reshape(shape)
    x0 = x.copy()
    Wt = rng.standard_normal((4, 4 // groups, 3, 3)).astype(np.float32)
    out = ops.conv2d_forward(x, Wt, None, 1, 1, groups=groups, keep=keep)
    np.testing.assert_array_equal(out, ops.conv2d_forward(x0, Wt, None, 1, 1, groups=groups))
    np.testing.assert_array_equal(keep, x0)


def test_failed_forward_keeps_the_last_batch(rng):
    """A forward that raises leaves the layer as the last good forward left it."""
    x = rng.standard_normal((2, 3, 6, 6))
    Wt, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    layer, book = Convolution(Wt, b, 1, 1), ref.Convolution(Wt, b, 1, 1)
    out = layer.forward(x)
    book.forward(x)
    with pytest.raises(ValueError, match="channels"):
        layer.forward(rng.standard_normal((2, 5, 6, 6)))
    assert layer.x is x
    dout = rng.standard_normal(out.shape)
    assert_parity(layer.backward(dout), book.backward(dout), np.float64)
    assert_parity(layer.dW, book.dW, np.float64)
