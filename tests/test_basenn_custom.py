"""fastnn.basenn: action_model, reshape, module objects passed to add() (the book's layer
protocol and Module subclasses), and 'did you mean' for misspelt arguments."""

import os

import numpy as np
import pytest

from fastnn import layers as L
from fastnn.basenn import modules as M
from fastnn.basenn import nn
from test_basenn_grad import _check, _model, _reg_target

pytestmark = pytest.mark.usefixtures("one_kernel_thread")


def test_action_model_shapes_gradients_and_checkpoint(rng, tmp_path):
    x = rng.standard_normal((6, 5, 7))
    y = _reg_target(rng, 6, 3)
    m = _model([("action_model", dict(size=(7, 8))), ("linear", dict(size=(8, 3)))], x, y,
               "MSELoss")
    assert m._shapes(x.shape[1:]) == [(8,), (3,)]
    _check(m, x, y, rtol=1e-4, atol=1e-7)
    m.save(str(tmp_path / "a.pth"))
    again = nn()
    again.load(str(tmp_path / "a.pth"))
    np.testing.assert_allclose(again.inference(x), m.inference(x), rtol=1e-12)


def test_action_model_is_lstm_last_step_batchnorm(rng):
    """The same numbers as the three layers it stands for."""
    x = rng.standard_normal((4, 6, 5))
    a = nn(dtype=np.float64)
    a.set_seed(3)
    a.add("action_model", size=(5, 4))
    b = nn(dtype=np.float64)
    b.set_seed(3)
    b.add("lstm", size=(5, 4))
    lstm = b.layers[0].module
    seq = a.layers[0].module.modules
    for k, v in seq[0].params.items():
        lstm.params[k][...] = v
    bn = M.BatchNorm(4, 1, np.float64)
    ref = bn.forward(seq[0].forward(x, True)[:, -1, :], True)
    np.testing.assert_allclose(a._forward(x, True), ref, rtol=1e-12)


def test_reshape_flattens(rng):
    x = rng.standard_normal((3, 2, 4, 4))
    y = _reg_target(rng, 3, 2)
    m = _model([("conv2d", dict(size=(2, 3), kernel_size=3)), ("reshape", {}),
                ("linear", dict(size=(12, 2)))], x, y, "MSELoss")
    assert m._shapes(x.shape[1:])[1] == (12,)
    _check(m, x, y)


class BookAffine:
    """A vol. 1-style layer: W, b attributes, dW, db after backward, forward(x)."""

    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
        return dout @ self.W.T


def test_book_protocol_objects(rng):
    x = rng.standard_normal((5, 3))
    y = _reg_target(rng, 5, 2)
    m = nn(dtype=np.float64)
    m.add(BookAffine(rng.standard_normal((3, 4)), np.zeros(4)), activation="tanh")
    m.add(L.Affine(rng.standard_normal((4, 2)), np.zeros(2)))        # fastnn's own layer
    m.load_dataset(x, y)
    m.loss = "MSELoss"
    assert m._shapes(x.shape[1:]) == [(4,), (2,)]
    _check(m, x, y)


class Vol2Affine:
    """A vol. 2-style layer: params and grads lists, grads overwritten in place."""

    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]

    def forward(self, x):
        self.x = x
        return x @ self.params[0] + self.params[1]

    def backward(self, dout):
        self.grads[0][...] = self.x.T @ dout
        self.grads[1][...] = dout.sum(axis=0)
        return dout @ self.params[0].T


def test_vol2_protocol_objects_train(rng, tmp_path):
    x = rng.standard_normal((40, 3))
    y = (x[:, 0] > 0).astype(np.int64)
    layer = Vol2Affine(0.1 * rng.standard_normal((3, 2)), np.zeros(2))
    m = nn("cls", dtype=np.float64)
    m.load_dataset(x, y, batch_size=40)
    m.add(layer, activation="Softmax")
    m.add(optimizer="SGD")
    m.save_fold = str(tmp_path)
    W0 = layer.params[0].copy()
    m.train(lr=0.5, epochs=30, verbose=False)
    assert not np.allclose(layer.params[0], W0)            # updated in place, seen by the layer
    assert m.history[-1]["loss"] < m.history[0]["loss"]
    # the checkpoint loads into a model holding the same module
    fresh = Vol2Affine(np.zeros((3, 2)), np.zeros(2))
    again = nn("cls", dtype=np.float64)
    again.add(fresh, activation="Softmax")
    again.load(str(tmp_path / "basenn.pth"))
    np.testing.assert_array_equal(fresh.params[0], layer.params[0])
    with pytest.raises(ValueError, match=r"module of your own \(class Vol2Affine\)"):
        nn().load(str(tmp_path / "basenn.pth"))


