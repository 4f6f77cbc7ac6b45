import numpy as np
import pytest

import fastnn
from fastnn.layers import AvgPooling, Pooling
from fastnn.reference import layers as ref
from conftest import assert_parity, gradcheck, to_host

# (N, C, H, W, pool_h, pool_w, stride, pad): book default, overlapping, gapped, padded, odd.
SHAPES = [
    (2, 3, 8, 8, 2, 2, 2, 0),
    (1, 1, 5, 5, 3, 3, 1, 0),
    (3, 2, 7, 9, 3, 2, 2, 1),
    (2, 2, 6, 11, 2, 3, 3, 1),
    (2, 1, 4, 4, 4, 4, 1, 0),
    (1, 3, 3, 2, 3, 3, 2, 1),
    (4, 2, 9, 9, 3, 3, 1, 1),
    (4, 8, 32, 30, 3, 3, 2, 1),   # large enough for the parallel loops
]


def check_against_reference(cls, shape, x, rng, dtype, xp=np):
    _, _, _, _, ph, pw, stride, pad = shape
    layer = getattr(fastnn.layers, cls)(ph, pw, stride, pad)
    ref_layer = getattr(ref, cls)(ph, pw, stride, pad)
    xd = xp.asarray(x)
    out = layer.forward(xd)
    assert_parity(out, ref_layer.forward(x), dtype, reduce_len=ph * pw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert_parity(layer.backward(xp.asarray(dout)), ref_layer.backward(dout), dtype,
                  reduce_len=ph * pw)
    assert layer.x is xd
    if cls == "Pooling":
        np.testing.assert_array_equal(to_host(layer.arg_max), ref_layer.arg_max)
        assert layer.arg_max.dtype == ref_layer.arg_max.dtype
    return out


@pytest.mark.parametrize("cls", ["Pooling", "AvgPooling"])
@pytest.mark.parametrize("shape", SHAPES)
def test_parity_with_reference(rng, xp, dtype, threads, cls, shape):
    x = rng.standard_normal(shape[:4]).astype(dtype)
    out = check_against_reference(cls, shape, x, rng, dtype, xp)
    N, C, H, W, ph, pw, stride, pad = shape
    assert out.shape == (N, C, (H + 2 * pad - ph) // stride + 1, (W + 2 * pad - pw) // stride + 1)


@pytest.mark.parametrize("cls", ["Pooling", "AvgPooling"])
def test_randomized_shapes(dtype, cls):
    rng = np.random.default_rng(11)
    for _ in range(12):
        ph, pw = (int(v) for v in rng.integers(1, 5, size=2))
        pad, stride = int(rng.integers(0, 3)), int(rng.integers(1, 4))
        H = int(rng.integers(max(1, ph - 2 * pad), 12))
        W = int(rng.integers(max(1, pw - 2 * pad), 12))
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), H, W, ph, pw, stride, pad)
        check_against_reference(cls, shape, rng.standard_normal(shape[:4]).astype(dtype), rng,
                                dtype)


def test_max_pool_padding_is_minus_infinity():
    # All-negative image: zero padding (the book) would make every border output 0.
    x = -np.arange(1, 17, dtype=np.float64).reshape(1, 1, 4, 4)
    layer = Pooling(2, 2, stride=2, pad=1)
    out = layer.forward(x)
    np.testing.assert_array_equal(out[0, 0], [[-1, -2, -4], [-5, -6, -8], [-13, -14, -16]])
    # The corner window holds pixel (0, 0) at its bottom-right: index 3 of the 2x2 window.
    assert layer.arg_max[0] == 3
    dx = layer.backward(np.ones_like(out))
    assert dx.sum() == out.size


def test_avg_pool_counts_padding():
    x = np.ones((1, 1, 4, 4))
    out = AvgPooling(2, 2, stride=2, pad=1).forward(x)
    np.testing.assert_array_equal(out[0, 0], [[0.25, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 0.25]])


