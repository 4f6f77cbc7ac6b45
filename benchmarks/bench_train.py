"""Training steps of the book's networks (gradient + optimizer update), float32:

- SimpleConvNet (conv 30x5x5, ReLU, pool 2x2, affine 4320->100, ReLU, affine 100->10), batch 100
  of 1x28x28, Adam; plus one epoch of Fashion-MNIST (600 such steps) and the peak memory of a step;
- MLP 784-256-10 (d2l's), batch 256, SGD;
- DeepConvNet (six 3x3 convolutions, dropout), batch 100, Adam.

Contenders: fastnn's network, the same network class built on fastnn.reference's NumPy layers
with a NumPy optimizer, and the same network written in PyTorch eager (autograd + torch.optim).
Every contender starts from the same weights and sees the same batch.
"""

import contextlib
import importlib
import time

import numpy as np

from benchmarks.harness import compare, row, torch_or_none
from benchmarks.memory import peak_growth_mib

DT = np.float32
EPOCH = 60000  # Fashion-MNIST training images


@contextlib.contextmanager
def _layers_from(module_name, mod):
    """Build a fastnn.models network on another module of book-compatible layer classes."""
    model = importlib.import_module(f"fastnn.models.{module_name}")
    names = [n for n in ("Convolution", "Relu", "Pooling", "Affine", "Dropout",
                         "SoftmaxWithLoss") if hasattr(model, n)]
    saved = {n: getattr(model, n) for n in names}
    try:
        for n in names:
            setattr(model, n, getattr(mod, n))
        yield
    finally:
        for n, v in saved.items():
            setattr(model, n, v)


