"""fastnn.models: gradients against numerical ones, the book's init and params files."""

import pickle

import numpy as np
import pytest

from conftest import assert_parity
from fastnn.models import (DeepConvNet, MultiLayerNet, MultiLayerNetExtend, ParamsError,
                           SimpleConvNet, TwoLayerNet, d2l_mlp)

TINY_CONV = {'filter_num': 3, 'filter_size': 3, 'pad': 1, 'stride': 1}
SMALL_DEEP = [{'filter_num': k, 'filter_size': 3, 'pad': p, 'stride': 1}
              for k, p in [(2, 1), (2, 1), (3, 1), (3, 2), (4, 1), (4, 1)]]


def assert_gradient_matches(net, x, t, rtol=2e-5, atol=1e-7):
    """Backpropagation against the book's central differences (h = 1e-4: errors ~1e-6)."""
    grads = net.gradient(x, t)
    num = net.numerical_gradient(x, t)
    assert sorted(grads) == sorted(net.params) == sorted(num)
    for k in net.params:
        assert grads[k].shape == net.params[k].shape, k
        np.testing.assert_allclose(grads[k], num[k], rtol=rtol, atol=atol, err_msg=k)


def labels(rng, n, classes=3):
    return rng.integers(0, classes, n)


def test_simple_convnet_gradient(rng):
    np.random.seed(1)
    net = SimpleConvNet((2, 6, 5), TINY_CONV, hidden_size=4, output_size=3,
                        weight_init_std=0.3)
    assert net.params['W2'].shape == (3 * 3 * 2, 4)  # odd width 5 pools down to 2
    assert_gradient_matches(net, rng.standard_normal((3, 2, 6, 5)), labels(rng, 3))


def test_two_layer_net_gradient_and_book_names(rng):
    np.random.seed(2)
    net = TwoLayerNet(5, 4, 3, weight_init_std=0.5)
    assert net.lastLayer is net.last_layer
    assert list(net.layers) == ['Affine1', 'Relu1', 'Affine2']
    assert_gradient_matches(net, rng.standard_normal((4, 5)), labels(rng, 4))


@pytest.mark.parametrize("activation,init", [('relu', 'he'), ('sigmoid', 'xavier'),
                                             ('relu', 0.3)])
def test_multi_layer_net_gradient_with_weight_decay(rng, activation, init):
    np.random.seed(3)
    net = MultiLayerNet(6, [5, 4], 3, activation=activation, weight_init_std=init,
                        weight_decay_lambda=0.1)
    x, t = rng.standard_normal((4, 6)), labels(rng, 4)
    assert_gradient_matches(net, x, t)
    data_loss = net.last_layer.forward(net.predict(x), t)
    decay = 0.05 * sum(np.sum(net.params[f'W{i}'] ** 2) for i in (1, 2, 3))
    np.testing.assert_allclose(net.loss(x, t), data_loss + decay, rtol=1e-12)


def test_multi_layer_net_extend_batchnorm_gradient(rng):
    np.random.seed(4)
    net = MultiLayerNetExtend(6, [5, 4], 3, weight_decay_lambda=0.05, use_batchnorm=True)
    assert list(net.layers)[:3] == ['Affine1', 'BatchNorm1', 'Activation_function1']
    assert sorted(net.params) == sorted(['W1', 'b1', 'W2', 'b2', 'W3', 'b3', 'gamma1',
                                         'beta1', 'gamma2', 'beta2'])
    # The bias before batch norm has a zero gradient: compare it with an absolute tolerance.
    assert_gradient_matches(net, rng.standard_normal((5, 6)), labels(rng, 5))


def test_multi_layer_net_extend_dropout(rng):
    np.random.seed(5)
    net = MultiLayerNetExtend(6, [5], 3, use_dropout=True, dropout_ration=0.3)
    assert net.dropout_ration == 0.3 and 'Dropout1' in net.layers
    x = rng.standard_normal((4, 6))
    np.testing.assert_array_equal(net.predict(x), net.predict(x))  # test mode: deterministic
    net.layers['Dropout1'].dropout_ratio = 0.0
    assert_gradient_matches(net, x, labels(rng, 4))


