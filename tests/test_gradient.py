"""fastnn.gradient: the book's numerical_gradient and gradient_check."""

import numpy as np

from fastnn.gradient import gradient_check, numerical_gradient
from fastnn.models import MultiLayerNetExtend, TwoLayerNet


def test_numerical_gradient_of_known_functions(rng):
    x = rng.standard_normal((3, 4))
    before = x.copy()
    g = numerical_gradient(lambda v: np.sum(v ** 2), x)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(x, before)  # every element restored
    g = numerical_gradient(lambda v: np.sum(np.sin(v)), x, h=1e-5)
    np.testing.assert_allclose(g, np.cos(x), rtol=1e-8, atol=1e-10)
    # f may ignore its argument and see x through a closure, as the book's networks do
    w = np.array([1.0, -2.0, 0.5])
    g = numerical_gradient(lambda _: float(w @ w * 3), w)
    np.testing.assert_allclose(g, 6 * w, rtol=1e-8)


def test_numerical_gradient_keeps_dtype_and_shape():
    x = np.zeros((2, 2, 2), dtype=np.float32)
    g = numerical_gradient(lambda v: float(np.sum(v)), x)
    assert g.shape == x.shape and g.dtype == np.float32
    np.testing.assert_allclose(g, 1.0, rtol=1e-2)


def test_gradient_check_small_for_correct_networks(rng):
    np.random.seed(0)
    net = MultiLayerNetExtend(5, [4], 3, use_batchnorm=True)
    x, t = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    errors = gradient_check(net, x, t)
    assert sorted(errors) == sorted(net.params)
    # b1 feeds batch norm, so its true gradient is 0 and only rounding noise is compared
    assert max(v for k, v in errors.items() if k != 'b1') < 1e-4


def test_gradient_check_finds_a_wrong_gradient(rng, capsys):
    np.random.seed(1)
    net = TwoLayerNet(4, 5, 3, weight_init_std=0.5)
    real = net.gradient

    def broken(x, t):
        g = real(x, t)
        g['W2'] = g['W2'] * 1.1
        return g
    net.gradient = broken
    errors = gradient_check(net, rng.standard_normal((3, 4)), np.array([0, 1, 2]),
                            max_entries=5, verbose=True)
    assert errors['W2'] > 0.04 and errors['W1'] < 1e-5
    out = capsys.readouterr().out
    assert "W2: max relative error" in out and "(5 entries)" in out