class _NumpyAdam:
    """Adam in plain NumPy (the book's form), the reference contender's optimizer."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.iter, self.m, self.v = lr, beta1, beta2, 0, {}, {}

    def update(self, params, grads):
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for k in params:
            m = self.m.setdefault(k, np.zeros_like(params[k]))
            v = self.v.setdefault(k, np.zeros_like(params[k]))
            m += (1 - self.beta1) * (grads[k] - m)
            v += (1 - self.beta2) * (grads[k] ** 2 - v)
            params[k] -= lr_t * m / (np.sqrt(v) + 1e-7)


class _NumpySGD:
    def __init__(self, lr=0.1):
        self.lr = lr

    def update(self, params, grads):
        for k in params:
            params[k] -= self.lr * grads[k]


def _batch(N, shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((N,) + shape, dtype=DT), rng.integers(0, 10, N)


def _book_net(contender, module_name, build):
    """(net, optimizer) of the fastnn or reference contender, same seed so same weights."""
    import fastnn.reference.layers as ref

    np.random.seed(0)
    if contender == "fastnn":
        return build()
    with _layers_from(module_name, ref):
        return build()


def _torch_params(torch, params, transpose):
    w = {}
    for k, v in params.items():
        v = v.T if k in transpose else v
        w[k] = torch.from_numpy(np.ascontiguousarray(v)).requires_grad_()
    return w


def _simple_net(torch):
    from fastnn.models import SimpleConvNet
    np.random.seed(0)
    net = SimpleConvNet(dtype=DT)
    F = torch.nn.functional
    w = _torch_params(torch, net.params, ("W2", "W3"))

    def forward(x):
        h = F.max_pool2d(F.relu(F.conv2d(x, w["W1"], w["b1"])), 2, 2).flatten(1)
        return F.linear(F.relu(F.linear(h, w["W2"], w["b2"])), w["W3"], w["b3"])
    return w, forward


def _mlp_net(torch):
    from fastnn.models import d2l_mlp
    np.random.seed(0)
    net = d2l_mlp(dtype=DT)
    F = torch.nn.functional
    w = _torch_params(torch, net.params, ("W1", "W2"))

    def forward(x):
        return F.linear(F.relu(F.linear(x, w["W1"], w["b1"])), w["W2"], w["b2"])
    return w, forward


def _deep_net(torch):
    from fastnn.models import DeepConvNet
    np.random.seed(0)
    net = DeepConvNet(dtype=DT)
    F = torch.nn.functional
    w = _torch_params(torch, net.params, ("W7", "W8"))
    pads = [1, 1, 1, 2, 1, 1]

    def forward(x):
        for i in range(6):
            x = F.relu(F.conv2d(x, w[f"W{i + 1}"], w[f"b{i + 1}"], padding=pads[i]))
            if i % 2 == 1:
                x = F.max_pool2d(x, 2, 2)
        x = F.dropout(F.relu(F.linear(x.flatten(1), w["W7"], w["b7"])), 0.5)
        return F.dropout(F.linear(x, w["W8"], w["b8"]), 0.5)
    return w, forward


def _build(net_name):
    from fastnn.models import DeepConvNet, SimpleConvNet, d2l_mlp
    return {"simple": lambda: SimpleConvNet(dtype=DT), "mlp": lambda: d2l_mlp(dtype=DT),
            "deep": lambda: DeepConvNet(dtype=DT)}[net_name]()


# name: (fastnn.models module, torch builder, one example's shape, batch size, SGD or Adam)
NETS = {
    "simple": ("simple_convnet", _simple_net, (1, 28, 28), 100, False),
    "mlp": ("multi_layer_net", _mlp_net, (784,), 256, True),
    "deep": ("deep_convnet", _deep_net, (1, 28, 28), 100, False),
}


def make_step(net_name, contender):
    """A training step of one network for one contender: callable(x, t), and (x, t) to feed it
    (torch tensors sharing the NumPy arrays' memory for torch)."""
    module_name, torch_build, shape, N, sgd = NETS[net_name]
    x, t = _batch(N, shape)
    if contender == "torch":
        import torch
        w, forward = torch_build(torch)
        params = list(w.values())
        opt = torch.optim.SGD(params, lr=0.1) if sgd else torch.optim.Adam(params, lr=0.001)
        F = torch.nn.functional

        def step(x, t):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(forward(x), t).backward()
            opt.step()
        return step, (torch.from_numpy(x), torch.from_numpy(t))
    net = _book_net(contender, module_name, lambda: _build(net_name))
    if contender == "fastnn":
        from fastnn.optim import SGD, Adam
        opt = SGD(lr=0.1) if sgd else Adam()
    else:
        opt = _NumpySGD(0.1) if sgd else _NumpyAdam()

    def step(x, t):
        opt.update(net.params, net.gradient(x, t))
    return step, (x, t)


def _contenders(net_name, names):
    out = {}
    for c in names:
        step, args = make_step(net_name, c)
        out[c] = lambda step=step, args=args: step(*args)
    return out


def _names(torch):
    return ["fastnn", "reference"] + (["torch"] if torch is not None else [])


def _flops_simple(N=100):
    # Three GEMMs (forward, dW, dx) per layer; the first layer's dx is computed too.
    return 3 * 2 * N * (30 * 24 * 24 * 25 + 4320 * 100 + 100 * 10)


def _flops_deep(N=100):
    convs = [(1, 16, 28), (16, 16, 28), (16, 32, 14), (32, 32, 16), (32, 64, 8), (64, 64, 8)]
    conv = sum(C * FN * OHW * OHW * 9 for C, FN, OHW in convs)
    return 3 * 2 * N * (conv + 64 * 4 * 4 * 50 + 50 * 10)


def _epoch_rows(torch, quick, names):
    """One epoch of Fashion-MNIST at batch 100 with SimpleConvNet, for every contender."""
    from fastnn.datasets import DatasetError, load_fashion_mnist

    try:
        (x_train, t_train), _ = load_fashion_mnist(flatten=False, dtype=DT)
    except DatasetError as e:
        return [{"workload": "Fashion-MNIST epoch", "ms": {}, "note": f"skipped: {e}"}]
    x_train = np.ascontiguousarray(x_train, dtype=DT)
    t_train = t_train.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x_train))
    batches = len(order) // 100
    # Quick mode times a few steps of every contender and scales to the epoch.
    measured = {c: (8 if quick else batches) for c in names}
    if not quick:
        measured["reference"] = 60  # the NumPy reference: 1/10 of an epoch, extrapolated
    seconds = {}
    for c in names:
        step, _ = make_step("simple", c)
        xb = []
        for i in range(measured[c]):
            idx = order[i * 100:(i + 1) * 100]
            xb.append((x_train[idx], t_train[idx]))
        if c == "torch":
            xb = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in xb]
        step(*xb[0])  # warm-up
        t0 = time.perf_counter()
        for a, b in xb:
            step(a, b)
        seconds[c] = (time.perf_counter() - t0) * batches / len(xb)
    extrapolated = [f"{c} {measured[c]}" for c in names if measured[c] < batches]
    note = (f"{batches} steps of 100 images; extrapolated from the first N steps "
            f"({', '.join(extrapolated)})" if extrapolated else f"{batches} steps of 100 images, "
            "all run") + "; contenders run one after another, not interleaved"
    r = row("SimpleConvNet epoch of Fashion-MNIST", seconds, note=note)
    r["epoch_s"] = seconds
    return [r]


def run(quick=False):
    torch = torch_or_none()
    names = _names(torch)
    repeats = 5 if quick else 9
    rows = []

    # Each sample runs steps back to back for >= 50 ms, as a training loop does; one step right
    # after another contender's starts from caches that contender has emptied.
    times = compare(_contenders("simple", names), repeats=repeats, min_time=0.05)
    memory = {c: peak_growth_mib("simple", c, steps=3 if quick else 10) for c in names}
    memory = {c: v for c, v in memory.items() if v is not None}
    rows.append(row("SimpleConvNet train step (Adam), batch 100", times, _flops_simple(), memory))

    rows += _epoch_rows(torch, quick, names)

    times = compare(_contenders("mlp", names), repeats=repeats, min_time=0.05)
    rows.append(row("MLP 784-256-10 train step (SGD), batch 256", times,
                    3 * 2 * 256 * (784 * 256 + 256 * 10)))

    times = compare(_contenders("deep", names), repeats=repeats if not quick else 5,
                    warmup=1)
    rows.append(row("DeepConvNet train step (Adam), batch 100", times, _flops_deep()))
    return rows
