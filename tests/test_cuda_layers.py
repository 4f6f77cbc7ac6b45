"""Book layers, optimizers, networks and the Trainer on CuPy arrays (the CUDA build on a GPU)
against the same on NumPy, and the device-placement API (``net.to``) that also works without
a GPU. The GPU checks are skipped with fastnn.cuda.reason() unless CUDA is usable here."""

import pickle
import re

import numpy as np
import pytest

from fastnn import _device, cuda, layers, optim
from fastnn.gradient import gradient_check
from fastnn.models import (DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet,
                           TwoLayerNet)
from fastnn.trainer import Trainer

from conftest import assert_parity

gpu = pytest.mark.skipif(not cuda.is_available(),
                         reason=f"no usable CUDA here: {cuda.reason() or 'available'}")
no_gpu = pytest.mark.skipif(cuda.is_available(),
                            reason="checks the behaviour without a usable GPU")

TINY_CONV = {'filter_num': 4, 'filter_size': 3, 'pad': 1, 'stride': 1}
SMALL_DEEP = [{'filter_num': k, 'filter_size': 3, 'pad': p, 'stride': 1}
              for k, p in [(2, 1), (2, 1), (3, 1), (3, 2), (4, 1), (4, 1)]]


class FakeDeviceArray:
    """Quacks like a CuPy array as far as dispatch can tell."""
    __cuda_array_interface__ = {"shape": (2, 3), "typestr": "<f4", "data": (0, False),
                                "version": 3}
    shape, ndim, size, dtype = (2, 3), 2, 6, np.dtype(np.float32)

    def __len__(self):
        return 2


def _small_convnet(dtype=np.float64):
    return SimpleConvNet((1, 6, 6), TINY_CONV, hidden_size=5, output_size=3,
                         weight_init_std=0.3, dtype=dtype)


# ---------------------------------------------------------------- without a GPU too

def test_to_cpu_keeps_a_cpu_network_as_it_is():
    np.random.seed(0)
    net = _small_convnet()
    before = dict(net.params)
    assert net.device == "cpu"
    assert net.to("cpu") is net and net.cpu() is net and net.to(" CPU ") is net
    assert all(net.params[k] is before[k] for k in before)
    assert net.layers['Conv1'].W is net.params['W1'] and net.layers['Affine2'].b is \
        net.params['b3']


def test_to_cpu_makes_parameters_contiguous_and_relinks_the_layers():
    np.random.seed(0)
    net = MultiLayerNetExtend(4, [3], 2, use_batchnorm=True)
    net.params['W1'] = np.asfortranarray(net.params['W1'])
    net.layers['BatchNorm1'].running_mean = [0.5, 0.25, 0.0]  # a list becomes an array
    w1 = net.params['W1'].copy()
    net.to("cpu")
    assert net.params['W1'].flags.c_contiguous
    np.testing.assert_array_equal(net.params['W1'], w1)
    assert net.layers['Affine1'].W is net.params['W1']
    assert net.layers['BatchNorm1'].gamma is net.params['gamma1']
    np.testing.assert_array_equal(net.layers['BatchNorm1'].running_mean, [0.5, 0.25, 0.0])


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:", "cuda:-1", "tpu", 0, None])
def test_to_rejects_unknown_devices(bad):
    net = TwoLayerNet(3, 2, 2)
    with pytest.raises(ValueError, match=r"^TwoLayerNet\.to: device must be 'cpu', 'cuda' or "
                                         r"'cuda:N', got "):
        net.to(bad)


@no_gpu
@pytest.mark.parametrize("move", [lambda n: n.to("cuda"), lambda n: n.to("cuda:0"),
                                  lambda n: n.cuda(), lambda n: n.cuda(1)],
                         ids=["to-cuda", "to-cuda:0", "cuda()", "cuda(1)"])
def test_to_cuda_without_cuda_names_the_reason(move):
    np.random.seed(0)
    net = _small_convnet()
    before = dict(net.params)
    with pytest.raises(RuntimeError, match=r"^SimpleConvNet\.to: CUDA cannot be used here: "
                                           + re.escape(cuda.reason())):
        move(net)
    assert all(net.params[k] is before[k] for k in before)  # nothing moved


