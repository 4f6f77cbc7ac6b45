"""Gradient checks of every builder layer through a whole model (float64, central differences).

Each model puts a layer with parameters before the layer under test, so the checked parameter
gradients pass through that layer's backward.
"""

import numpy as np
import pytest

from conftest import numerical_grad
from fastnn.basenn import nn


def _model(layers, x, y, loss, seed=0):
    m = nn(dtype=np.float64)
    m.set_seed(seed)
    for spec in layers:
        m.add(**spec) if isinstance(spec, dict) else m.add(*spec[:1], **spec[1])
    m.load_dataset(x, y)
    m.loss = loss
    m._shapes(x.shape[1:])
    return m


# Small workloads: one kernel thread (see conftest.one_kernel_thread).
pytestmark = pytest.mark.usefixtures("one_kernel_thread")


def _check(m, x, y, rtol=1e-5, atol=1e-8):
    x = m._as_input(x)

    def loss():
        np.random.seed(7)          # the same dropout mask on every evaluation
        return m._loss_and_backward(x, y)[0]

    loss()
    analytic = {k: np.array(v) for k, v in m._params("grads").items()}
    params = m._params()
    assert set(analytic) == set(params)
    for k, p in params.items():
        num = numerical_grad(loss, p)
        np.testing.assert_allclose(analytic[k], num, rtol=rtol, atol=atol, err_msg=k)


def _reg_target(rng, n, k):
    return rng.standard_normal((n, k))


@pytest.mark.parametrize("act", ["ReLU", "sigmoid", "tanh", "LeakyReLU", "Softmax"])
def test_linear_and_activations(rng, act):
    x = rng.standard_normal((5, 3))
    y = _reg_target(rng, 5, 2)
    m = _model([("linear", dict(size=(3, 4), activation=act)), ("linear", dict(size=(4, 2)))],
               x, y, "MSELoss")
    _check(m, x, y)


def test_conv2d_pools_and_flatten(rng):
    x = rng.standard_normal((2, 2, 9, 8))
    y = _reg_target(rng, 2, 3)
    layers = [("conv2d", dict(size=(2, 3), kernel_size=(3, 3), stride=2, padding=1,
                              activation="relu")),                      # (3, 5, 4)
              ("maxpool", dict(kernel_size=(2, 2))),                    # (3, 2, 2), row cropped
              ("conv2d", dict(size=(3, 2), kernel_size=1)),             # (2, 2, 2)
              ("avgpool", dict(kernel_size=2, stride=1, padding=1)),    # (2, 3, 3)
              ("linear", dict(size=(18, 3)))]
    m = _model(layers, x, y, "MSELoss")
    assert m._shapes(x.shape[1:])[-2] == (2, 3, 3)
    _check(m, x, y)


def test_maxpool_padding_uses_minus_infinity(rng):
    x = rng.standard_normal((2, 1, 6, 6))
    y = _reg_target(rng, 2, 2)
    layers = [("conv2d", dict(size=(1, 2), kernel_size=3, padding=1)),
              ("maxpool", dict(kernel_size=3, stride=2, padding=1)),   # (2, 3, 3)
              ("linear", dict(size=(18, 2)))]
    m = _model(layers, x, y, "MSELoss")
    _check(m, x, y)
    h = m.layers[0].module.forward(x, False)
    out = m.layers[1].module.forward(h - 100.0, False)   # all negative: padding must not win
    assert out.max() < -50


def test_conv1d_mean(rng):
    x = rng.standard_normal((3, 2, 9))
    y = _reg_target(rng, 3, 2)
    layers = [("conv1d", dict(size=(2, 3), kernel_size=3, stride=2, padding=1,
                              activation="tanh")),                      # (3, 5)
              ("conv1d", dict(size=(3, 4), kernel_size=2)),             # (4, 4)
              ("mean", dict(dim=2)),                                    # (4,)
              ("linear", dict(size=(4, 2)))]
    m = _model(layers, x, y, "MSELoss")
    assert m._shapes(x.shape[1:]) == [(3, 5), (4, 4), (4,), (2,)]
    _check(m, x, y)