def test_deep_convnet_gradient_and_book_layout(rng):
    np.random.seed(6)
    net = DeepConvNet((1, 8, 8), *SMALL_DEEP, hidden_size=5, output_size=3)
    for name in ('Dropout1', 'Dropout2'):
        net.layers[name].dropout_ratio = 0.0
    assert_gradient_matches(net, rng.standard_normal((2, 1, 8, 8)), labels(rng, 2))
    assert net.layers[0] is net.layers['Conv1'] and net.layers[-1] is net.layers['Dropout2']


def test_deep_convnet_default_shapes():
    net = DeepConvNet(dtype=np.float32)
    assert net.params['W7'].shape == (64 * 4 * 4, 50)
    assert net.params['W4'].shape == (32, 32, 3, 3)
    assert all(p.dtype == np.float32 for p in net.params.values())
    idx = [i for i, n in enumerate(net.layers) if n.startswith(('Conv', 'Affine'))]
    assert idx == [0, 2, 5, 7, 10, 12, 15, 18]  # the book's layer positions


def test_init_draws_like_the_book():
    np.random.seed(7)
    net = SimpleConvNet()
    np.random.seed(7)
    W1 = 0.01 * np.random.randn(30, 1, 5, 5)
    W2 = 0.01 * np.random.randn(4320, 100)
    W3 = 0.01 * np.random.randn(100, 10)
    np.testing.assert_array_equal(net.params['W1'], W1)
    np.testing.assert_array_equal(net.params['W2'], W2)
    np.testing.assert_array_equal(net.params['W3'], W3)
    np.random.seed(8)
    mlp = MultiLayerNet(784, [100, 50], 10, weight_init_std='relu')
    np.random.seed(8)
    np.testing.assert_array_equal(mlp.params['W1'], np.sqrt(2 / 784) * np.random.randn(784, 100))
    np.testing.assert_array_equal(mlp.params['W2'], np.sqrt(2 / 100) * np.random.randn(100, 50))


def test_float32_networks_compute_in_float32(rng):
    net = SimpleConvNet((1, 8, 8), TINY_CONV, hidden_size=6, output_size=4, dtype=np.float32)
    x = rng.random((5, 1, 8, 8)).astype(np.float32)
    assert all(p.dtype == np.float32 for p in net.params.values())
    assert net.predict(x).dtype == np.float32
    grads = net.gradient(x, labels(rng, 5, 4))
    assert all(g.dtype == np.float32 for g in grads.values())
    with pytest.raises(TypeError, match="float32 or float64"):
        MultiLayerNet(3, [2], 2, dtype=np.int32)


def test_layers_hold_the_params_so_updates_are_seen(rng):
    net = SimpleConvNet((1, 8, 8), TINY_CONV, hidden_size=6, output_size=4)
    assert net.layers['Conv1'].W is net.params['W1']
    assert net.layers['Affine2'].b is net.params['b3']
    x = rng.random((2, 1, 8, 8))
    before = net.predict(x)
    net.params['b3'] += 1.0
    np.testing.assert_allclose(net.predict(x), before + 1.0)


def test_accuracy_batches_count_every_image(rng):
    net = d2l_mlp(20, 8, 4)
    x, t = rng.standard_normal((23, 20)), labels(rng, 23, 4)
    expected = np.mean(np.argmax(net.predict(x), axis=1) == t)
    assert net.accuracy(x, t, batch_size=5) == pytest.approx(expected)
    assert net.accuracy(x, t, batch_size=100) == pytest.approx(expected)
    assert net.accuracy(x, np.eye(4)[t]) == pytest.approx(expected)  # one-hot labels
    with pytest.raises(ValueError, match="empty"):
        net.accuracy(x[:0], t[:0])


def test_d2l_mlp_configuration():
    net = d2l_mlp()
    assert [net.params[k].shape for k in ('W1', 'b1', 'W2', 'b2')] == [(784, 256), (256,),
                                                                      (256, 10), (10,)]
    assert type(net.layers['Activation_function1']).__name__ == 'Relu'


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="weight_init_std"):
        MultiLayerNet(3, [2], 2, weight_init_std='glorot')
    with pytest.raises(ValueError, match="activation"):
        MultiLayerNet(3, [2], 2, activation='tanh')
    with pytest.raises(ValueError, match="too small"):
        SimpleConvNet((1, 4, 4), {'filter_num': 2, 'filter_size': 5, 'pad': 0, 'stride': 1})
    with pytest.raises(ValueError, match="too small"):
        DeepConvNet((1, 3, 3))


# ------------------------------------------------------------------ parameter files