@no_gpu
@pytest.mark.parametrize("call", [
    lambda a: layers.Affine(np.zeros((3, 2)), np.zeros(2)).forward(a),
    lambda a: layers.Dropout().forward(a),
    lambda a: layers.BatchNormalization(np.ones(3), np.zeros(3)).forward(a),
    lambda a: layers.SoftmaxWithLoss().forward(a, np.zeros(2, np.int64)),
    lambda a: TwoLayerNet(3, 2, 2).accuracy(a, np.zeros(2, np.int64)),
    lambda a: Trainer(TwoLayerNet(3, 2, 2), a, np.zeros(2, np.int64), a, np.zeros(2),
                      verbose=False),
], ids=["Affine", "Dropout", "BatchNormalization", "SoftmaxWithLoss", "accuracy", "Trainer"])
def test_gpu_arrays_without_cuda_are_a_clear_type_error(call):
    with pytest.raises(TypeError, match=r"^(Affine|Dropout|BatchNormalization|SoftmaxWithLoss|"
                                        r"accuracy|Trainer): got a GPU array"):
        call(FakeDeviceArray())


def test_device_helpers_on_the_host():
    a = np.arange(6.0).reshape(2, 3)
    assert _device.to_host(a) is a
    np.testing.assert_array_equal(_device.to_host([[1, 2]]), [[1, 2]])
    assert _device.name_of(a) == "cpu"
    assert _device.parse("cuda:3", "x") == ("cuda", 3)
    assert _device.parse("cuda", "x") == ("cuda", None)
    assert _device.mover("cpu", "x")(a) is a


def test_accuracy_and_trainer_histories_are_python_floats():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((30, 4)), rng.integers(0, 2, 30)
    np.random.seed(0)
    net = TwoLayerNet(4, 5, 2)
    assert type(net.accuracy(x, t, batch_size=7)) is float
    tr = Trainer(net, x, t, x, t, epochs=2, mini_batch_size=10, verbose=False)
    acc = tr.train()
    assert type(acc) is float
    assert all(type(v) is float for v in tr.train_loss_list + tr.train_acc_list
               + tr.test_acc_list)


# ---------------------------------------------------------------- on a GPU

@pytest.fixture
def cp():
    import cupy
    return cupy


def on_gpu(cp, a):
    """``a`` is a CuPy array on the current device."""
    assert isinstance(a, cp.ndarray), type(a)
    assert a.device.id == cp.cuda.Device().id


def close(cp, actual, expected, reduce_len=1, dtype=None):
    """``actual`` is on the GPU and matches the host result (values, shape and dtype)."""
    on_gpu(cp, actual)
    expected = np.asarray(expected)
    assert_parity(cp.asnumpy(actual), expected, dtype or expected.dtype, reduce_len=reduce_len)


@gpu
@pytest.mark.parametrize("cls", [layers.Relu, layers.Sigmoid, layers.Tanh])
def test_activation_layers(cp, rng, dtype, cls):
    x = rng.standard_normal((4, 3, 5)).astype(dtype) * 3
    dout = rng.standard_normal((4, 3, 5)).astype(dtype)
    dev, host = cls(), cls()
    close(cp, dev.forward(cp.asarray(x)), host.forward(x.copy()))
    close(cp, dev.backward(cp.asarray(dout)), host.backward(dout.copy()))
    if cls is layers.Relu:
        on_gpu(cp, dev.mask)
        np.testing.assert_array_equal(cp.asnumpy(dev.mask), host.mask)
    else:
        close(cp, dev.out, host.out)


@gpu
@pytest.mark.parametrize("N", [1, 7])
def test_affine_layer(cp, rng, dtype, N):
    x = rng.standard_normal((N, 2, 3, 2)).astype(dtype)
    W, b = rng.standard_normal((12, 5)).astype(dtype), rng.standard_normal(5).astype(dtype)
    dout = rng.standard_normal((N, 5)).astype(dtype)
    dev, host = layers.Affine(cp.asarray(W), cp.asarray(b)), layers.Affine(W, b)
    close(cp, dev.forward(cp.asarray(x)), host.forward(x), 12)
    dx = dev.backward(cp.asarray(dout))
    close(cp, dx, host.backward(dout), 5)
    assert dx.shape == x.shape and dev.original_x_shape == x.shape
    close(cp, dev.dW, host.dW, N)
    close(cp, dev.db, host.db, N)
    close(cp, dev.x, host.x)
    # A NumPy batch for a layer whose weights are on the GPU is moved there.
    close(cp, dev.forward(x), host.forward(x), 12)


