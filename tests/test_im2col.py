import numpy as np
import pytest

from fastnn import util
from fastnn.reference import util as ref
from conftest import assert_parity, run_python

# (N, C, H, W, FH, FW, stride, pad): square and not, odd sizes, overlapping and gapped windows.
SHAPES = [
    (1, 1, 5, 5, 3, 3, 1, 0),
    (2, 3, 7, 9, 3, 2, 2, 1),
    (3, 2, 6, 11, 4, 1, 3, 2),
    (2, 1, 4, 4, 4, 4, 1, 0),
    (1, 2, 3, 2, 5, 5, 1, 2),
    (4, 3, 10, 8, 2, 2, 2, 0),
    (2, 2, 9, 9, 3, 3, 4, 3),
    (4, 3, 30, 30, 3, 3, 1, 1),   # large enough for the parallel loops
]


def naive_im2col(x, FH, FW, stride, pad):
    """The definition, one element at a time."""
    N, C, H, W = x.shape
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    col = np.zeros((N * OH * OW, C * FH * FW))
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                for c in range(C):
                    for dy in range(FH):
                        for dx in range(FW):
                            h, w = i * stride - pad + dy, j * stride - pad + dx
                            if 0 <= h < H and 0 <= w < W:
                                col[(n * OH + i) * OW + j, (c * FH + dy) * FW + dx] = x[n, c, h, w]
    return col


@pytest.mark.parametrize("shape", SHAPES)
def test_reference_im2col_matches_definition(rng, shape):
    N, C, H, W, FH, FW, stride, pad = shape
    x = rng.standard_normal((N, C, H, W))
    np.testing.assert_array_equal(ref.im2col(x, FH, FW, stride, pad),
                                  naive_im2col(x, FH, FW, stride, pad))


@pytest.mark.parametrize("shape", SHAPES)
def test_im2col_col2im_parity(rng, dtype, threads, shape):
    N, C, H, W, FH, FW, stride, pad = shape
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    col = util.im2col(x, FH, FW, stride, pad)
    assert_parity(col, ref.im2col(x, FH, FW, stride, pad), dtype)
    dcol = rng.standard_normal(col.shape).astype(dtype)
    assert_parity(util.col2im(dcol, x.shape, FH, FW, stride, pad),
                  ref.col2im(dcol, x.shape, FH, FW, stride, pad), dtype, reduce_len=FH * FW)


@pytest.mark.parametrize("shape", SHAPES)
def test_col2im_is_adjoint_of_im2col(rng, shape):
    N, C, H, W, FH, FW, stride, pad = shape
    x = rng.standard_normal((N, C, H, W))
    col = rng.standard_normal((N * util.conv_output_size(H, FH, stride, pad)
                               * util.conv_output_size(W, FW, stride, pad), C * FH * FW))
    lhs = np.sum(util.im2col(x, FH, FW, stride, pad) * col)
    rhs = np.sum(x * util.col2im(col, x.shape, FH, FW, stride, pad))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_col2im_counts_overlapping_windows():
    # 3x3 windows, stride 1 over a 4x4 image: each pixel is covered by as many windows as
    # there are valid window positions over it along each axis.
    col = np.ones((4, 9))
    counts_1d = np.array([1, 2, 2, 1])
    np.testing.assert_array_equal(util.col2im(col, (1, 1, 4, 4), 3, 3)[0, 0],
                                  np.outer(counts_1d, counts_1d))


def test_layouts_and_int_input(rng):
    x = rng.standard_normal((3, 2, 8, 6))
    expected = ref.im2col(x, 3, 3, 1, 1)
    np.testing.assert_array_equal(util.im2col(np.asfortranarray(x), 3, 3, 1, 1), expected)
    wide = np.zeros((3, 2, 8, 12))
    wide[..., ::2] = x
    np.testing.assert_array_equal(util.im2col(wide[..., ::2], 3, 3, 1, 1), expected)
    xi = rng.integers(-5, 5, size=(2, 1, 4, 4))
    col = util.im2col(xi, 2, 2)
    assert col.dtype == np.float64
    np.testing.assert_array_equal(col, ref.im2col(xi, 2, 2))


def test_empty_batch_and_nan():
    assert util.im2col(np.zeros((0, 2, 5, 5), np.float32), 3, 3).shape == (0, 18)
    assert util.col2im(np.zeros((0, 18)), (0, 2, 5, 5), 3, 3).shape == (0, 2, 5, 5)
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = np.nan
    np.testing.assert_array_equal(np.isnan(util.im2col(x, 2, 2)),
                                  np.isnan(ref.im2col(x, 2, 2)))
    assert np.isnan(util.col2im(util.im2col(x, 2, 2), x.shape, 2, 2)[0, 0, 1, 2])


def test_bad_inputs():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"im2col: x must be 4-D .*x.shape=\(4, 4\)"):
        util.im2col(x[0, 0], 2, 2)
    with pytest.raises(ValueError, match=r"im2col: window 5x5 is larger than the padded input 4x4"):
        util.im2col(x, 5, 5)
    with pytest.raises(ValueError, match="im2col: stride must be >= 1, got 0"):
        util.im2col(x, 2, 2, stride=0)
    with pytest.raises(ValueError, match="im2col: pad must be >= 0, got -1"):
        util.im2col(x, 2, 2, pad=-1)
    with pytest.raises(ValueError, match="im2col: window size must be at least 1x1, got 0x2"):
        util.im2col(x, 0, 2)
    with pytest.raises(TypeError, match="im2col: stride must be an integer"):
        util.im2col(x, 2, 2, stride=1.5)
    with pytest.raises(TypeError, match="im2col: arrays of dtype complex128"):
        util.im2col(x.astype(complex), 2, 2)
    with pytest.raises(TypeError, match="im2col: arrays of dtype <U1"):
        util.im2col(np.full((1, 1, 2, 2), "a"), 1, 1)
    with pytest.raises(ValueError, match=r"col2im: col has shape \(9, 3\) but input_shape "
                                         r"\(1, 1, 4, 4\) .* needs \(9, 4\)"):
        util.col2im(np.zeros((9, 3)), (1, 1, 4, 4), 2, 2)
    with pytest.raises(ValueError, match=r"col2im: input_shape must be \(N, C, H, W\)"):
        util.col2im(np.zeros((9, 4)), (1, 4, 4), 2, 2)