@pytest.mark.parametrize("name", ["params.pkl", "params.npz"])
def test_params_round_trip(tmp_path, rng, name):
    src = SimpleConvNet((1, 8, 8), TINY_CONV, hidden_size=6, output_size=4,
                        weight_init_std=0.3)
    src.save_params(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temp file left over
    dst = SimpleConvNet((1, 8, 8), TINY_CONV, hidden_size=6, output_size=4)
    held = dst.layers['Conv1'].W
    dst.load_params(tmp_path / name)
    assert dst.layers['Conv1'].W is held and dst.params['W1'] is held
    x = rng.random((3, 1, 8, 8))
    np.testing.assert_array_equal(dst.predict(x), src.predict(x))


def test_book_format_both_ways(tmp_path, rng):
    """A params.pkl as the book's save_params writes it (a plain pickled dict of float64
    arrays) loads and predicts identically; ours unpickles to the same plain dict."""
    np.random.seed(9)
    book = {'W1': 0.1 * np.random.randn(30, 1, 5, 5), 'b1': np.random.randn(30),
            'W2': 0.1 * np.random.randn(4320, 100), 'b2': np.random.randn(100),
            'W3': 0.1 * np.random.randn(100, 10), 'b3': np.random.randn(10)}
    with open(tmp_path / "book.pkl", "wb") as f:
        pickle.dump(book, f)
    net = SimpleConvNet()
    net.load_params(tmp_path / "book.pkl")
    x = rng.random((4, 1, 28, 28))
    for k in book:
        np.testing.assert_array_equal(net.params[k], book[k])
    net.save_params(tmp_path / "ours.pkl")
    with open(tmp_path / "ours.pkl", "rb") as f:
        ours = pickle.load(f)
    assert type(ours) is dict and sorted(ours) == sorted(book)
    for k in book:
        assert type(ours[k]) is np.ndarray
        np.testing.assert_array_equal(ours[k], book[k])
    # A float32 network converts the book's float64 values on load.
    net32 = SimpleConvNet(dtype=np.float32)
    net32.load_params(tmp_path / "book.pkl")
    assert net32.params['W2'].dtype == np.float32
    np.testing.assert_allclose(net32.predict(x.astype(np.float32)), net.predict(x),
                               rtol=1e-4, atol=1e-4)


def test_load_reports_what_differs(tmp_path):
    net = TwoLayerNet(4, 3, 2)
    bad = {k: v.copy() for k, v in net.params.items()}
    bad['W1'] = np.zeros((4, 5))
    bad['extra'] = np.zeros(1)
    del bad['b2']
    bad['W2'] = bad['W2'].astype(np.int64)
    with open(tmp_path / "bad.pkl", "wb") as f:
        pickle.dump(bad, f)
    with pytest.raises(ParamsError, match=r"missing b2; unexpected extra; W1 has shape "
                                          r"\(4, 5\) but the network expects \(4, 3\); "
                                          r"W2 has dtype int64"):
        net.load_params(tmp_path / "bad.pkl")
    with open(tmp_path / "list.pkl", "wb") as f:
        pickle.dump([1, 2], f)
    with pytest.raises(ParamsError, match="dict of NumPy arrays"):
        net.load_params(tmp_path / "list.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ParamsError, match="not a readable parameter pickle"):
        net.load_params(tmp_path / "junk.pkl")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ParamsError, match="not a readable .npz"):
        net.load_params(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        net.load_params(tmp_path / "missing.pkl")


def test_npz_is_loaded_without_pickle(tmp_path):
    net = TwoLayerNet(4, 3, 2)
    np.savez(tmp_path / "obj.npz", W1=np.array([object()], dtype=object))
    with pytest.raises(ParamsError, match="not a readable .npz"):
        net.load_params(tmp_path / "obj.npz")


def test_failed_save_leaves_no_file(tmp_path):
    net = TwoLayerNet(4, 3, 2)
    net.params['bad'] = np.array([lambda: 0], dtype=object)  # pickling a lambda fails
    with pytest.raises((pickle.PicklingError, AttributeError)):
        net.save_params(tmp_path / "p.pkl")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ complete checkpoints

def _trained_batchnorm_net(rng):
    """A MultiLayerNetExtend with batch norm, trained until its running statistics matter."""
    from fastnn.trainer import Trainer
    centers = 4 * rng.standard_normal((3, 10))
    t = rng.integers(0, 3, 600)
    x = (centers[t] + rng.standard_normal((600, 10)) + 5.0).astype(np.float32)
    np.random.seed(3)
    net = MultiLayerNetExtend(10, [20, 20], 3, use_batchnorm=True, dtype=np.float32)
    Trainer(net, x, t, x, t, epochs=3, mini_batch_size=50, optimizer="adam",
            optimizer_param={"lr": 0.01}, verbose=False).train()
    return net, x, t


@pytest.mark.parametrize("name", ["model.safetensors", "params.pkl", "params.npz"])
def test_batchnorm_statistics_survive_save_and_load(tmp_path, rng, name):
    net, x, t = _trained_batchnorm_net(rng)
    before = net.accuracy(x, t)
    assert before > 0.9
    net.save_params(tmp_path / name)
    np.random.seed(4)
    fresh = MultiLayerNetExtend(10, [20, 20], 3, use_batchnorm=True, dtype=np.float32)
    assert fresh.accuracy(x, t) < 0.8          # untrained statistics: far from the trained net
    fresh.load_params(tmp_path / name)
    assert fresh.accuracy(x, t) == before
    np.testing.assert_array_equal(fresh.predict(x), net.predict(x))
    for k, v in net.buffers().items():
        np.testing.assert_array_equal(fresh.buffers()[k], v)
        assert fresh.buffers()[k].dtype == np.float32


def test_book_pickle_without_statistics_loads_with_a_warning(tmp_path, rng):
    net, x, t = _trained_batchnorm_net(rng)
    with open(tmp_path / "book.pkl", "wb") as f:
        pickle.dump(net.params, f)              # the book's save_params: parameters only
    fresh = MultiLayerNetExtend(10, [20, 20], 3, use_batchnorm=True, dtype=np.float32)
    with pytest.warns(UserWarning, match="has no BatchNorm1.running_mean, "
                                         "BatchNorm1.running_var"):
        fresh.load_params(tmp_path / "book.pkl")
    np.testing.assert_array_equal(fresh.params["W1"], net.params["W1"])


@pytest.mark.parametrize("make", [
    lambda: SimpleConvNet((1, 10, 10), TINY_CONV, hidden_size=5, output_size=4,
                          dtype=np.float32),
    lambda: DeepConvNet((1, 16, 16), *SMALL_DEEP, hidden_size=6, output_size=3),
    lambda: MultiLayerNet(12, [7, 5], 3, activation="sigmoid", weight_init_std=0.1),
    lambda: MultiLayerNetExtend(12, [7, 5], 3, use_dropout=True, dropout_ration=0.2,
                                use_batchnorm=True, dtype=np.float32),
    lambda: TwoLayerNet(6, 4, 2),
    lambda: d2l_mlp(input_size=20, dtype=np.float32),
], ids=["simple", "deep", "multi", "extend", "two", "d2l"])
def test_load_model_rebuilds_the_network_from_its_file(tmp_path, rng, make):
    from fastnn import __version__
    from fastnn.models import load_model, read_description
    np.random.seed(0)
    net = make()
    net.save_params(tmp_path / "m.safetensors", metadata={"note": "hi"})
    cls, config, meta = read_description(tmp_path / "m.safetensors")
    assert cls is type(net) and meta["fastnn_version"] == __version__ and meta["note"] == "hi"
    assert meta["dtype"] == next(iter(net.params.values())).dtype.name
    state = np.random.get_state()[1].copy()
    loaded = load_model(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched
    assert type(loaded) is type(net) and loaded.config == net.config
    shape = (4,) + ((1,) + (10, 10) if isinstance(net, SimpleConvNet) else
                    (1, 16, 16) if isinstance(net, DeepConvNet) else
                    (net.params["W1"].shape[0],))
    xb = rng.random(shape).astype(next(iter(net.params.values())).dtype)
    np.testing.assert_array_equal(loaded.predict(xb), net.predict(xb))


def _forge_description(path, model, config):
    """Rewrite the description of a saved model file, keeping its arrays."""
    from fastnn._safeio import read_safetensors, safetensors_bytes
    arrays, meta = read_safetensors(path)
    meta.update(model=model, config=config)
    path.write_bytes(safetensors_bytes(arrays, meta))


def test_forged_descriptions_are_refused_before_building(tmp_path, monkeypatch):
    from fastnn.models import load_model
    np.random.seed(0)
    path = tmp_path / "m.safetensors"
    MultiLayerNet(4, [3], 2).save_params(path)
    built = []
    monkeypatch.setattr(MultiLayerNet, "__init__", lambda *a, **k: built.append(1))
    cases = [
        # a description of 40000 x 40000 weights next to 4 x 3 arrays: 12 GiB if it were built
        ('{"input_size": 40000, "hidden_size_list": [40000], "output_size": 2}',
         "description does not match the stored arrays"),
        ('{"input_size": 4, "hidden_size_list": [3]', "malformed MultiLayerNet description"),
        ('{"input_size": -4, "hidden_size_list": [3], "output_size": 2}',
         r"input_size must be an integer in \[1, 2147483648\]"),
        ('{"input_size": 4, "hidden_size_list": [3] , "output_size": 2, "bogus": 1}', None),
        ('[1, 2]', "not a JSON object"),
    ]
    for config, message in cases:
        _forge_description(path, "MultiLayerNet", config)
        if message is None:   # an unknown argument: shapes fit, the constructor refuses it
            monkeypatch.undo()
            with pytest.raises(ParamsError, match="cannot build the MultiLayerNet"):
                load_model(path)
            monkeypatch.setattr(MultiLayerNet, "__init__", lambda *a, **k: built.append(1))
            continue
        with pytest.raises(ParamsError, match=message):
            load_model(path)
    _forge_description(path, "os.system", "{}")
    with pytest.raises(ParamsError, match="unknown model 'os.system'"):
        load_model(path)
    assert built == []


def test_parameter_file_of_another_model_says_which(tmp_path):
    np.random.seed(0)
    TwoLayerNet(4, 3, 2).save_params(tmp_path / "m.safetensors")
    with pytest.raises(ParamsError, match=r"does not fit this network.*\(the file holds a "
                                          r"TwoLayerNet\)"):
        MultiLayerNet(4, [5], 2).load_params(tmp_path / "m.safetensors")


# ------------------------------------------------------------------ parity with the reference

@pytest.fixture
def reference_layers(monkeypatch):
    """Build networks from fastnn.reference.layers instead of fastnn.layers."""
    import fastnn.reference.layers as ref
    from fastnn.models import deep_convnet, multi_layer_net, simple_convnet, two_layer_net
    for mod in (deep_convnet, multi_layer_net, simple_convnet, two_layer_net):
        for name in ("Convolution", "Relu", "Sigmoid", "Pooling", "Affine", "SoftmaxWithLoss",
                     "Dropout", "BatchNormalization"):
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, getattr(ref, name))
    return ref


def _build_pair(make, reference_layers, monkeypatch):
    np.random.seed(11)
    ref_net = make()
    monkeypatch.undo()
    np.random.seed(11)
    return make(), ref_net


@pytest.mark.parametrize("make", [
    lambda dt: SimpleConvNet((1, 10, 10), TINY_CONV, hidden_size=7, output_size=4, dtype=dt),
    lambda dt: MultiLayerNetExtend(100, [9, 8], 4, weight_decay_lambda=0.01,
                                   use_batchnorm=True, dtype=dt),
    lambda dt: DeepConvNet((1, 10, 10), *SMALL_DEEP, hidden_size=6, output_size=4, dtype=dt),
], ids=["SimpleConvNet", "MultiLayerNetExtend", "DeepConvNet"])
def test_networks_match_the_reference_layers(rng, dtype, make, reference_layers, monkeypatch):
    fast, ref = _build_pair(lambda: make(dtype), reference_layers, monkeypatch)
    assert type(fast.layers['Affine1']).__module__ == 'fastnn.layers'
    assert type(ref.layers['Affine1']).__module__ == 'fastnn.reference.layers'
    x = rng.random((6, 1, 10, 10)).astype(dtype)
    t = rng.integers(0, 4, 6)
    for net in (fast, ref):
        for layer in net.layers.values():
            if type(layer).__name__ == 'Dropout':
                layer.dropout_ratio = 0.0
    gf, gr = fast.gradient(x, t), ref.gradient(x, t)
    assert fast.last_loss == pytest.approx(ref.last_loss, rel=1e-4 if dtype == np.float32
                                           else 1e-10)
    for k in gr:
        assert gf[k].dtype == dtype, k
        assert_parity(gf[k], gr[k], dtype, reduce_len=300, err_msg=k)
    assert_parity(fast.predict(x), ref.predict(x), dtype, reduce_len=300)
