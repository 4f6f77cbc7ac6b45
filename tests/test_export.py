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


# ------------------------------------------------------------------ the BaseNN builder

from fastnn.basenn import modules as basenn_modules  # noqa: E402
from fastnn.basenn import nn as basenn  # noqa: E402


def run_basenn_onnx(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["output"]
    return sess.run(None, {"input": x})[0]


def assert_basenn_same(model, x, tmp_path, rtol=1e-4, atol=1e-5):
    path = model.convert(out_file=str(tmp_path / "model.onnx"))
    assert path == str(tmp_path / "model.onnx")
    feed = x.astype(np.int64) if x.dtype.kind in "iu" else x.astype(np.float32)
    got = run_basenn_onnx(path, feed)
    want = model.inference(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    return got


def _fit(model, x, y, tmp_path, epochs=2, **kw):
    """A little training, so batch-norm statistics and weights are not their initial values."""
    model.load_dataset(x, y)
    model.train(lr=0.01, epochs=epochs, batch_size=16, save_fold=str(tmp_path / "ckpt"),
                verbose=False, **kw)
    return model


def test_basenn_mlp_iris(tmp_path):
    rng = np.random.default_rng(0)
    m = basenn()
    m.set_seed(0)
    m.add("linear", size=(4, 10), activation="relu")
    m.add("linear", size=(10, 5), activation="LeakyReLU")
    m.add("linear", size=(5, 3), activation="softmax")
    m.add(optimizer="Adam")
    x, y = rng.random((60, 4)).astype(np.float32), rng.integers(0, 3, 60)
    _fit(m, x, y, tmp_path, epochs=3)
    got = assert_basenn_same(m, x[:17], tmp_path)
    np.testing.assert_allclose(got.sum(1), 1, rtol=1e-5)


def test_basenn_lenet_pooling_activations_dropout(tmp_path):
    rng = np.random.default_rng(1)
    m = basenn()
    m.set_seed(1)
    m.add("conv2d", size=(1, 6), kernel_size=(5, 5), padding=2, activation="relu")
    m.add("maxpool", kernel_size=(3, 3), stride=2, padding=1)          # 28 -> 14
    m.add("conv2d", size=(6, 16), kernel_size=(5, 5), activation="sigmoid")   # 10
    m.add("avgpool", kernel_size=(3, 3), stride=2, padding=1)          # 5 (pads counted)
    m.add("conv2d", size=(16, 8), kernel_size=3, stride=2, padding=1, activation="tanh")  # 3
    m.add("maxpool", kernel_size=2)                                    # 1 (a row cropped)
    m.add("linear", size=(8, 12), activation="LeakyReLU")
    m.add("dropout", p=0.3)
    m.add("linear", size=(12, 10), activation="softmax")
    x, y = rng.random((32, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 32)
    _fit(m, x, y, tmp_path, epochs=1)
    assert_basenn_same(m, x[:5], tmp_path)


def test_basenn_batchnorm_conv1d_mean(tmp_path):
    rng = np.random.default_rng(2)
    m = basenn()
    m.set_seed(2)
    m.add("conv1d", size=(3, 6), kernel_size=3, padding=1)
    m.add("batchnorm1d", size=6, activation="relu")
    m.add("conv1d", size=(6, 4), kernel_size=(2,), stride=2)
    m.add("mean", dim=2)
    m.add("batchnorm1d", size=4)
    m.add("linear", size=(4, 2))
    x = (rng.random((48, 3, 9)) * 3 + 1).astype(np.float32)
    _fit(m, x, rng.integers(0, 2, 48), tmp_path, epochs=3)
    bn = m.layers[1].module.buffers
    assert not np.allclose(bn["running_mean"], 0)
    assert_basenn_same(m, x[:7], tmp_path)

    m2 = basenn()
    m2.set_seed(3)
    m2.add("conv2d", size=(2, 4), kernel_size=3)
    m2.add("batchnorm2d", size=4, activation="tanh")
    m2.add("linear", size=(4 * 4 * 4, 3), activation="softmax")
    x2 = rng.standard_normal((40, 2, 6, 6)).astype(np.float32) * 2 + 1
    _fit(m2, x2, rng.integers(0, 3, 40), tmp_path, epochs=2)
    assert_basenn_same(m2, x2[:6], tmp_path)


def test_basenn_small_resnet(tmp_path):
    rng = np.random.default_rng(4)
    m = basenn()
    m.set_seed(4)
    m.add("conv2d", size=(3, 8), kernel_size=3, padding=1)
    m.add("batchnorm2d", size=8, activation="relu")
    m.add("res_block", size=(8, 8), num_blocks=2)                  # identity shortcuts
    m.add("res_block", size=(8, 12), num_blocks=1, stride=2)       # projection shortcut
    m.add("res_bottleneck", size=(12, 4), num_blocks=2, stride=2)  # 16 channels, 2x2
    m.add("mean")
    m.add("linear", size=(16, 4), activation="softmax")
    x = rng.random((24, 3, 8, 8)).astype(np.float32)
    _fit(m, x, rng.integers(0, 4, 24), tmp_path, epochs=1)
    assert_basenn_same(m, x[:4], tmp_path, rtol=2e-4)


def test_basenn_lstm_lesson_and_embedding(tmp_path):
    rng = np.random.default_rng(5)
    m = basenn()                                    # examples/basenn/lstm_sequences.py
    m.set_seed(5)
    m.add("lstm", size=(2, 16))
    m.add("Dropout", p=0.1)
    m.add("unsqueeze")
    m.add("lstm", size=(16, 8), num_layers=2)
    m.add("squeeze")
    m.add("BatchNorm1d", size=8)
    m.add("linear", size=(8, 3))
    m.add(activation="Softmax")
    m.add(optimizer="Adam")
    x = rng.standard_normal((32, 7, 2)).astype(np.float32)
    _fit(m, x, rng.integers(0, 3, 32), tmp_path, epochs=2)
    assert_basenn_same(m, x[:5], tmp_path)

    e = basenn()
    e.set_seed(6)
    e.add("embedding", vocab_size=20, embedding_dim=5)
    e.add("lstm", size=(5, 6))
    e.add("mean")
    e.add("linear", size=(6, 2))
    tokens = rng.integers(0, 20, (16, 9))
    _fit(e, tokens, rng.integers(0, 2, 16), tmp_path, epochs=1)
    proto = onnx.load(str(e.convert(out_file=str(tmp_path / "emb.onnx"))))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert_basenn_same(e, tokens[:4], tmp_path)


def test_basenn_action_model_and_reshape(tmp_path):
    rng = np.random.default_rng(7)
    m = basenn()
    m.set_seed(7)
    m.add("action_model", size=(6, 8))
    m.add("linear", size=(8, 3), activation="Softmax")
    x = rng.standard_normal((32, 5, 6)).astype(np.float32)
    _fit(m, x, rng.integers(0, 3, 32), tmp_path, epochs=2)
    assert_basenn_same(m, x[:5], tmp_path)

    c = basenn()
    c.set_seed(8)
    c.add("conv2d", size=(1, 2), kernel_size=3)
    c.add("reshape")
    c.add("linear", size=(18, 2))
    xi = rng.random((16, 1, 5, 5)).astype(np.float32)
    _fit(c, xi, rng.integers(0, 2, 16), tmp_path, epochs=1)
    assert_basenn_same(c, xi[:4], tmp_path)


def test_basenn_convert_from_checkpoint_after_train(tmp_path):
    rng = np.random.default_rng(7)
    m = basenn()
    m.add("linear", size=(4, 8), activation="relu")
    m.add("dropout", p=0.5)
    m.add("linear", size=(8, 3), activation="softmax")
    x = rng.random((40, 4)).astype(np.float32)
    _fit(m, x, rng.integers(0, 3, 40), tmp_path, epochs=2)
    ckpt = str(tmp_path / "ckpt" / "basenn.pth")
    out = str(tmp_path / "sub" / "basenn.onnx")
    fresh = basenn()
    assert fresh.convert(checkpoint=ckpt, out_file=out) == out
    np.testing.assert_allclose(run_basenn_onnx(out, x), basenn().inference(x, checkpoint=ckpt),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run_basenn_onnx(out, x), m.inference(x), rtol=1e-5, atol=1e-6)


def test_basenn_convert_errors(tmp_path):
    class Swish(basenn_modules.Module):
        def forward(self, x, train):
            return x / (1 + np.exp(-x))

        def backward(self, dout):
            raise NotImplementedError

    m = basenn()
    m.add("linear", size=(4, 3))
    with pytest.raises(ValueError, match="input shape is unknown"):
        m.convert(out_file=str(tmp_path / "a.onnx"))
    m.add("linear", size=(3, 2))
    m.layers[0].act = Swish()
    with pytest.raises(NotImplementedError, match=r"layer1act is a Swish module.*without it"):
        m.convert(out_file=str(tmp_path / "a.onnx"), input_shape=(4,))
    assert not (tmp_path / "a.onnx").exists()
    with pytest.raises(ValueError, match="no layers"):
        basenn().convert(out_file=str(tmp_path / "b.onnx"))