def test_batchnorm_1d_2d_and_global_mean(rng):
    x = rng.standard_normal((4, 2, 5, 5))
    y = _reg_target(rng, 4, 2)
    layers = [("conv2d", dict(size=(2, 3), kernel_size=3)),
              ("batchnorm2d", dict(size=3, activation="relu")),
              ("mean", {}),                                             # (3,)
              ("linear", dict(size=(3, 4))),
              ("batchnorm1d", dict(size=4)),
              ("linear", dict(size=(4, 2)))]
    m = _model(layers, x, y, "MSELoss")
    _check(m, x, y, rtol=1e-4, atol=1e-7)


def test_batchnorm1d_on_sequences(rng):
    x = rng.standard_normal((3, 2, 6))
    y = _reg_target(rng, 3, 2)
    layers = [("conv1d", dict(size=(2, 3), kernel_size=3)), ("batchnorm1d", dict(size=3)),
              ("linear", dict(size=(12, 2)))]
    m = _model(layers, x, y, "MSELoss")
    _check(m, x, y, rtol=1e-4, atol=1e-7)


def test_dropout(rng):
    x = rng.standard_normal((6, 3))
    y = _reg_target(rng, 6, 2)
    layers = [("linear", dict(size=(3, 8), activation="relu")), ("dropout", dict(p=0.3)),
              ("linear", dict(size=(8, 2)))]
    m = _model(layers, x, y, "MSELoss")
    _check(m, x, y)


def test_embedding_mean(rng):
    x = rng.integers(0, 7, size=(4, 5))
    y = rng.integers(0, 3, size=4)
    layers = [("embedding", dict(vocab_size=7, embedding_dim=3)), ("mean", {}),
              ("linear", dict(size=(3, 3)))]
    m = _model(layers, x, y, "CrossEntropyLoss")
    _check(m, x, y)


def test_lstm_stack_squeeze_unsqueeze(rng):
    x = rng.standard_normal((3, 4, 2))
    y = _reg_target(rng, 3, 2)
    layers = [("lstm", dict(size=(2, 3))), ("dropout", dict(p=0.2)), ("unsqueeze", {}),
              ("lstm", dict(size=(3, 4), num_layers=2)), ("squeeze", {}),
              ("linear", dict(size=(4, 2)))]
    m = _model(layers, x, y, "MSELoss")
    assert m._shapes(x.shape[1:]) == [(4, 3), (4, 3), (1, 3), (1, 4), (4,), (2,)]
    _check(m, x, y)


@pytest.mark.parametrize("layer,size,out_c", [("Res_Block", (2, 3), 3),
                                              ("res_block", (2, 2), 2),
                                              ("Res_Bottleneck", (2, 1), 4)])
def test_residual_blocks(rng, layer, size, out_c):
    x = rng.standard_normal((3, 2, 5, 5))
    y = _reg_target(rng, 3, 2)
    layers = [("conv2d", dict(size=(2, 2), kernel_size=1)),
              (layer, dict(size=size, num_blocks=2, stride=2 if out_c != 2 else 1)),
              ("mean", {}), ("linear", dict(size=(out_c, 2)))]
    m = _model(layers, x, y, "MSELoss")
    _check(m, x, y, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("final", ["Softmax", None])
def test_cross_entropy_with_and_without_final_softmax(rng, final):
    """With a final Softmax the loss is cross-entropy of its output (fused with the softmax);
    without it the outputs are logits. Both give the same loss for the same weights."""
    x = rng.standard_normal((6, 3))
    y = rng.integers(0, 3, size=6)
    m = _model([("linear", dict(size=(3, 5), activation="tanh")),
                ("linear", dict(size=(5, 3), activation=final))], x, y, "CrossEntropyLoss")
    _check(m, x, y, rtol=1e-4, atol=1e-6)
    logits = m._forward(x, True, m._chain()[:-1] if final else m._chain())
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(6), y]))
    np.testing.assert_allclose(m._loss_and_backward(x, y)[0], expected, rtol=1e-5)