class ActionNet(M.Module):
    """BaseNN's LSTM_model lesson rewritten on fastnn.basenn modules (fewer units): LSTMs with
    dropout, the last step, batch norm, linear layers; forward and backward by hand."""

    def __init__(self, n_in=6, n_actions=3):
        super().__init__()
        self.lstm1, self.dropout1 = M.LSTM((n_in, 8)), M.Dropout(0.2)
        self.lstm2, self.dropout2 = M.LSTM((8, 12)), M.Dropout(0.2)
        self.last, self.bn = M.LastStep(), M.BatchNorm(12, 1)
        self.dense1, self.dense2 = M.Linear((12, 8)), M.Linear((8, n_actions))
        self.order = [self.lstm1, self.dropout1, self.lstm2, self.dropout2, self.last, self.bn,
                      self.dense1, self.dense2]

    def forward(self, x, train):
        for m in self.order:
            x = m.forward(x, train)
        return x

    def backward(self, dout):
        for m in reversed(self.order):
            dout = m.backward(dout)
        return dout


def test_module_subclass_lesson_trains(rng, tmp_path):
    t = np.linspace(0, 1, 10)
    freqs = rng.integers(0, 3, 90)
    x = np.stack([np.sin(2 * np.pi * (f + 1) * t[:, None] + rng.uniform(0, 6, 6))
                  for f in freqs]).astype(np.float32)
    m = nn("cls")
    m.set_seed(0)
    m.load_dataset(x, freqs, batch_size=30)
    net = ActionNet()
    m.add(net, activation="Softmax")
    m.add(optimizer="Adam")
    m.save_fold = str(tmp_path)
    m.train(lr=0.01, epochs=40, verbose=False, metrics=["acc"])
    assert set(m.layers[0].module.params) >= {"lstm1.weight_ih_l0", "dense2.W", "bn.gamma"}
    assert "bn.running_mean" in m.layers[0].module.buffers
    acc = np.mean(m.inference(x).argmax(axis=1) == freqs)
    assert acc >= 0.8


def test_module_subclass_gradients(rng):
    x = rng.standard_normal((4, 5, 6))
    y = _reg_target(rng, 4, 3)
    m = nn(dtype=np.float64)
    net = ActionNet()
    for sub in net.order:                      # float64 parameters for the numerical check
        for k, v in sub.params.items():
            sub.params[k] = v.astype(np.float64)
        if isinstance(sub, M.Dropout):
            sub.kernel.dropout_ratio = 0.0
    net.lstm1 = net.order[0] = M.LSTM((6, 8), np.float64)
    net.lstm2 = net.order[2] = M.LSTM((8, 12), np.float64)
    net.bn = net.order[5] = M.BatchNorm(12, 1, np.float64)
    net.dense1 = net.order[6] = M.Linear((12, 8), dtype=np.float64)
    net.dense2 = net.order[7] = M.Linear((8, 3), dtype=np.float64)
    m.add(net)
    m.load_dataset(x, y)
    m.loss = "MSELoss"
    _check(m, x, y, rtol=1e-4, atol=1e-7)


def test_bad_module_objects_and_misspelt_arguments():
    with pytest.raises(TypeError, match="needs forward and backward methods; dict has neither"):
        nn().add({})
    with pytest.raises(ValueError, match=r"did you mean optimizer\?"):
        nn().add(optimmizer="Adam")
    with pytest.raises(ValueError, match=r"unexpected argument\(s\) kernal_size .*did you mean "
                                         r"kernel_size\?"):
        nn().add("conv2d", size=(1, 2), kernel_size=3, kernal_size=3)
    with pytest.raises(ValueError, match="takes only activation"):
        nn().add(BookAffine(np.ones((2, 2)), np.zeros(2)), size=(2, 2))


