"""ONNX export: onnxruntime runs every network the fastnn command trains (and the other layers
the exporter maps) with the outputs fastnn computes."""

from collections import OrderedDict

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from fastnn import cli, layers  # noqa: E402
from fastnn.export import to_onnx  # noqa: E402
from fastnn.models import MultiLayerNetExtend  # noqa: E402
from fastnn.trainer import Trainer  # noqa: E402


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def run_onnx(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    assert names == ["logits", "probabilities"]
    return sess.run(None, {"input": x.astype(np.float32)})


def assert_same_outputs(net, x, rtol=1e-4, atol=1e-5):
    logits, prob = run_onnx(to_onnx(net, x.shape[1:]), x)
    want = np.asarray(net.predict(x), dtype=np.float64)
    np.testing.assert_allclose(logits, want, rtol=rtol, atol=atol)
    np.testing.assert_allclose(prob, softmax(want), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(cli.MODELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cli_models_run_the_same_in_onnxruntime(name, dtype):
    np.random.seed(1)
    net = cli.build_model(name, (1, 28, 28), np.dtype(dtype))
    x = np.random.default_rng(2).random((9, 1, 28, 28)).astype(dtype)
    assert_same_outputs(net, x)


def test_batchnorm_and_dropout_after_training(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.random((200, 1, 6, 6)).astype(np.float32) * 3 + 1
    t = rng.integers(0, 4, 200)
    np.random.seed(0)
    net = MultiLayerNetExtend(36, [16, 12], 4, use_batchnorm=True, use_dropout=True,
                              dropout_ration=0.3, dtype=np.float32)
    Trainer(net, x, t, x, t, epochs=2, mini_batch_size=50, verbose=False).train()
    assert_same_outputs(net, x[:20])
    to_onnx(net, (1, 6, 6), tmp_path / "bn.onnx")
    assert onnx.load(str(tmp_path / "bn.onnx")).graph.input[0].name == "input"


class _Net:
    """A book-style network with the layers no CLI model uses."""

    def __init__(self):
        rng = np.random.default_rng(4)
        W1 = rng.standard_normal((4, 2, 3, 3)).astype(np.float32) * 0.3
        C, H = 4, 8  # after the 3x3 convolution with pad 1 on 8x8
        self.layers = OrderedDict()
        self.layers["Conv"] = layers.Convolution(W1, np.zeros(4, np.float32), 1, 1)
        D = C * H * H   # the book normalises 4-D input per C*H*W feature
        self.layers["BN"] = layers.BatchNormalization(
            rng.random(D).astype(np.float32) + 0.5, rng.standard_normal(D).astype(np.float32),
            running_mean=rng.standard_normal(D).astype(np.float32),
            running_var=rng.random(D).astype(np.float32) + 0.1)
        self.layers["Tanh"] = layers.Tanh()
        self.layers["Avg"] = layers.AvgPooling(3, 3, stride=2, pad=1)
        self.layers["Max"] = layers.Pooling(2, 2, stride=1, pad=0)
        self.layers["Affine1"] = layers.Affine(
            rng.standard_normal((4 * 3 * 3, 5)).astype(np.float32), np.ones(5, np.float32))
        self.layers["Sigmoid"] = layers.Sigmoid()
        self.layers["Affine2"] = layers.Affine(
            rng.standard_normal((5, 3)).astype(np.float32), np.zeros(3, np.float32))

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x, False) if isinstance(layer, layers.BatchNormalization) \
                else layer.forward(x)
        return x


def test_4d_batchnorm_avgpool_sigmoid_tanh():
    net = _Net()
    x = np.random.default_rng(5).random((6, 2, 8, 8)).astype(np.float32)
    assert_same_outputs(net, x)


def test_unmapped_layers_are_named():
    net = _Net()
    net.layers["Odd"] = layers.SoftmaxWithLoss()
    with pytest.raises(ValueError, match=r"layer Odd \(SoftmaxWithLoss\) has no ONNX mapping"):
        to_onnx(net, (2, 8, 8))
    fresh = _Net()
    fresh.layers["BN"].running_mean = None
    with pytest.raises(ValueError, match="BN has no running statistics yet"):
        to_onnx(fresh, (2, 8, 8))
