"""The BaseNN builder: one LeNet-5 training step (batch 64 of 1x32x32, forward, cross-entropy,
backward, SGD update) in float32, fastnn.basenn against the same network in torch.nn, both
from the same weights (benchmarks.weights.lenet)."""

from benchmarks import weights
from benchmarks.harness import Workload

SUITE = "bench_basenn"
BATCH = 64


def lenet(seed=0):
    """fastnn.basenn's LeNet-5 with the weights of benchmarks.weights.lenet(seed)."""
    from fastnn.basenn import nn

    model = nn("cls")
    model.set_seed(seed)
    model.add("Conv2D", size=(1, 6), kernel_size=(5, 5), activation="ReLU")
    model.add("AvgPool", kernel_size=(2, 2))
    model.add("Conv2D", size=(6, 16), kernel_size=(5, 5), activation="ReLU")
    model.add("AvgPool", kernel_size=(2, 2))
    model.add("Linear", size=(400, 120), activation="ReLU")
    model.add("Linear", size=(120, 84), activation="ReLU")
    model.add("Linear", size=(84, 10), activation="Softmax")
    model.loss = "CrossEntropyLoss"
    weights.copy_into(model._params(), weights.lenet(seed=seed))
    return model


def fastnn_step(model, lr=0.01):
    from fastnn.basenn.model import make_optimizer

    opt = make_optimizer("SGD", lr)
    params = model._params()

    def step(x, t):
        loss, _ = model._loss_and_backward(x, t)
        opt.update(params, model._params("grads"))
        return loss

    return step


def torch_step(torch, model=None, lr=0.01):
    """The same layers and weights in torch.nn (Linear weights are stored transposed there).
    model: a fastnn.basenn model whose weights to copy, or None for benchmarks.weights.lenet()
    (no fastnn import)."""
    tnn = torch.nn
    net = tnn.Sequential(tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.AvgPool2d(2),
                         tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.AvgPool2d(2), tnn.Flatten(),
                         tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
                         tnn.Linear(84, 10))
    p = model._params() if model is not None else weights.lenet()
    with torch.no_grad():
        for i, layer in zip([0, 2, 4, 5, 6], [0, 3, 7, 9, 11]):
            w = p[f"{i}.W"]
            net[layer].weight.copy_(torch.from_numpy(w if w.ndim == 4 else w.T.copy()))
            net[layer].bias.copy_(torch.from_numpy(p[f"{i}.b"]))
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = tnn.CrossEntropyLoss()

    def step(x, t):
        opt.zero_grad()
        loss = loss_fn(net(x), t)
        loss.backward()
        opt.step()
        return loss

    return step


def _build(contender, quick=False, data=None):
    x, t = weights.batch(BATCH, (1, 32, 32))
    if contender == "fastnn":
        step = fastnn_step(lenet())
        return lambda: step(x, t)
    if contender == "torch":
        import torch
        tstep = torch_step(torch)
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        return lambda: tstep(xt, tt)
    raise ValueError(f"unknown contender {contender!r}")


def workloads():
    forward = 2 * BATCH * (6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10)
    return [Workload(SUITE, "lenet", f"basenn LeNet-5 train step, batch {BATCH} 1x32x32",
                     _build, contenders=("fastnn", "torch"), flops=3 * forward)]