@gpu
@pytest.mark.parametrize("labels", ["integer", "one-hot"])
def test_softmax_with_loss_layer(cp, rng, dtype, labels):
    N, C = 6, 4
    x = rng.standard_normal((N, C)).astype(dtype) * 2
    t = rng.integers(0, C, N)
    if labels == "one-hot":
        t = np.eye(C, dtype=dtype)[t]
    dev, host = layers.SoftmaxWithLoss(), layers.SoftmaxWithLoss()
    loss = dev.forward(cp.asarray(x), cp.asarray(t))
    loss_host = host.forward(x, t)
    on_gpu(cp, loss)
    assert loss.shape == () and loss.dtype == dtype
    assert_parity(cp.asnumpy(loss), loss_host, dtype, reduce_len=N)
    close(cp, dev.y, host.y, C)
    close(cp, dev.backward(), host.backward(), C)
    close(cp, dev.backward(cp.asarray(2.5, dtype=dtype)), host.backward(2.5), C)
    # Host labels (a NumPy array, or a list of integers) with device logits are moved there.
    for labels_host in (t, t.tolist()) if labels == "integer" else (t,):
        assert_parity(cp.asnumpy(dev.forward(cp.asarray(x), labels_host)), loss_host, dtype,
                      reduce_len=N)
        close(cp, dev.backward(), host.backward(), C)


@gpu
def test_softmax_with_loss_single_sample(cp, rng, dtype):
    x = rng.standard_normal(5).astype(dtype)
    dev, host = layers.SoftmaxWithLoss(), layers.SoftmaxWithLoss()
    loss = dev.forward(cp.asarray(x), 3)
    assert_parity(cp.asnumpy(loss), host.forward(x, 3), dtype, reduce_len=5)
    assert dev.y.shape == (5,)
    close(cp, dev.backward(), host.backward(), 5)


@gpu
def test_dropout_masks_come_from_the_device_rng(cp, rng, dtype):
    x = rng.standard_normal((60, 50)).astype(dtype)
    dout = rng.standard_normal((60, 50)).astype(dtype)
    layer = layers.Dropout(0.3)
    host_state = np.random.get_state()[1].copy()
    cp.random.seed(7)
    out = layer.forward(cp.asarray(x))
    on_gpu(cp, out)
    on_gpu(cp, layer.mask)
    assert out.dtype == dtype and layer.mask.dtype == np.bool_
    mask = cp.asnumpy(layer.mask)
    assert 0.6 < mask.mean() < 0.8  # 3000 draws kept with probability 0.7
    np.testing.assert_array_equal(np.random.get_state()[1], host_state)  # NumPy's RNG unused
    np.testing.assert_array_equal(cp.asnumpy(out), x * mask)
    dx = layer.backward(cp.asarray(dout))
    on_gpu(cp, dx)
    np.testing.assert_array_equal(cp.asnumpy(dx), dout * mask)
    again = layers.Dropout(0.3)
    cp.random.seed(7)
    again.forward(cp.asarray(x))
    np.testing.assert_array_equal(cp.asnumpy(again.mask), mask)  # seeded by cupy.random.seed
    close(cp, layer.forward(cp.asarray(x), train_flg=False), layers.Dropout(0.3).forward(
        x, train_flg=False))


