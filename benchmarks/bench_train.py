"""Training steps of the book's networks (gradient + optimizer update):

- SimpleConvNet (conv 30x5x5, ReLU, pool 2x2, affine 4320->100, ReLU, affine 100->10), batch 100
  of 1x28x28, Adam, in float32 and in float64 (the book's dtype); plus one epoch of
  Fashion-MNIST (600 float32 steps) and the peak memory of a float32 step;
- MLP 784-256-10 (d2l's), batch 256, SGD;
- DeepConvNet (six 3x3 convolutions, dropout), batch 100, Adam.

Contenders: fastnn's network (fastnn.models, fastnn.optim), the same network class built on
fastnn.reference's NumPy layers with a NumPy optimizer, and the same network written in
PyTorch eager (autograd + torch.optim). Every contender starts from the same weights
(benchmarks.weights, NumPy only) and sees the same batch.
"""

import contextlib
import importlib
import os
import time

import numpy as np

from benchmarks import weights
from benchmarks.harness import Workload

SUITE = "bench_train"
EPOCH_BATCHES = 600  # Fashion-MNIST: 60000 training images, batch 100


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


# ------------------------------------------------------------------ the networks in PyTorch

def _torch_params(torch, params, transpose):
    """Leaf tensors holding copies of the NumPy weights (affine weights transposed to torch's
    (out, in) layout)."""
    w = {}
    for k, v in params.items():
        v = v.T if k in transpose else v
        w[k] = torch.from_numpy(np.ascontiguousarray(v).copy()).requires_grad_()
    return w


def _simple_torch(torch, dtype):
    F = torch.nn.functional
    w = _torch_params(torch, weights.simple_convnet(dtype), ("W2", "W3"))

    def forward(x):
        h = F.max_pool2d(F.relu(F.conv2d(x, w["W1"], w["b1"])), 2, 2).flatten(1)
        return F.linear(F.relu(F.linear(h, w["W2"], w["b2"])), w["W3"], w["b3"])
    return w, forward


def _mlp_torch(torch, dtype):
    F = torch.nn.functional
    w = _torch_params(torch, weights.mlp(dtype), ("W1", "W2"))

    def forward(x):
        return F.linear(F.relu(F.linear(x, w["W1"], w["b1"])), w["W2"], w["b2"])
    return w, forward


def _deep_torch(torch, dtype):
    F = torch.nn.functional
    w = _torch_params(torch, weights.deep_convnet(dtype), ("W7", "W8"))

    def forward(x):
        for i in range(6):
            x = F.relu(F.conv2d(x, w[f"W{i + 1}"], w[f"b{i + 1}"], padding=weights.DEEP_PADS[i]))
            if i % 2 == 1:
                x = F.max_pool2d(x, 2, 2)
        x = F.dropout(F.relu(F.linear(x.flatten(1), w["W7"], w["b7"])), 0.5)
        return F.dropout(F.linear(x, w["W8"], w["b8"]), 0.5)
    return w, forward


# ------------------------------------------------------------------ the book's networks

def _book_build(net_name, dtype):
    from fastnn.models import DeepConvNet, SimpleConvNet, d2l_mlp
    return {"simple": lambda: SimpleConvNet(dtype=dtype), "mlp": lambda: d2l_mlp(dtype=dtype),
            "deep": lambda: DeepConvNet(dtype=dtype)}[net_name]()


# name: (fastnn.models module, torch builder, initial weights, one example's shape, batch, SGD)
NETS = {
    "simple": ("simple_convnet", _simple_torch, weights.simple_convnet, (1, 28, 28), 100, False),
    "mlp": ("multi_layer_net", _mlp_torch, weights.mlp, (784,), 256, True),
    "deep": ("deep_convnet", _deep_torch, weights.deep_convnet, (1, 28, 28), 100, False),
}


def make_step(net_name, contender, dtype=np.float32):
    """A training step of one network for one contender: callable(x, t), and (x, t) to feed it
    (torch tensors for torch). Imports only the contender's library: torch's step imports
    nothing of fastnn."""
    module_name, torch_build, initial, shape, N, sgd = NETS[net_name]
    x, t = weights.batch(N, shape, dtype)
    if contender == "torch":
        import torch
        w, forward = torch_build(torch, dtype)
        params = list(w.values())
        opt = torch.optim.SGD(params, lr=0.1) if sgd else torch.optim.Adam(params, lr=0.001)
        F = torch.nn.functional

        def step(x, t):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(forward(x), t).backward()
            opt.step()
        return step, (torch.from_numpy(x), torch.from_numpy(t))
    if contender == "fastnn":
        from fastnn.optim import SGD, Adam
        net = _book_build(net_name, dtype)
        opt = SGD(lr=0.1) if sgd else Adam()
    elif contender == "reference":
        import fastnn.reference.layers as ref
        with _layers_from(module_name, ref):
            net = _book_build(net_name, dtype)
        opt = _NumpySGD(0.1) if sgd else _NumpyAdam()
    else:
        raise ValueError(f"unknown contender {contender!r}")
    weights.copy_into(net.params, initial(dtype))

    def step(x, t):
        opt.update(net.params, net.gradient(x, t))
    return step, (x, t)