def test_overlapping_windows_accumulate():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5  # the maximum of all four 2x2 windows
    layer = Pooling(2, 2, stride=1)
    layer.forward(x)
    dx = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.zeros((3, 3))
    expected[1, 1] = 10
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("stride,pad", [(2, 0), (1, 1), (2, 1)])
def test_gradients_numerically(rng, stride, pad):
    # Distinct values, far apart, so no window's maximum changes under the finite difference.
    x = rng.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6).astype(np.float64)
    for layer in (Pooling(2, 3, stride, pad), AvgPooling(2, 3, stride, pad)):
        dout = rng.standard_normal(layer.forward(x).shape)
        dx = layer.backward(dout)
        gradcheck(lambda: np.sum(layer.forward(x) * dout), x, dx)


def test_nan_follows_np_max(dtype):
    x = np.arange(16, dtype=dtype).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 1, 0] = np.nan
    layer, ref_layer = Pooling(2, 2, stride=2), ref.Pooling(2, 2, stride=2)
    out = layer.forward(x)
    np.testing.assert_array_equal(out, ref_layer.forward(x))
    assert np.isnan(out[0, 0, 0, 0]) and not np.isnan(out[0, 0, 1, 1])
    np.testing.assert_array_equal(layer.arg_max, ref_layer.arg_max)
    assert layer.arg_max[0] == 1  # the first NaN of the window, like np.argmax
    assert np.isnan(AvgPooling(2, 2, stride=2).forward(x)[0, 0, 0, 0])


def test_layouts_and_ints(rng, dtype):
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    for cls in (Pooling, AvgPooling):
        expected = cls(3, 3, 2, 1).forward(x)
        np.testing.assert_array_equal(cls(3, 3, 2, 1).forward(np.asfortranarray(x)), expected)
        wide = np.zeros((2, 3, 7, 16), dtype)
        wide[..., ::2] = x
        np.testing.assert_array_equal(cls(3, 3, 2, 1).forward(wide[..., ::2]), expected)
    xi = rng.integers(-9, 9, size=(2, 1, 4, 4))
    out = Pooling(2, 2).forward(xi)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, ref.Pooling(2, 2).forward(xi))
    assert AvgPooling(2, 2).forward(xi).dtype == np.float64


@pytest.mark.parametrize("cls", [Pooling, AvgPooling])
def test_empty_batch(dtype, cls):
    layer = cls(2, 2, 2, 1)
    out = layer.forward(np.zeros((0, 3, 5, 5), dtype))
    assert out.shape == (0, 3, 3, 3) and out.dtype == dtype
    assert layer.backward(out).shape == (0, 3, 5, 5)
    if cls is Pooling:
        assert layer.arg_max.shape == (0,)


@pytest.mark.parametrize("cls", [Pooling, AvgPooling])
def test_bad_inputs(cls):
    name = cls.__name__
    x = np.zeros((2, 3, 6, 6))
    with pytest.raises(ValueError, match=fr"{name}: window size must be at least 1x1, got 0x2"):
        cls(0, 2)
    with pytest.raises(ValueError, match=fr"{name}: stride must be >= 1, got 0"):
        cls(2, 2, stride=0)
    with pytest.raises(ValueError, match=fr"{name}: pad must be >= 0, got -1"):
        cls(2, 2, pad=-1)
    with pytest.raises(TypeError, match=fr"{name}: stride must be an integer"):
        cls(2, 2, stride=2.0)
    with pytest.raises(ValueError, match=fr"{name}: x must be 4-D \(N, C, H, W\), got 2-D"):
        cls(2, 2).forward(x[0, 0])
    with pytest.raises(ValueError,
                       match=fr"{name}: window 7x2 is larger than the padded input 6x6"):
        cls(7, 2).forward(x)
    with pytest.raises(TypeError, match=fr"{name}: arrays of dtype complex128"):
        cls(2, 2).forward(x.astype(complex))
    with pytest.raises(TypeError, match=fr"{name}: arrays of dtype object"):
        cls(2, 2).forward(x.astype(object))
    layer = cls(2, 2, stride=2)
    layer.forward(x)
    with pytest.raises(ValueError, match=fr"{name}.backward: dout has shape \(2, 3, 3\) but the "
                                         r"forward output had shape \(2, 3, 3, 3\)"):
        layer.backward(np.zeros((2, 3, 3)))