@gpu
@pytest.mark.parametrize("shape", [(6, 5), (4, 2, 3, 3)])
def test_batchnorm_layer(cp, rng, dtype, shape):
    D = int(np.prod(shape[1:]))
    gamma = rng.standard_normal(D).astype(dtype)
    beta = rng.standard_normal(D).astype(dtype)
    dev = layers.BatchNormalization(cp.asarray(gamma), cp.asarray(beta), momentum=0.8)
    host = layers.BatchNormalization(gamma, beta, momentum=0.8)
    N = shape[0]
    for step in range(2):
        x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
        close(cp, dev.forward(cp.asarray(x)), host.forward(x), N)
        for name in ("running_mean", "running_var", "xc", "xn", "std"):
            close(cp, getattr(dev, name), getattr(host, name), N)
    dout = rng.standard_normal(shape).astype(dtype)
    close(cp, dev.backward(cp.asarray(dout)), host.backward(dout), N * N)
    close(cp, dev.dgamma, host.dgamma, N)
    close(cp, dev.dbeta, host.dbeta, N)
    close(cp, dev.forward(cp.asarray(x), train_flg=False), host.forward(x, train_flg=False))
    # Inference before any training: the running averages start as zeros on the device.
    fresh = layers.BatchNormalization(cp.asarray(gamma), cp.asarray(beta))
    out = fresh.forward(cp.asarray(x), train_flg=False)
    close(cp, out, layers.BatchNormalization(gamma, beta).forward(x, train_flg=False))
    close(cp, fresh.running_mean, np.zeros(D))
    close(cp, fresh.running_var, np.zeros(D))