def _step_builder(net_name, dtype):
    def build(contender, quick=False, data=None):
        step, args = make_step(net_name, contender, dtype)
        return lambda: step(*args)
    return build


def _flops_simple(N=100):
    # Three GEMMs (forward, dW, dx) per layer; the first layer's dx is computed too.
    return 3 * 2 * N * (30 * 24 * 24 * 25 + 4320 * 100 + 100 * 10)


def _flops_deep(N=100):
    convs = [(1, 16, 28), (16, 16, 28), (16, 32, 14), (32, 32, 16), (32, 64, 8), (64, 64, 8)]
    conv = sum(C * FN * OHW * OHW * 9 for C, FN, OHW in convs)
    return 3 * 2 * N * (conv + 64 * 4 * 4 * 50 + 50 * 10)


# ------------------------------------------------------------------ one epoch of Fashion-MNIST

def prepare_epoch(out_dir):
    """Write the epoch's images and labels, shuffled, as x.npy (float32) and t.npy (int64) in
    out_dir, for every contender's process to read (torch's loads no fastnn.datasets). Returns
    None, or why the data set is not available (written to skip.txt too)."""
    from fastnn.datasets import DatasetError, load_fashion_mnist

    os.makedirs(out_dir, exist_ok=True)
    try:
        (x, t), _ = load_fashion_mnist(flatten=False, dtype=np.float32)
    except DatasetError as e:
        with open(os.path.join(out_dir, "skip.txt"), "w") as f:
            f.write(str(e))
        return str(e)
    order = np.random.default_rng(0).permutation(len(x))
    np.save(os.path.join(out_dir, "x.npy"), np.ascontiguousarray(x[order], dtype=np.float32))
    np.save(os.path.join(out_dir, "t.npy"), t[order].astype(np.int64))
    return None


def epoch_steps(contender, quick):
    """How many steps of the epoch a contender's process runs, from the first batch; the rest
    is extrapolated. A third of the epoch per process keeps three rounds of the slowest
    contender within a few minutes on 2 busy cores."""
    if quick:
        return 8
    return 60 if contender == "reference" else EPOCH_BATCHES // 3


def _build_epoch(contender, quick=False, data=None):
    x_all = np.load(os.path.join(data, "x.npy"), mmap_mode="r")
    t_all = np.load(os.path.join(data, "t.npy"), mmap_mode="r")
    batches = len(x_all) // 100
    n = min(epoch_steps(contender, quick), batches)
    xb = [(np.array(x_all[i * 100:(i + 1) * 100]), np.array(t_all[i * 100:(i + 1) * 100]))
          for i in range(n)]
    step, _ = make_step("simple", contender)
    if contender == "torch":
        import torch
        xb = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in xb]

    def run():
        step(*xb[0])  # warm-up
        t0 = time.perf_counter()
        for a, b in xb:
            step(a, b)
        return (time.perf_counter() - t0) * batches / len(xb)
    return run


def workloads():
    label64 = "SimpleConvNet train step (Adam), batch 100, float64"
    return [
        # Each sample runs steps back to back for >= 50 ms, as a training loop does.
        Workload(SUITE, "simple", "SimpleConvNet train step (Adam), batch 100",
                 _step_builder("simple", np.float32), flops=_flops_simple(), memory="simple"),
        Workload(SUITE, "epoch", "SimpleConvNet epoch of Fashion-MNIST", _build_epoch,
                 kind="epoch", needs="epoch_data",
                 note=f"{EPOCH_BATCHES} steps of 100 images, extrapolated from the first "
                      f"{EPOCH_BATCHES // 3} in each process (the reference's first 60; 8 each "
                      "with --quick)"),
        Workload(SUITE, "mlp", "MLP 784-256-10 train step (SGD), batch 256",
                 _step_builder("mlp", np.float32), flops=3 * 2 * 256 * (784 * 256 + 256 * 10)),
        Workload(SUITE, "deep", "DeepConvNet train step (Adam), batch 100",
                 _step_builder("deep", np.float32), flops=_flops_deep(), min_time=0.0),
        Workload(SUITE, "simple_f64", label64, _step_builder("simple", np.float64),
                 flops=_flops_simple(), dtype="float64"),
    ]