def test_visual_feature_extract_feature_and_show_one_layer(rng, tmp_path):
    x = rng.random((2, 1, 12, 12)).astype(np.float32)
    m = nn("cls")
    m.load_dataset(x, np.array([0, 1]))
    m.add("conv2d", size=(1, 3), kernel_size=3, activation="relu")
    m.add("maxpool", kernel_size=2)
    m.add("linear", size=(75, 2), activation="Softmax")
    files = m.visual_feature(x[0], save_fold=str(tmp_path / "layers"))
    assert [os.path.basename(f) for f in files] == ["layer_data.txt", "1.png", "2.png", "3.png"]
    assert all(os.path.getsize(f) > 0 for f in files)
    text = open(files[0]).read()
    assert "1.conv2d" in text and "[3, 10, 10]" in text and "[2]" in text
    one = m.visual_feature(x[0], in1img=True, save_fold=str(tmp_path / "one"))
    assert os.path.basename(one[-1]) == "layers.png"
    np.testing.assert_allclose(m.extract_feature(x[0]), m.inference(x[:1]), rtol=1e-6)
    with pytest.raises(ValueError, match="pretrained networks are not downloaded"):
        m.extract_feature(x[0], pretrain="resnet34")
    with pytest.raises(ValueError, match="give one sample, got a batch of 2"):
        m.extract_feature(x)
    path = m.show_one_layer(rng.random((4, 5, 5)), "maps", 7, str(tmp_path / "d"))
    assert path.endswith("7.png") and os.path.getsize(path) > 0


def _image_folder(root, n=6, size=8):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        os.makedirs(os.path.join(root, c))
        for i in range(n):
            level = 40 if c == "a" else 200
            img = np.clip(level + 20 * rng.standard_normal((size, size)), 0, 255)
            Image.fromarray(img.astype(np.uint8)).save(os.path.join(root, c, f"{i}.png"))
    return root


def test_batch_mode_reads_images_per_batch_with_the_same_result(tmp_path, monkeypatch):
    from fastnn.basenn import data as D
    folder = _image_folder(str(tmp_path / "imgs"))

    def run(batch_mode):
        m = nn("cls")
        m.set_seed(0)
        m.load_img_data(folder, batch_size=4, batch_mode=batch_mode, shuffle=True)
        m.add("linear", size=(64, 2), activation="Softmax")
        m.add(optimizer="Adam")
        m.train(lr=0.05, epochs=3, verbose=False, save_fold=str(tmp_path / str(batch_mode)),
                filename="lesson.pth")
        return m

    eager = run(False)
    reads = []
    original = D.load_image
    monkeypatch.setattr(D, "load_image", lambda *a, **k: reads.append(a[0]) or original(*a, **k))
    lazy = run(True)
    assert isinstance(lazy.x, D.ImageFiles) and lazy.x.shape == (12, 1, 8, 8)
    assert len(reads) == 1 + 3 * 12                 # the first image's shape, then per batch
    assert [r["loss"] for r in lazy.history] == [r["loss"] for r in eager.history]
    assert os.path.isfile(tmp_path / "True" / "lesson.pth")
    np.testing.assert_array_equal(lazy.inference(np.asarray(lazy.x[:3])),
                                  eager.inference(eager.x[:3]))