@gpu
@pytest.mark.parametrize("geo", [(2, 3, 7, 6, 3, 3, 1, 1), (3, 2, 9, 8, 2, 3, 2, 0)])
def test_convolution_layer(cp, rng, dtype, geo):
    N, C, H, W, FH, FW, stride, pad = geo
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((4, C, FH, FW)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    dev = layers.Convolution(cp.asarray(Wt), cp.asarray(b), stride, pad)
    host = layers.Convolution(Wt, b, stride, pad)
    out_host = host.forward(x)
    close(cp, dev.forward(cp.asarray(x)), out_host, C * FH * FW)
    dout = rng.standard_normal(out_host.shape).astype(dtype)
    close(cp, dev.backward(cp.asarray(dout)), host.backward(dout), 4 * FH * FW)
    close(cp, dev.dW, host.dW, dout.size)
    close(cp, dev.db, host.db, dout.size)
    close(cp, dev.col, host.col)
    close(cp, dev.col_W, host.col_W)


@gpu
@pytest.mark.parametrize("cls", [layers.Pooling, layers.AvgPooling])
@pytest.mark.parametrize("geo", [(2, 3, 6, 6, 2, 2, 2, 0), (1, 2, 7, 5, 3, 2, 2, 1)])
def test_pooling_layers(cp, rng, dtype, cls, geo):
    N, C, H, W, FH, FW, stride, pad = geo
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    dev, host = cls(FH, FW, stride, pad), cls(FH, FW, stride, pad)
    out_host = host.forward(x)
    close(cp, dev.forward(cp.asarray(x)), out_host)
    dout = rng.standard_normal(out_host.shape).astype(dtype)
    close(cp, dev.backward(cp.asarray(dout)), host.backward(dout), FH * FW)
    if cls is layers.Pooling:
        on_gpu(cp, dev.arg_max)
        np.testing.assert_array_equal(cp.asnumpy(dev.arg_max), host.arg_max)


OPTIMIZERS = [(optim.SGD, dict(lr=0.1)), (optim.Momentum, dict(lr=0.05, momentum=0.8)),
              (optim.Nesterov, dict(lr=0.05, momentum=0.8)), (optim.AdaGrad, dict(lr=0.1)),
              (optim.RMSprop, dict(lr=0.01, decay_rate=0.9)), (optim.Adam, dict(lr=0.01))]


@gpu
@pytest.mark.parametrize("cls,kw", OPTIMIZERS, ids=[c.__name__ for c, _ in OPTIMIZERS])
def test_optimizers_update_device_params_in_place(cp, rng, dtype, cls, kw):
    params = {"W": rng.standard_normal((5, 4)).astype(dtype),
              "b": rng.standard_normal(4).astype(dtype)}
    dev_params = {k: cp.asarray(v) for k, v in params.items()}
    held = dict(dev_params)
    host, dev = cls(**kw), cls(**kw)
    for _ in range(4):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
        host.update(params, grads)
        dev.update(dev_params, {k: cp.asarray(g) for k, g in grads.items()})
    for k in params:
        assert dev_params[k] is held[k]  # updated in place, as the layers hold them
        close(cp, dev_params[k], params[k], 4)
    states = [a for a in ("v", "h", "m") if hasattr(host, a)]
    assert states or cls is optim.SGD
    for a in states:
        for k in params:
            close(cp, getattr(dev, a)[k], getattr(host, a)[k], 4)


@gpu
@pytest.mark.parametrize("cls,kw", OPTIMIZERS, ids=[c.__name__ for c, _ in OPTIMIZERS])
def test_optimizers_update_many_device_params_in_one_launch(cp, rng, dtype, cls, kw):
    """40 parameters (more than one launch takes), some empty, as on the CPU; a dict mixing
    dtypes takes one launch per parameter and gives the same."""
    shapes = [(i % 7, 3) if i % 5 else (0,) for i in range(40)] + [(300, 257)]
    params = {f"p{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}
    dev_params = {k: cp.asarray(v) for k, v in params.items()}
    held = dict(dev_params)
    mixed = {"a": rng.standard_normal((4, 3)).astype(np.float32),
             "b": rng.standard_normal(5)}
    dev_mixed = {k: cp.asarray(v) for k, v in mixed.items()}
    host, dev, host_mixed, dev_mixed_opt = cls(**kw), cls(**kw), cls(**kw), cls(**kw)
    for _ in range(3):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
        host.update(params, grads)
        dev.update(dev_params, {k: cp.asarray(g) for k, g in grads.items()})
        mgrads = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in mixed.items()}
        host_mixed.update(mixed, mgrads)
        dev_mixed_opt.update(dev_mixed, {k: cp.asarray(g) for k, g in mgrads.items()})
    for k in params:
        assert dev_params[k] is held[k]
        close(cp, dev_params[k], params[k], 3)
    for k in mixed:
        close(cp, dev_mixed[k], mixed[k], 3)


@gpu
@pytest.mark.parametrize("cls,kw", OPTIMIZERS[1:], ids=[c.__name__ for c, _ in OPTIMIZERS[1:]])
def test_optimizer_state_follows_a_network_to_the_gpu(cp, rng, cls, kw):
    x, t = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    np.random.seed(1)
    host = TwoLayerNet(5, 4, 3, weight_init_std=0.5)
    np.random.seed(1)
    moved = TwoLayerNet(5, 4, 3, weight_init_std=0.5)
    opt_host, opt_moved = cls(**kw), cls(**kw)
    xs, ts = x, t
    for step in range(4):
        if step == 2:
            moved.to("cuda")  # the optimizer's state, made on the host, follows
            xs, ts = cp.asarray(x), cp.asarray(t)
        opt_host.update(host.params, host.gradient(x, t))
        opt_moved.update(moved.params, moved.gradient(xs, ts))
    for k in host.params:
        close(cp, moved.params[k], host.params[k], 6)
    for a in ("v", "h", "m"):
        for k, s in (getattr(opt_moved, a, None) or {}).items():
            close(cp, s, getattr(opt_host, a)[k], 6)


def _pair(make, seed):
    """The same network twice (same initial weights): on the host and moved to the GPU."""
    np.random.seed(seed)
    host = make()
    np.random.seed(seed)
    return host, make().to("cuda")


def _check_on_gpu(cp, net):
    assert net.device == f"cuda:{cp.cuda.Device().id}"
    for key, name, attr in net._grad_map:
        on_gpu(cp, net.params[key])
        assert getattr(net.layers[name], attr[1:]) is net.params[key], key


def _replay_dropout_masks(cp, monkeypatch, dev_net):
    """Make the host's Dropout layers draw the masks the GPU's drew (np.random.rand values
    1 where kept, 0 where dropped, in the order the layers run)."""
    masks = iter([cp.asnumpy(layer.mask) for layer in dev_net.layers.values()
                  if isinstance(layer, layers.Dropout)])

    def rand(*shape):
        mask = next(masks)
        assert mask.shape == shape
        return np.where(mask, 1.0, 0.0)

    monkeypatch.setattr(np.random, "rand", rand)


NETWORKS = {
    "SimpleConvNet": (_small_convnet, (1, 6, 6)),
    "TwoLayerNet": (lambda dt: TwoLayerNet(6, 5, 3, weight_init_std=0.5, dtype=dt), (6,)),
    "MultiLayerNet": (lambda dt: MultiLayerNet(6, [5, 4], 3, activation='sigmoid',
                                               weight_decay_lambda=0.1, dtype=dt), (6,)),
    "MultiLayerNetExtend": (lambda dt: MultiLayerNetExtend(
        6, [5, 4], 3, weight_decay_lambda=0.05, use_dropout=True, dropout_ration=0.3,
        use_batchnorm=True, dtype=dt), (6,)),
    "DeepConvNet": (lambda dt: DeepConvNet((1, 8, 8), *SMALL_DEEP, hidden_size=5,
                                           output_size=3, dtype=dt), (1, 8, 8)),
}


@gpu
@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_gradient_on_the_gpu(cp, rng, dtype, monkeypatch, name):
    make, shape = NETWORKS[name]
    host, dev = _pair(lambda: make(dtype), seed=3)
    _check_on_gpu(cp, dev)
    N = 8
    x = rng.standard_normal((N,) + shape).astype(dtype)
    t = rng.integers(0, 3, N)
    grads = dev.gradient(cp.asarray(x), cp.asarray(t))
    _replay_dropout_masks(cp, monkeypatch, dev)  # the same masks for the host's dropout
    grads_host = host.gradient(x, t)
    monkeypatch.undo()
    assert sorted(grads) == sorted(grads_host) == sorted(host.params)
    for k in grads_host:
        close(cp, grads[k], grads_host[k], 100)
    on_gpu(cp, dev.last_loss)
    np.testing.assert_allclose(float(dev.last_loss), float(host.last_loss),
                               rtol=1e-4 if dtype == np.float32 else 1e-10)
    for lname, layer in host.layers.items():  # batch norm's running averages, on the device
        if isinstance(layer, layers.BatchNormalization):
            close(cp, dev.layers[lname].running_mean, layer.running_mean, N)
            close(cp, dev.layers[lname].running_var, layer.running_var, N)
    # Inference (dropout scales, batch norm uses the running averages): the same outputs.
    close(cp, dev.predict(cp.asarray(x)), host.predict(x), 100)
    acc = dev.accuracy(cp.asarray(x), cp.asarray(t), batch_size=3)
    assert type(acc) is float and acc == host.accuracy(x, t, batch_size=3)
    onehot = np.eye(3)[t]
    assert dev.accuracy(cp.asarray(x), cp.asarray(onehot)) == acc
    assert dev.accuracy(x, t) == acc  # host batches for a GPU network are moved per batch
    _check_on_gpu(cp, dev)


@gpu
def test_save_load_and_back_to_the_cpu(cp, rng, tmp_path):
    np.random.seed(0)
    net = MultiLayerNetExtend(6, [5], 3, use_batchnorm=True).to("cuda")
    x, t = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    net.gradient(cp.asarray(x), cp.asarray(t))  # running averages now on the device
    on_gpu(cp, net.layers['BatchNorm1'].running_mean)
    values = {k: cp.asnumpy(v) for k, v in net.params.items()}
    for name in ("p.pkl", "p.npz"):
        path = str(tmp_path / name)
        net.save_params(path)
        if name.endswith(".pkl"):
            with open(path, "rb") as f:
                saved = pickle.load(f)
            assert all(type(v) is np.ndarray for v in saved.values())
            for k, v in values.items():
                np.testing.assert_array_equal(saved[k], v)
        np.random.seed(1)
        other = MultiLayerNetExtend(6, [5], 3, use_batchnorm=True).to("cuda")
        other.load_params(path)
        _check_on_gpu(cp, other)
        for k, v in values.items():
            np.testing.assert_array_equal(cp.asnumpy(other.params[k]), v)
    out_gpu = cp.asnumpy(net.predict(cp.asarray(x)))
    assert net.cpu() is net and net.device == "cpu"
    for key, name, attr in net._grad_map:
        assert type(net.params[key]) is np.ndarray and net.params[key].flags.c_contiguous
        assert getattr(net.layers[name], attr[1:]) is net.params[key]
        np.testing.assert_array_equal(net.params[key], values[key])
    assert type(net.layers['BatchNorm1'].running_mean) is np.ndarray
    assert_parity(net.predict(x), out_gpu, np.float64, reduce_len=10)
    assert net.cuda(cp.cuda.Device().id) is net
    _check_on_gpu(cp, net)


@gpu
def test_an_in_place_update_on_the_gpu_is_seen_by_the_layers(cp, rng):
    np.random.seed(0)
    net = _small_convnet().to("cuda")
    x = cp.asarray(rng.random((2, 1, 6, 6)))
    before = net.predict(x)
    net.params['b3'] += 1.0
    close(cp, net.predict(x), cp.asnumpy(before) + 1.0)


@gpu
def test_numerical_gradient_and_gradient_check_on_the_gpu(cp, rng):
    host, dev = _pair(lambda: TwoLayerNet(4, 3, 3, weight_init_std=0.5), seed=4)
    x, t = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    before = {k: cp.asnumpy(v) for k, v in dev.params.items()}
    num = dev.numerical_gradient(cp.asarray(x), cp.asarray(t))
    for k, g in host.numerical_gradient(x, t).items():
        on_gpu(cp, num[k])
        # Central differences divide the losses' rounding differences by 2h = 2e-4.
        np.testing.assert_allclose(cp.asnumpy(num[k]), g, rtol=1e-7, atol=1e-9, err_msg=k)
    for k, v in before.items():  # every entry restored exactly
        np.testing.assert_array_equal(cp.asnumpy(dev.params[k]), v)
    errors = gradient_check(dev, cp.asarray(x), cp.asarray(t))
    errors_host = gradient_check(host, x, t)
    assert sorted(errors) == sorted(errors_host) == sorted(dev.params)
    for k, e in errors_host.items():
        assert e < 1e-4 and errors[k] == pytest.approx(e, abs=1e-6), k
    for k, v in before.items():
        np.testing.assert_array_equal(cp.asnumpy(dev.params[k]), v)


def _pattern_images(rng, n, templates):
    t = rng.integers(0, len(templates), n)
    return templates[t] + 0.5 * rng.standard_normal((n,) + templates.shape[1:]), t


@gpu
def test_trainer_learns_on_the_gpu_as_on_the_cpu(cp):
    rng = np.random.default_rng(0)
    templates = rng.standard_normal((4, 1, 8, 8))
    (x, t), (xt, tt) = _pattern_images(rng, 200, templates), _pattern_images(rng, 60, templates)

    def make():
        return SimpleConvNet((1, 8, 8), {'filter_num': 4, 'filter_size': 3, 'pad': 0,
                                         'stride': 1}, hidden_size=16, output_size=4,
                             weight_init_std=0.1)

    host_net, dev_net = _pair(make, seed=2)
    runs = []
    for net, data in ((host_net, (x, t, xt, tt)),
                      (dev_net, (cp.asarray(x), t, cp.asarray(xt), cp.asarray(tt)))):
        np.random.seed(5)  # the same batch order on both
        tr = Trainer(net, *data, epochs=4, mini_batch_size=20, optimizer='SGD',
                     optimizer_param={'lr': 0.1}, verbose=False)
        runs.append((tr, tr.train()))
    (host, host_acc), (dev, dev_acc) = runs
    on_gpu(cp, dev.x_train)
    on_gpu(cp, dev.t_train)  # NumPy labels are moved next to the images once
    _check_on_gpu(cp, dev_net)
    assert len(dev.train_loss_list) == 40 and len(dev.test_acc_list) == 4
    assert all(type(v) is float for v in dev.train_loss_list + dev.train_acc_list
               + dev.test_acc_list) and type(dev_acc) is float
    assert np.mean(dev.train_loss_list[-5:]) < 0.5 * np.mean(dev.train_loss_list[:5])
    assert dev_acc > 0.8
    np.testing.assert_allclose(dev.train_loss_list, host.train_loss_list, rtol=1e-6)
    np.testing.assert_allclose(dev.train_acc_list, host.train_acc_list, atol=1 / 200 + 1e-12)
    assert abs(dev_acc - host_acc) <= 1 / 60 + 1e-12
