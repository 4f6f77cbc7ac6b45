"""The BaseNN-style builder: add() validation, shape errors, data loading, checkpoints,
inference, and the lesson programs of examples/basenn on small budgets."""

import importlib
import importlib.util
import os
import sys

import numpy as np
import pytest

from fastnn.basenn import model as model_module
from fastnn.basenn import nn

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples", "basenn")


# Small workloads: one kernel thread (see conftest.one_kernel_thread).
pytestmark = pytest.mark.usefixtures("one_kernel_thread")


def example(name):
    spec = importlib.util.spec_from_file_location(f"basenn_example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def doc_cnn(model):
    """BaseNN's documented CNN: 20x20 input gives 90 features at layer 5."""
    model.add("conv2d", size=(1, 3), kernel_size=(3, 3), activation="relu")
    model.add("maxpool", kernel_size=(2, 2))
    model.add("conv2d", size=(3, 10), kernel_size=(3, 3), activation="relu")
    model.add("avgpool", kernel_size=(2, 2))
    model.add("linear", size=(90, 10), activation="relu")
    model.add("linear", size=(10, 2), activation="softmax")
    model.add(optimizer="SGD")
    return model


# ------------------------------------------------------------------ add()

def test_unknown_layer_lists_valid_names():
    with pytest.raises(ValueError,
                       match=r"unknown layer 'dense'.*linear, conv1d, conv2d.*res_block"):
        nn().add("dense", size=(2, 3))


def test_missing_and_unexpected_arguments():
    with pytest.raises(ValueError, match=r"add\('Conv2D'\): missing argument\(s\) kernel_size"):
        nn().add("Conv2D", size=(1, 6))
    with pytest.raises(ValueError, match=r"add\('linear'\): missing argument\(s\) size"):
        nn().add("linear")
    with pytest.raises(ValueError, match=r"unexpected argument\(s\) kernel_size"):
        nn().add("linear", size=(2, 3), kernel_size=3)
    with pytest.raises(ValueError, match=r"size must be a pair"):
        nn().add("linear", size=4)


def test_unknown_activation_and_optimizer():
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; valid: ReLU, Softmax, tanh"):
        nn().add("linear", size=(2, 3), activation="gelu")
    with pytest.raises(ValueError, match=r"unknown optimizer 'RMSprop'; valid: SGD, Adam, Adagrad"):
        nn().add(optimizer="RMSprop")


def test_names_are_case_insensitive_and_activation_alone():
    m = nn()
    m.add("LINEAR", size=(4, 3), activation="RELU")
    m.add(activation="softmax")
    m.add(optimizer="adagrad")
    assert [e.spec["layer"] for e in m.layers] == ["linear", None]
    assert m.layers[1].spec["activation"] == "Softmax"
    assert m.optimizer == "Adagrad"


def test_pool_stride_defaults_to_kernel_size():
    m = nn()
    m.add("maxpool", kernel_size=(2, 2))
    m.add("avgpool", kernel_size=3, stride=1)
    assert m._shapes((2, 8, 8)) == [(2, 4, 4), (2, 2, 2)]


def test_unequal_stride_pair_rejected():
    with pytest.raises(ValueError, match=r"stride=\(1, 2\)"):
        nn().add("conv2d", size=(1, 2), kernel_size=3, stride=(1, 2))


@pytest.mark.parametrize("layer,kw,exc,match", [
    # each once escaped add(): OverflowError, ZeroDivisionError, or accepted
    ("Conv2D", dict(size=(1, 6), kernel_size=(0, 3)), ValueError,
     r"^add\('Conv2D'\): kernel_size must be >= 1, got \(0, 3\)$"),
    ("Conv2D", dict(size=(1, 6), kernel_size=3, stride=0), ValueError,
     r"^add\('Conv2D'\): stride must be >= 1, got 0$"),
    ("Conv2D", dict(size=(1, 6), kernel_size=3, padding=-1), ValueError,
     r"^add\('Conv2D'\): padding must be >= 0, got -1$"),
    ("Linear", dict(size=(1.5, 4)), TypeError,
     r"^add\('Linear'\): size must be a pair of integers like \(in, out\), got \(1.5, 4\)$"),
    ("Linear", dict(size=(144, 0)), ValueError,
     r"^add\('Linear'\): both entries of size must be >= 1, got \(144, 0\)$"),
    # and their relatives
    ("MaxPool", dict(kernel_size=2, stride=0), ValueError, r"stride must be >= 1, got 0"),
    ("AvgPool", dict(kernel_size=(2, 0)), ValueError, r"kernel_size must be >= 1"),
    ("Conv2D", dict(size=(1, 6), kernel_size=2.5), TypeError,
     r"kernel_size must be an integer or a pair of integers, got 2.5"),
    ("Conv2D", dict(size=(1, 6), kernel_size=(1, 2, 3)), ValueError,
     r"kernel_size must be an integer or a pair of integers, got \(1, 2, 3\)"),
    ("Conv1D", dict(size=(1, 2), kernel_size=3, stride=-1), ValueError, "stride must be >= 1"),
    ("Conv2D", dict(size=(0, 6), kernel_size=3), ValueError, "both entries of size must be"),
    ("Embedding", dict(vocab_size=0, embedding_dim=3), ValueError, "vocab_size must be >= 1"),
    ("BatchNorm2d", dict(size=0), ValueError, "size must be >= 1, got 0"),
    ("lstm", dict(size=(3, 4), num_layers=0), ValueError, "num_layers must be >= 1, got 0"),
    ("res_block", dict(size=(4, 8), num_blocks=1.0), TypeError,
     "num_blocks must be an integer, got 1.0"),
])
def test_add_validates_numbers_in_the_users_words(layer, kw, exc, match):
    m = nn()
    with pytest.raises(exc, match=match):
        m.add(layer, **kw)
    assert m.layers == []


# ------------------------------------------------------------------ shapes

def test_doc_cnn_shapes_and_flatten():
    m = doc_cnn(nn())
    assert m._shapes((1, 20, 20)) == [(3, 18, 18), (3, 9, 9), (10, 7, 7), (10, 3, 3), (10,), (2,)]


def test_layer5_shape_error_names_layer_expected_and_actual():
    m = doc_cnn(nn())
    x = np.zeros((4, 1, 14, 22), np.float32)       # gives (10, 2, 4): 80 features at layer 5
    m.load_dataset(x, np.zeros(4, np.int64))
    with pytest.raises(ValueError, match=r"layer 5 \(linear\(size=\(90, 10\)\) \+ ReLU\) "
                                         r"expects 90 input features .* but its input has 80"):
        m.train(epochs=1)
    with pytest.raises(ValueError, match="layer 5"):
        m.inference(x)


def test_shape_error_at_add_once_data_is_loaded():
    m = nn()
    m.load_dataset(np.zeros((3, 1, 8, 8)), np.zeros(3, np.int64))
    m.add("conv2d", size=(1, 2), kernel_size=3)
    with pytest.raises(ValueError, match=r"layer 2 .* expects 50 input features .* has 72"):
        m.add("linear", size=(50, 2))
    assert len(m.layers) == 1
    m.add("linear", size=(72, 2))
    assert m._shapes((1, 8, 8))[-1] == (2,)


def test_channel_mismatch_error():
    m = nn()
    m.add("conv2d", size=(3, 4), kernel_size=3)
    with pytest.raises(ValueError, match=r"layer 1 .* expects 3 input channels .* has 1"):
        m._shapes((1, 8, 8))


def test_print_model(capsys):
    m = doc_cnn(nn())
    m.load_dataset(np.zeros((2, 1, 20, 20)), np.zeros(2, np.int64))
    text = m.print_model()
    assert "(N, 10, 3, 3)" in text and "linear(size=(90, 10)) + ReLU" in text
    assert f"total parameters: {30 + 280 + 910 + 22}" in text
    assert capsys.readouterr().out.strip() == text


# ------------------------------------------------------------------ training, checkpoints

def _blobs(rng, n=90):
    y = rng.integers(0, 3, size=n)
    centers = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.5]])
    return (centers[y] + 0.4 * rng.standard_normal((n, 2))).astype(np.float32), y


