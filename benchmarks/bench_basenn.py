"""The BaseNN builder: one LeNet-5 training step (batch 64 of 1x32x32, forward, cross-entropy,
backward, SGD update) in float32, fastnn.basenn against the same network in torch.nn."""

import numpy as np

from benchmarks.harness import compare, row

BATCH = 64


def lenet(seed=0):
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


def torch_step(torch, model, lr=0.01):
    """The same layers and weights in torch.nn (Linear weights are stored transposed there)."""
    tnn = torch.nn
    net = tnn.Sequential(tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.AvgPool2d(2),
                         tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.AvgPool2d(2), tnn.Flatten(),
                         tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
                         tnn.Linear(84, 10))
    p = model._params()
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


def run(quick=False):
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 1, 32, 32), dtype=np.float32)
    t = rng.integers(0, 10, BATCH)
    contenders = {}
    step = fastnn_step(lenet())
    contenders["fastnn"] = lambda: step(x, t)
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        tstep = torch_step(torch, lenet())
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        contenders["torch"] = lambda: tstep(xt, tt)
    times = compare(contenders, repeats=5 if quick else 11, min_time=0.0 if quick else 0.05)
    forward = 2 * BATCH * (6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10)
    return [row(f"basenn LeNet-5 train step, batch {BATCH} 1x32x32", times, 3 * forward)]


if __name__ == "__main__":
    from benchmarks.harness import print_table, set_threads
    import fastnn

    set_threads(fastnn.get_num_threads())
    print_table(run())
