"""fastnn.functions and fastnn.util's NumPy helpers against the reference (independent code)."""

import numpy as np
import pytest

from fastnn import functions as F, util
from fastnn.reference import functional as R, util as RU


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_activations_and_softmax_match_the_reference(rng, dtype):
    x = (rng.standard_normal((7, 5)) * 30).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    for name in ("sigmoid", "relu", "softmax"):
        got, want = getattr(F, name)(x), getattr(R, name)(x)
        assert got.dtype == want.dtype, name
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=name)
    np.testing.assert_allclose(F.softmax(x[0]), R.softmax(x[0]), rtol=tol)
    assert np.isnan(F.relu(np.array([np.nan, -1.0])))[0]


@pytest.mark.parametrize("x", [0.5, -700.0, np.float16(3), np.array(2.0), np.array([1, 2], np.int8),
                               np.array([[1.0, np.inf, np.nan]], np.float16), np.zeros((0, 3))],
                         ids=["float", "large", "f16-scalar", "0-d", "int8", "f16-inf-nan",
                              "empty"])
def test_scalars_small_dtypes_and_edges_match_the_reference(x):
    for name in ("sigmoid", "relu", "softmax"):
        got, want = getattr(F, name)(x), getattr(R, name)(x)
        assert np.shape(got) == np.shape(want) and np.result_type(got) == np.result_type(want)
        np.testing.assert_allclose(got, want, rtol=1e-3, err_msg=name)


def test_cross_entropy_error_needs_one_label_per_sample(rng):
    y = R.softmax(rng.standard_normal((2, 3)))
    for t in ([1], [], [0, 1, 2]):
        with pytest.raises(ValueError):
            R.cross_entropy_error(y, t)
        with pytest.raises(ValueError):
            F.cross_entropy_error(y, t)


def test_cross_entropy_error_matches_the_reference(rng):
    y = R.softmax(rng.standard_normal((6, 4)))
    t = rng.integers(0, 4, 6)
    one_hot = np.eye(4)[t]
    for yy, tt in ((y, t), (y, one_hot), (y[0], t[0]), (y[0], one_hot[0]), (y[:0], t[:0])):
        got, want = F.cross_entropy_error(yy, tt), R.cross_entropy_error(yy, tt)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isnan(F.cross_entropy_error(y[:0], t[:0]))


@pytest.mark.parametrize("n", [0, 1, 3, 5, 6, 10, 11, 40])
def test_smooth_curve_matches_the_reference(rng, n):
    x = rng.standard_normal(n)
    np.testing.assert_allclose(util.smooth_curve(x), RU.smooth_curve(x), rtol=1e-12, atol=1e-15)


def test_shuffle_dataset_and_conv_output_size_match_the_reference(rng):
    x, t = rng.standard_normal((9, 2)), np.arange(9)
    np.random.seed(3)
    got = util.shuffle_dataset(x, t)
    np.random.seed(3)
    want = RU.shuffle_dataset(x, t)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    for args in ((28, 5), (28, 5, 2, 2), (7, 3, 2, 1), (1, 1)):
        assert util.conv_output_size(*args) == RU.conv_output_size(*args)