def _small_model(seed=0):
    m = nn()
    m.set_seed(seed)
    m.add("linear", size=(2, 8), activation="tanh")
    m.add("linear", size=(8, 3), activation="softmax")
    m.add(optimizer="Adam")
    return m


def test_train_saves_atomically_and_resumes(tmp_path, rng, capsys):
    x, y = _blobs(rng)
    m = _small_model()
    m.load_dataset(x, y)
    m.save_fold = str(tmp_path / "ckpt")
    hist = m.train(lr=0.05, epochs=20, batch_size=30)
    assert hist[-1]["acc"] > 0.95 and hist[-1]["loss"] < hist[0]["loss"]
    assert m.task == "cls" and m.loss == "CrossEntropyLoss"
    out = capsys.readouterr().out
    assert "epoch: 20" in out and "acc:" in out
    path = tmp_path / "ckpt" / "basenn.pth"
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["basenn.pth"]      # no temp file left
    from safetensors import safe_open
    with safe_open(str(path), framework="numpy") as f:   # a safetensors file
        assert f.metadata()["format"] == "fastnn.basenn" and "spec" in f.metadata()
        assert "param:0.W" in f.keys()
    before = m.inference(x)

    fresh = nn()
    fresh.load_dataset(x, y)
    fresh.save_fold = str(tmp_path / "more")
    fresh.train(lr=0.05, epochs=1, checkpoint=str(path))
    assert fresh.epochs_done == 21 and fresh.optimizer == "Adam"
    loaded = nn()
    np.testing.assert_allclose(loaded.inference(x, checkpoint=str(path)), before, rtol=1e-6)