def test_load_tab_data_y_type(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,1\n")
    m = nn()
    m.load_tab_data(str(path), y_type="float")
    assert m.y.dtype == np.float32
    m.load_tab_data(str(path), y_type="long")
    assert m.y.dtype == np.int64
    path.write_text("a,b,y\n1,2,0.5\n3,4,1\n")
    with pytest.raises(ValueError, match="not whole numbers"):
        m.load_tab_data(str(path), y_type="long")
    with pytest.raises(ValueError, match="y_type must be"):
        m.load_tab_data(str(path), y_type="double")


# BaseNN 2.0.0's nn methods and their parameters (from its source, BaseNN/BaseNN.py); fastnn's
# nn must take every one of them by name. Defaults may differ where the README says so.
BASENN_API = {
    "__init__": ["task", "save_fold"],
    "add": ["layer", "activation", "optimizer"],
    "visual_feature": ["data", "in1img", "save_fold"],
    "extract_feature": ["data", "pretrain"],
    "show_one_layer": ["data", "layer_name", "num", "dir_name"],
    "dict2list": ["dict_data"],
    "load_img_data": ["data_path", "classes", "batch_size", "train_val_ratio", "shuffle",
                      "batch_mode", "transform", "color", "num_workers"],
    "load_tab_data": ["data_path", "batch_size", "train_val_ratio", "shuffle", "y_type",
                      "num_workers"],
    "load_npz_data": ["data_path", "batch_size", "shuffle", "classes", "train_val_ratio",
                      "num_workers"],
    "load_dataset": ["x", "y", "num_workers"],
    "set_seed": ["seed"],
    "train": ["lr", "epochs", "batch_num", "batch_size", "save_fold", "loss", "metrics",
              "filename", "checkpoint"],
    "inference": ["data", "show", "checkpoint", "hidden", "label", "num",
                  "return_all_timesteps"],
    "noisy": ["data", "timestep", "num", "show"],
    "show": ["data", "size", "visual_timesteps"],
    "print_model": [],
    "save": ["model_path"],
    "load": ["model_path"],
    "print_result": ["result"],
    "convert": ["checkpoint", "out_file"],
}


@pytest.mark.parametrize("method", sorted(BASENN_API))
def test_basenn_methods_take_basenns_parameters(method):
    import inspect
    assert hasattr(nn, method), f"nn has no {method}"
    params = inspect.signature(getattr(nn, method)).parameters
    names = set(params) - {"self"}
    missing = [p for p in BASENN_API[method] if p not in names]
    if method == "inference":                  # positional calls: BaseNN's order
        assert [p for p in params if p != "self"][:7] == BASENN_API[method]
    assert not missing, f"nn.{method} lacks BaseNN's parameter(s) {missing}"


def test_adding_a_stateful_object_leaves_its_state_alone(rng):
    """The output shape is found on a copy: a stateful vol. 2 TimeLSTM keeps h = None."""
    from fastnn.dlfs2.time_layers import TimeLSTM
    Wx, Wh = rng.standard_normal((3, 16)), rng.standard_normal((4, 16))
    layer = TimeLSTM(Wx, Wh, np.zeros(16), stateful=True)
    m = nn(dtype=np.float64)
    m.load_dataset(rng.standard_normal((5, 6, 3)), np.zeros((5, 6, 4)))
    m.add(layer)
    assert m._shapes((6, 3)) == [(6, 4)]
    assert layer.h is None
    fresh = TimeLSTM(Wx, Wh, np.zeros(16), stateful=True)
    x = rng.standard_normal((5, 6, 3))
    np.testing.assert_array_equal(layer.forward(x), fresh.forward(x))


def test_dropout_p_one_and_checkpoints_of_the_books_dropout(rng, tmp_path):
    import json
    from fastnn._safeio import read_safetensors, safetensors_bytes
    x = rng.standard_normal((4, 3)).astype(np.float32)
    m = nn()
    m.load_dataset(x, np.array([0, 1, 0, 1]))
    m.add("linear", size=(3, 2))
    m.add("dropout", p=1)
    assert not np.any(m._forward(m._as_input(x), True))       # everything dropped
    np.testing.assert_array_equal(m._forward(m._as_input(x), False),
                                  m._forward(m._as_input(x), False))
    path = str(tmp_path / "m.pth")
    m.save(path)
    arrays, meta = read_safetensors(path)
    spec = json.loads(meta["spec"])
    spec["version"] = 1                                          # written before the change
    with open(path, "wb") as f:
        f.write(safetensors_bytes(arrays, {"format": meta["format"], "spec": json.dumps(spec)}))
    with pytest.raises(ValueError, match="Dropout scaled at inference .* train it again"):
        nn().load(path)


def test_a_deeply_nested_description_is_a_value_error(tmp_path):
    from fastnn._safeio import safetensors_bytes
    spec = '{"format": "fastnn.basenn", "layers": ' + "[" * 100000 + "]" * 100000 + "}"
    path = tmp_path / "deep.pth"
    path.write_bytes(safetensors_bytes({}, {"format": "fastnn.basenn", "spec": spec}))
    with pytest.raises(ValueError, match="nested too deeply"):
        nn().load(str(path))