def test_conv_output_size():
    assert util.conv_output_size(28, 5) == 24
    assert util.conv_output_size(28, 5, stride=2, pad=2) == 14
    assert util.conv_output_size(7, 3, stride=2, pad=1) == 4
    assert isinstance(util.conv_output_size(9, 3, 2), int)


@pytest.mark.parametrize("shape", [(10, 3), (6, 1, 4, 4)])
def test_shuffle_dataset(shape):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    t = np.arange(shape[0]) * 10
    np.random.seed(3)
    xs, ts = util.shuffle_dataset(x, t)
    np.random.seed(3)
    order = np.random.permutation(shape[0])
    np.testing.assert_array_equal(xs, x[order])
    np.testing.assert_array_equal(ts, t[order])
    assert not np.array_equal(order, np.arange(shape[0]))


def test_smooth_curve(rng):
    n = 40
    x = rng.standard_normal(n)
    w = np.kaiser(11, 2)
    w /= w.sum()
    # Edges mirror: left without repeating x[0], right repeating x[-1] (the book's values).
    def at(k):
        return x[-k] if k < 0 else (x[2 * n - 1 - k] if k >= n else x[k])
    expected = [sum(w[j] * at(i + j - 5) for j in range(11)) for i in range(n)]
    np.testing.assert_allclose(util.smooth_curve(x), expected, rtol=1e-12)
    np.testing.assert_allclose(util.smooth_curve(np.full(30, 2.5)), np.full(30, 2.5))
    for m in (1, 3, 10):
        assert util.smooth_curve(rng.standard_normal(m)).shape == (m,)


def test_empty_inputs_of_any_size_return_at_once():
    # Any zero dimension: the window family returns correctly shaped results without looping
    # over the (here 2^40) positions of nothing. im2col of (1, 0, 2^20, 2^20) once ran for
    # minutes; an empty conv output with OH*OW > 2^31 raised the BLAS size error. In a child,
    # so that a regression fails in time instead of hanging the suite.
    proc = run_python("""
        import time
        from fastnn import layers as L, util
        big = 2 ** 20
        t0 = time.perf_counter()
        assert util.im2col(np.empty((1, 0, big, big)), 1, 1).shape == (big * big, 0)
        assert util.im2col(np.empty((0, 1, big, big), np.float32), 1, 1).shape == (0, 1)
        assert util.col2im(np.empty((big * big, 0)), (1, 0, big, big), 1, 1).shape == \\
            (1, 0, big, big)
        conv = L.Convolution(np.ones((2, 1, 1, 1)), np.ones(2))
        out = conv.forward(np.empty((0, 1, big, big)))
        assert out.shape == (0, 2, big, big)
        assert conv.backward(out).shape == (0, 1, big, big)
        assert (conv.dW == 0).all() and conv.dW.shape == (2, 1, 1, 1) and (conv.db == 0).all()
        conv = L.Convolution(np.ones((0, 1, 1, 1)), np.ones(0), pad=2 ** 16)  # no filters
        out = conv.forward(np.ones((1, 1, 1, 1)))
        assert out.shape == (1, 0, 2 ** 17 + 1, 2 ** 17 + 1)
        assert (conv.backward(out) == 0).all() and conv.dW.shape == (0, 1, 1, 1)
        conv = L.Convolution(np.ones((3, 0, 1, 1)), np.ones(3))  # no channels, empty batch
        assert conv.forward(np.empty((0, 0, big, big))).shape == (0, 3, big, big)
        for cls in (L.Pooling, L.AvgPooling):
            pool = cls(2, 2, 1)
            out = pool.forward(np.empty((1, 0, big, big)))
            assert out.shape == (1, 0, big - 1, big - 1)
            assert pool.backward(out).shape == (1, 0, big, big)
        print("seconds", time.perf_counter() - t0)
        """, seconds=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout.split()[-1]) < 5


@pytest.mark.parametrize("pad", [1, 2])
def test_empty_images_with_padding_match_the_reference(pad):
    # H = W = 0 with pad > 0: the windows see only padding, so the outputs are not empty.
    from fastnn import layers as L
    from fastnn.reference import layers as R

    rng = np.random.default_rng(0)
    x = np.zeros((2, 3, 0, 0))
    W, b = rng.standard_normal((4, 3, 1, 1)), rng.standard_normal(4)
    for fast, slow in [(L.Convolution(W, b, 1, pad), R.Convolution(W, b, 1, pad)),
                       (L.Pooling(1, 1, 1, pad), R.Pooling(1, 1, 1, pad)),
                       (L.AvgPooling(1, 1, 1, pad), R.AvgPooling(1, 1, 1, pad))]:
        out = fast.forward(x)
        np.testing.assert_allclose(out, slow.forward(x), rtol=1e-12)
        dout = rng.standard_normal(out.shape)
        assert fast.backward(dout).shape == x.shape == slow.backward(dout).shape
    assert util.im2col(x, 1, 1, 1, pad).shape == (2 * (2 * pad) ** 2, 3)
    np.testing.assert_array_equal(util.im2col(x, 1, 1, 1, pad), 0)