def test_checkpoint_mismatch_and_bad_file(tmp_path, rng):
    x, y = _blobs(rng)
    m = _small_model()
    m.load_dataset(x, y)
    m.train(epochs=1, save_fold=str(tmp_path))
    other = nn()
    other.add("linear", size=(2, 3))
    with pytest.raises(ValueError, match="different layers"):
        other.load(str(tmp_path / "basenn.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a fastnn.basenn checkpoint"):
        nn().load(str(bad))
    with pytest.raises(FileNotFoundError):
        nn().load(str(tmp_path / "missing.pth"))


def test_inference_single_sample_and_print_result(tmp_path, rng, capsys):
    x, y = _blobs(rng)
    m = _small_model()
    m.load_dataset(x, y, classes={"a": 0, "b": 1, "c": 2})
    m.train(lr=0.05, epochs=30, save_fold=str(tmp_path))
    one = m.inference(x[0])
    assert one.shape == (1, 3)
    np.testing.assert_allclose(one.sum(), 1.0, rtol=1e-5)
    res = m.print_result(m.inference(x[:2]))
    assert set(res) == {0, 1} and res[0]["预测值"] in ("a", "b", "c")
    assert 0 < res[0]["置信度"] <= 1
    assert "预测值" in capsys.readouterr().out


def test_regression_task_inferred_from_float_targets(tmp_path, rng):
    x = rng.uniform(-1, 1, size=(64, 1))
    m = nn()
    m.set_seed(0)
    m.load_dataset(x, 2 * x + 0.5)
    m.add("linear", size=(1, 1))
    m.add(optimizer="SGD")
    hist = m.train(lr=0.3, epochs=60, metrics=["mae", "mse"], save_fold=str(tmp_path))
    assert m.task == "reg" and m.loss == "MSELoss"
    assert hist[-1]["mae"] < 0.05 and hist[-1]["mse"] < hist[0]["mse"]
    res = m.print_result(m.inference(np.array([[0.0]])))
    assert abs(res[0]["预测值"] - 0.5) < 0.05


def test_one_hot_labels(tmp_path, rng):
    x, y = _blobs(rng)
    m = _small_model()
    m.load_dataset(x, np.eye(3, dtype=np.int64)[y])
    hist = m.train(lr=0.05, epochs=20, batch_size=30, save_fold=str(tmp_path))
    assert m.task == "cls" and hist[-1]["acc"] > 0.95


def test_train_errors(rng):
    m = nn()
    with pytest.raises(ValueError, match="no data"):
        m.train()
    m.load_dataset(np.zeros((4, 2)), np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="no layers"):
        m.train()
    m.add("linear", size=(2, 2))
    with pytest.raises(ValueError, match="unknown loss 'L1Loss'"):
        m.train(loss="L1Loss")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        m.train(metrics=["f1"])
    m.load_dataset(np.zeros((4, 2)), np.array([0, 1, 2, 5]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        m.train(loss="CrossEntropyLoss", epochs=1)
    with pytest.raises(ValueError, match="x has 4 samples but y has 3"):
        m.load_dataset(np.zeros((4, 2)), np.zeros(3))


def test_asgd_and_adagrad_train(tmp_path, rng):
    x, y = _blobs(rng)
    for opt in ("ASGD", "Adagrad"):
        m = _small_model()
        m.add(optimizer=opt)
        m.load_dataset(x, y)
        hist = m.train(lr=0.1, epochs=30, batch_size=15, save_fold=str(tmp_path))
        assert hist[-1]["acc"] > 0.9, opt


# ------------------------------------------------------------------ data loading

def _write_image_folder(root, rng, size=(10, 12), per_class=4):
    from PIL import Image

    for c, level in (("dark", 40), ("light", 210)):
        os.makedirs(root / c)
        for i in range(per_class):
            arr = np.clip(level + rng.integers(-20, 20, size=size), 0, 255).astype(np.uint8)
            Image.fromarray(arr).convert("RGB").save(root / c / f"{i}.png")


def test_load_img_data_imagefolder_resize_and_image_inference(tmp_path, rng):
    _write_image_folder(tmp_path / "train", rng)
    m = nn()
    m.set_seed(0)
    m.load_img_data(str(tmp_path / "train"), batch_size=4, transform={"Resize": (8, 8)},
                    color="grayscale")
    assert m.x.shape == (8, 1, 8, 8) and m.x.dtype == np.float32
    assert m.classes == ["dark", "light"] and list(m.y) == [0] * 4 + [1] * 4
    assert 0.0 <= m.x.min() and m.x.max() <= 1.0
    m.add("conv2d", size=(1, 2), kernel_size=3, activation="tanh")
    m.add("linear", size=(72, 2), activation="softmax")
    m.add(optimizer="Adam")
    m.train(lr=0.01, epochs=15, save_fold=str(tmp_path / "ck"))
    fresh = nn()
    res = fresh.inference(str(tmp_path / "train" / "light" / "0.png"),
                          checkpoint=str(tmp_path / "ck" / "basenn.pth"))
    assert res.shape == (1, 2)
    assert fresh.print_result(res)[0]["预测值"] == "light"
    assert fresh.inference(str(tmp_path / "train" / "dark")).shape == (4, 2)


def test_load_img_data_rgb_and_errors(tmp_path, rng):
    _write_image_folder(tmp_path / "d", rng, size=(6, 6), per_class=2)
    m = nn()
    m.load_img_data(str(tmp_path / "d"), color="RGB", transform={"Pad": 1})
    assert m.x.shape == (4, 3, 8, 8)
    with pytest.raises(ValueError, match="unknown step 'Blur'"):
        m.load_img_data(str(tmp_path / "d"), transform={"Blur": 2})
    with pytest.raises(ValueError, match="color must be"):
        m.load_img_data(str(tmp_path / "d"), color="CMYK")
    with pytest.raises(FileNotFoundError):
        m.load_img_data(str(tmp_path / "nope"))


def test_load_tab_data_csv(tmp_path, rng):
    path = tmp_path / "t.csv"
    rows = ["a,b,label"] + [f"{i * 0.1},{-i * 0.2},{i % 2}" for i in range(10)]
    path.write_text("\n".join(rows) + "\n")
    m = nn()
    m.load_tab_data(str(path), batch_size=5)
    assert m.x.shape == (10, 2) and m.y.dtype == np.int64 and m.batch_size == 5
    m.add("linear", size=(2, 2))
    m.train(epochs=1, save_fold=str(tmp_path / "ck"))
    assert m.inference(str(path), label=True).shape == (10, 2)


def test_classes_spellings():
    from fastnn.basenn.data import normalize_classes

    assert normalize_classes(["cat", "dog"]) == ["cat", "dog"]
    assert normalize_classes({0: "cat", 1: "dog"}) == ["cat", "dog"]
    assert normalize_classes({"cat": 0, "dog": 1}) == ["cat", "dog"]
    with pytest.raises(ValueError, match="index -> name or name -> index"):
        normalize_classes({0: 0, 1: 1.5})


def test_float32_by_default(rng):
    m = _small_model()
    x, y = _blobs(rng, 6)
    m.load_dataset(x.astype(np.float64), y)
    assert all(v.dtype == np.float32 for v in m._params().values())
    assert m.inference(x.astype(np.float64)).dtype == np.float32


# ------------------------------------------------------------------ lesson programs

def test_example_iris(tmp_path):
    acc = example("iris").main(epochs=150, save_fold=str(tmp_path))
    assert acc >= 0.9


def test_example_lenet_fashion_mnist_subset(tmp_path):
    """A CI-sized run (6000 images, 1 epoch, bar 65%); the full run (60000 images, 2 epochs)
    is the example's default and reaches the issue's 85%."""
    acc = example("lenet_fashion_mnist").main(epochs=1, n_train=6000, n_test=1000, lr=0.002,
                                              save_fold=str(tmp_path))
    assert acc >= 0.65


def test_example_trig_regression(tmp_path):
    mae = example("trig_regression").main(epochs=150, save_fold=str(tmp_path))
    assert mae < 0.06


def test_example_lstm_sequences(tmp_path):
    acc = example("lstm_sequences").main(epochs=20, n_train=400, save_fold=str(tmp_path))
    assert acc >= 0.9


def test_example_action_sequences(tmp_path):
    acc = example("action_sequences").main(save_fold=str(tmp_path))
    assert acc >= 0.85


def test_example_mobilenet_cats_dogs(tmp_path):
    acc = example("mobilenet_cats_dogs").main(data=None, epochs=10,
                                              save_fold=str(tmp_path / "ckpt"))
    assert acc >= 0.75


def test_example_resnet18_shapes_and_one_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mod = example("resnet18")
    big = mod.resnet18(224)
    x = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)
    documented = [(64, 112, 112), (64, 112, 112), (64, 56, 56), (64, 56, 56), (128, 28, 28),
                  (256, 14, 14), (512, 7, 7), (512,), (10,)]
    h, seen = big._as_input(x), []
    for e in big.layers:                     # the real forward, layer by layer
        for m in (e.module, e.act):
            if m is not None:
                h = m.forward(h, False)
        seen.append(h.shape)
    assert [s[1:] for s in seen[:7]] == documented[:7] and all(s[0] == 2 for s in seen)
    assert seen[7] == (2, 512, 1, 1) and seen[8] == (2, 10)   # (2, 512) once flattened
    assert sum(v.size for v in big._params().values()) == 11181706
    small = mod.resnet18(64)
    xs = np.random.default_rng(1).random((4, 3, 64, 64), dtype=np.float32)
    small.load_dataset(xs, np.array([0, 1, 2, 3]))
    w0 = small._params()["0.W"].copy()
    hist = small.train(lr=0.01, epochs=1, save_fold=str(tmp_path))
    assert np.isfinite(hist[0]["loss"]) and not np.array_equal(w0, small._params()["0.W"])


def _bench_basenn():
    """benchmarks/bench_basenn.py of this checkout. The repository root is not put on sys.path:
    where fastnn is installed (a wheel, tests run from elsewhere) the source tree's fastnn/
    would then shadow it; the package `benchmarks` is registered from its folder instead."""
    if "benchmarks" not in sys.modules:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "benchmarks")
        spec = importlib.util.spec_from_file_location(
            "benchmarks", os.path.join(root, "__init__.py"), submodule_search_locations=[root])
        package = importlib.util.module_from_spec(spec)
        sys.modules["benchmarks"] = package
        spec.loader.exec_module(package)
    return importlib.import_module("benchmarks.bench_basenn")


def test_benchmark_lenet_step_matches_torch():
    """The benchmark's two contenders compute the same training step."""
    torch = pytest.importorskip("torch", reason="torch parity tests need torch (CI installs it)")
    bench = _bench_basenn()
    fastnn_step, lenet, torch_step = bench.fastnn_step, bench.lenet, bench.torch_step

    rng = np.random.default_rng(3)
    x = rng.random((8, 1, 32, 32), dtype=np.float32)
    t = rng.integers(0, 10, 8)
    ours, theirs = fastnn_step(lenet()), torch_step(torch, lenet())
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    for _ in range(3):                        # equal losses after updates too
        np.testing.assert_allclose(ours(x, t), theirs(xt, tt).item(), rtol=1e-4)


def test_train_verbose_false_prints_nothing(tmp_path, rng, capsys):
    x, y = _blobs(rng)
    m = _small_model()
    m.load_dataset(x, y)
    hist = m.train(lr=0.05, epochs=2, save_fold=str(tmp_path), verbose=False)
    out = capsys.readouterr()
    assert out.out == "" and out.err == "" and len(hist) == 2


# ------------------------------------------------------------------ untrusted checkpoints

def _checkpoint_with(path, spec_layers, arrays, spec_text=None):
    """A safetensors checkpoint holding ``arrays`` and a description of ``spec_layers``."""
    import json
    from fastnn._safeio import safetensors_bytes
    spec = {"format": "fastnn.basenn", "version": 1, "task": "cls", "dtype": "float32",
            "loss": None, "optimizer": "SGD", "classes": None, "input_shape": None,
            "image": None, "epochs": 0, "layers": spec_layers}
    path.write_bytes(safetensors_bytes(arrays, {"format": "fastnn.basenn",
                                                "spec": spec_text or json.dumps(spec)}))
    return str(path)


def _linear(i, o):
    return {"layer": "linear", "activation": None, "kw": {"size": [i, o]}}


def test_forged_checkpoint_sizes_are_refused_before_building(tmp_path, monkeypatch):
    import time
    small = {"param:0.W": np.zeros((2, 3), np.float32), "param:0.b": np.zeros(3, np.float32)}
    built = []
    real = model_module.build_module
    monkeypatch.setattr(model_module, "build_module",
                        lambda *a, **k: built.append(a[0]) or real(*a, **k))
    # 1 KB that declares a 40000 x 40000 linear layer (12 GiB of float64 if it were built)
    path = _checkpoint_with(tmp_path / "big.pth", [_linear(40000, 40000)], small)
    assert os.path.getsize(path) < 1024
    with pytest.raises(ValueError, match=r"layer 1 \(linear \{\"size\": \[40000, 40000\]\}\) "
                                         r"declares 1600040000 parameters and 0 buffer values "
                                         r"but the file stores 9 and 0"):
        nn().load(path)
    start = time.perf_counter()
    blocks = {"layer": "res_block", "activation": None,
              "kw": {"size": [3, 3], "num_blocks": 10 ** 7, "stride": 1}}
    with pytest.raises(ValueError, match=r"num_blocks must be .* ints in \[1, 1000\]"):
        nn().load(_checkpoint_with(tmp_path / "blocks.pth", [blocks], small))
    blocks["kw"]["num_blocks"] = 1000
    with pytest.raises(ValueError, match="declares 174000 parameters and 12000 buffer values"):
        nn().load(_checkpoint_with(tmp_path / "blocks.pth", [blocks], small))
    assert time.perf_counter() - start < 5
    assert built == []


@pytest.mark.parametrize("layers, text, message", [
    (None, '{"format": "fastnn.basenn", "layers": [', "malformed model description "
                                                      r"\(not JSON"),
    ([{"layer": "linear", "kw": {"size": [2, 3]}}], None, "layer 1: expected keys layer, "
                                                          "activation, kw"),
    ([{"layer": "linear", "activation": None, "kw": {}}], None,
     r"layer 1 \(linear\): arguments \[\], expected \['size'\]"),
    ([{"layer": "conv9d", "activation": None, "kw": {}}], None, "unknown layer 'conv9d'"),
    ([{"layer": "linear", "activation": "Swish", "kw": {"size": [2, 3]}}], None,
     "unknown activation 'Swish'"),
    ([{"layer": "linear", "activation": None, "kw": {"size": [2, "3"]}}], None,
     r"size must be a list of 2 ints"),
    ([_linear(2, 3), _linear(3, 2)], None, r"layer 2 .* declares 8 parameters .* stores 0"),
    ("not a list", None, "layers must be a list"),
], ids=["json", "keys", "args", "layer", "activation", "size-type", "missing-arrays", "layers"])
def test_malformed_checkpoint_descriptions_are_clear_errors(tmp_path, layers, text, message):
    small = {"param:0.W": np.zeros((2, 3), np.float32), "param:0.b": np.zeros(3, np.float32)}
    path = _checkpoint_with(tmp_path / "bad.pth", layers, small, spec_text=text)
    with pytest.raises(ValueError, match=message) as info:
        nn().load(path)
    assert type(info.value) is ValueError and "malformed model description" in str(info.value)


def test_earlier_npz_checkpoints_still_load(tmp_path, rng):
    x, y = _blobs(rng)
    m = _small_model()
    m.load_dataset(x, y)
    m.train(lr=0.05, epochs=3, save_fold=str(tmp_path), verbose=False)
    arrays = {"__spec__": np.array(m._spec_json())}
    arrays.update({f"param:{k}": v for k, v in m._params().items()})
    np.savez(tmp_path / "old.pth.npz", **arrays)         # the format of earlier versions
    os.rename(tmp_path / "old.pth.npz", tmp_path / "old.pth")
    old = nn()
    np.testing.assert_array_equal(old.inference(x, checkpoint=str(tmp_path / "old.pth")),
                                  m.inference(x))
