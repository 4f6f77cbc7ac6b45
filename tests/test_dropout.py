import numpy as np
import pytest

from fastnn import layers as L
from fastnn.reference import layers as R


@pytest.mark.parametrize("shape", [(10,), (8, 16), (2, 3, 4, 5), (0, 4)])
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5, 1.0])
def test_same_masks_as_the_book_under_a_seed(rng, dtype, shape, ratio):
    x = rng.standard_normal(shape).astype(dtype)
    ours, ref = L.Dropout(ratio), R.Dropout(ratio)
    np.random.seed(7)
    out = ours.forward(x)
    np.random.seed(7)
    expected = ref.forward(x)
    np.random.seed(7)
    book_mask = np.random.rand(*shape) > ratio  # the book's draw
    np.testing.assert_array_equal(ours.mask, book_mask)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == dtype
    dout = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(ours.backward(dout), ref.backward(dout))
    np.testing.assert_array_equal(ours.forward(x, train_flg=False), x * (1.0 - ratio))


def test_global_generator_advances_like_the_book():
    layer = L.Dropout(0.5)
    np.random.seed(0)
    a = layer.forward(np.ones((3, 3)))
    b = layer.forward(np.ones((3, 3)))
    np.random.seed(0)
    np.testing.assert_array_equal(a, np.random.rand(3, 3) > 0.5)
    np.testing.assert_array_equal(b, np.random.rand(3, 3) > 0.5)


def test_non_contiguous_nan_and_mixed_dtypes(rng):
    x = np.asfortranarray(rng.standard_normal((6, 4)).astype(np.float32))[::2]
    x[0, 0] = np.nan
    layer = L.Dropout(0.0)
    out = layer.forward(x)
    assert np.isnan(out[0, 0]) and out.dtype == np.float32
    assert layer.backward(np.ones(x.shape)).dtype == np.float64
    assert layer.forward(np.arange(4)).dtype == np.arange(4).dtype  # NumPy's x * mask


def test_bad_inputs():
    layer = L.Dropout()
    with pytest.raises(TypeError, match="Dropout"):
        layer.forward(np.ones(3, complex))
    with pytest.raises(ValueError, match=r"Dropout.backward: dout has shape \(3,\) but the "
                                         r"training forward had shape None"):
        layer.backward(np.ones(3))
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dout has shape \(3, 2\) but the training forward had "
                                         r"shape \(2, 3\)"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="Dropout"):
        layer.backward(np.ones((2, 3), complex))