@pytest.mark.parametrize("cls", [Pooling, AvgPooling])
def test_backward_before_forward(cls):
    with pytest.raises(RuntimeError, match=f"{cls.__name__}.backward called before forward"):
        cls(2, 2).backward(np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("cls", [Pooling, AvgPooling])
def test_default_geometry_is_the_books(cls):
    # The book's current Pooling(pool_h, pool_w, stride=2, pad=0) (ch07/simple_convnet.py
    # writes Pooling(2, 2) and relies on the stride of 2); AvgPooling shares it.
    layer = cls(2, 2)
    assert (layer.stride, layer.pad) == (2, 0)
    assert layer.forward(np.zeros((1, 1, 5, 7))).shape == (1, 1, 2, 3)
    assert cls(2, 2, 1).forward(np.zeros((1, 1, 5, 7))).shape == (1, 1, 4, 6)


# ---- max pooling kernel paths: compile-time 2x2 and 3x3 windows (stride 2 or any), the generic
# window, the vectorized scan of windows inside the image (and its redone last windows when a
# row holds more than one vector), the exact scan of border windows and of rows holding NaN.
# Max pooling selects values, so outputs and arg_max must equal the reference's exactly.
# (pool_h, pool_w, stride, pad)
MAX_GEOMS = [
    (2, 2, 2, 0), (2, 2, 2, 1), (2, 2, 1, 0), (2, 2, 3, 1),   # 2x2: tiling, overlap, gaps
    (3, 3, 2, 0), (3, 3, 2, 1), (3, 3, 1, 1), (3, 3, 3, 2),   # 3x3
    (2, 3, 2, 1), (3, 2, 1, 0), (4, 4, 4, 0), (1, 1, 2, 0),   # generic
]
# Widths: shorter than a vector, one vector plus a few, several vectors, odd (last window dropped).
WIDTHS = [5, 20, 37, 48]


def check_max_exact(x, geom, rng):
    ph, pw, stride, pad = geom
    layer, ref_layer = Pooling(ph, pw, stride, pad), ref.Pooling(ph, pw, stride, pad)
    out = layer.forward(x)
    np.testing.assert_array_equal(out, ref_layer.forward(x))
    np.testing.assert_array_equal(layer.arg_max, ref_layer.arg_max)
    dout = rng.standard_normal(out.shape).astype(out.dtype)
    dx, ref_dx = layer.backward(dout), ref_layer.backward(dout)
    if stride >= ph and stride >= pw:  # each pixel gets at most one dout: no sum to round
        np.testing.assert_array_equal(dx, ref_dx)
    else:
        assert_parity(dx, ref_dx, out.dtype, reduce_len=ph * pw)


@pytest.mark.parametrize("geom", MAX_GEOMS)
@pytest.mark.parametrize("W", WIDTHS)
def test_max_paths_random(rng, dtype, threads, geom, W):
    x = rng.standard_normal((2, 3, 9, W)).astype(dtype)
    check_max_exact(x, geom, rng)


@pytest.mark.parametrize("geom", MAX_GEOMS)
def test_max_ties_take_the_first(rng, dtype, geom):
    # ReLU output (half zeros) and few distinct values: most windows have tied maxima.
    relu = np.maximum(rng.standard_normal((2, 3, 11, 37)), 0).astype(dtype)
    check_max_exact(relu, geom, rng)
    check_max_exact(rng.integers(0, 3, size=(2, 3, 11, 37)).astype(dtype), geom, rng)
    check_max_exact(np.zeros((1, 2, 10, 26), dtype), geom, rng)


@pytest.mark.parametrize("geom", MAX_GEOMS)
def test_max_minus_infinity_everywhere(rng, dtype, geom):
    # Every window's maximum is -inf: the answer is cell 0, padded or not, as in the reference.
    x = np.full((1, 2, 8, 21), -np.inf, dtype)
    check_max_exact(x, geom, rng)
    x[0, 0, 3, 5] = -1.0
    check_max_exact(x, geom, rng)


@pytest.mark.parametrize("geom", [(2, 2, 2, 0), (3, 3, 2, 1), (3, 3, 1, 1), (2, 3, 2, 1)])
def test_max_nan_at_every_window_position(rng, dtype, geom):
    ph, pw, stride, pad = geom
    for fh in range(ph):
        for fw in range(pw):
            x = rng.standard_normal((1, 2, 10, 40)).astype(dtype)
            # One NaN at cell (fh, fw) of a window inside the image, one in a border window, and
            # a pair in one window (the first one wins).
            h0, w0 = 2 * stride, 3 * stride
            x[0, 0, h0 + fh, w0 + fw] = np.nan
            x[0, 1, fh, fw] = np.nan
            x[0, 1, h0 + fh, w0 + fw] = np.nan
            x[0, 1, h0 + ph - 1, w0 + pw - 1] = np.nan
            x[0, 1, h0, w0 + pw - 1] = -np.inf
            check_max_exact(x, geom, rng)
    x = np.full((1, 1, 6, 30), np.nan, dtype)
    check_max_exact(x, geom, rng)


def test_max_backward_ignores_foreign_indices():
    # arg entries that are not a cell of their window, or point at padding, add nothing.
    dout = np.ones((1, 1, 2, 2))
    arg = np.array([[[[-1, 4], [0, 3]]]], dtype=np.int32)
    dx = fastnn.ops.maxpool2d_backward(dout, arg, (1, 1, 3, 3), 2, 2, 2, 1)
    expected = np.zeros((3, 3))
    expected[2, 2] = 1  # window (1, 1) starts at pixel (1, 1): its cell 3 is pixel (2, 2)
    np.testing.assert_array_equal(dx[0, 0], expected)


# ---- average pooling kernel paths: the same compile-time windows, windows inside the image
# summed in vectorized code, border windows (padding counts as zeros) one by one.
@pytest.mark.parametrize("geom", MAX_GEOMS)
@pytest.mark.parametrize("W", WIDTHS)
def test_avg_paths_random(rng, dtype, threads, geom, W):
    ph, pw, stride, pad = geom
    x = rng.standard_normal((2, 3, 9, W)).astype(dtype)
    layer, ref_layer = AvgPooling(ph, pw, stride, pad), ref.AvgPooling(ph, pw, stride, pad)
    out = layer.forward(x)
    assert_parity(out, ref_layer.forward(x), dtype, reduce_len=ph * pw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert_parity(layer.backward(dout), ref_layer.backward(dout), dtype, reduce_len=ph * pw)


@pytest.mark.parametrize("geom", [(2, 2, 2, 0), (3, 3, 2, 1), (2, 3, 2, 1)])
def test_avg_nan_and_inf_propagate_to_their_windows_only(dtype, geom):
    ph, pw, stride, pad = geom
    x = np.ones((1, 1, 10, 40), dtype)
    x[0, 0, 4, 9] = np.nan
    x[0, 0, 0, 0] = np.inf
    out, expected = AvgPooling(*geom).forward(x), ref.AvgPooling(*geom).forward(x)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(out), np.isposinf(expected))
    assert np.isnan(out).any() and np.isposinf(out).any()
    finite = np.isfinite(expected)
    assert_parity(out[finite], expected[finite], dtype, reduce_len=ph * pw)


def test_max_backward_checks_dout_dtype_before_arg_shape():
    from fastnn import ops
    with pytest.raises(TypeError, match="complex128 are not supported"):
        ops.maxpool2d_backward(np.ones((1, 1, 2, 2), complex), np.zeros((1, 1, 2), np.int32),
                               (1, 1, 3, 3), 2, 2)
