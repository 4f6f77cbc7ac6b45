"""Training benchmark: the book's SimpleConvNet, one training step (gradient + Adam update) on a
batch of 100 float32 images 1x28x28, for fastnn's network, the same network on
fastnn.reference layers, and the same network in PyTorch CPU. An epoch of Fashion-MNIST is 600
such steps; the row also reports that estimate in seconds (``epoch_s``)."""

import contextlib

import numpy as np

from benchmarks.harness import compare, row

DT = np.float32
STEPS_PER_EPOCH = 600  # 60,000 images at batch 100


@contextlib.contextmanager
def _layers_from(mod):
    """Build SimpleConvNet from another module of book-compatible layer classes."""
    from fastnn.models import simple_convnet as scn
    names = ["Convolution", "Relu", "Pooling", "Affine", "SoftmaxWithLoss"]
    saved = {n: getattr(scn, n) for n in names}
    try:
        for n in names:
            setattr(scn, n, getattr(mod, n))
        yield
    finally:
        for n, v in saved.items():
            setattr(scn, n, v)


def _book_step(net, opt):
    def step(x, t):
        opt.update(net.params, net.gradient(x, t))
    return step


def _torch_step(torch, params):
    F = torch.nn.functional
    w = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
    w["W2"] = w["W2"].detach().T.contiguous().requires_grad_()
    w["W3"] = w["W3"].detach().T.contiguous().requires_grad_()
    opt = torch.optim.Adam(list(w.values()), lr=0.001)

    def step(x, t):
        opt.zero_grad(set_to_none=True)
        h = F.max_pool2d(F.relu(F.conv2d(x, w["W1"], w["b1"])), 2, 2).reshape(x.shape[0], -1)
        h = F.relu(F.linear(h, w["W2"], w["b2"]))
        F.cross_entropy(F.linear(h, w["W3"], w["b3"]), t).backward()
        opt.step()
    return step


def run(quick=False):
    import fastnn.reference.layers as ref
    from fastnn.models import SimpleConvNet
    from fastnn.optim import Adam

    rng = np.random.default_rng(0)
    x = rng.random((100, 1, 28, 28), dtype=DT)
    t = rng.integers(0, 10, 100)
    np.random.seed(0)
    net = SimpleConvNet(dtype=DT)
    contenders = {"fastnn": lambda s=_book_step(net, Adam()): s(x, t)}
    np.random.seed(0)
    with _layers_from(ref):
        ref_net = SimpleConvNet(dtype=DT)
    contenders["reference"] = lambda s=_book_step(ref_net, Adam()): s(x, t)
    try:
        import torch
        tstep = _torch_step(torch, net.params)
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        contenders["torch"] = lambda: tstep(xt, tt)
    except ImportError:
        pass
    times = compare(contenders, repeats=5 if quick else 9)
    flops = 3 * 2 * 100 * (30 * 24 * 24 * 25 + 4320 * 100 + 100 * 10)
    r = row("SimpleConvNet train step (grad + Adam), batch 100", times, flops)
    r["epoch_s"] = {k: v * STEPS_PER_EPOCH for k, v in times.items()}
    print("SimpleConvNet epoch estimate (600 steps): " + ", ".join(
        f"{k} {v:.1f} s" for k, v in r["epoch_s"].items()))
    return [r]


if __name__ == "__main__":
    from benchmarks.harness import print_table, set_threads
    import fastnn

    set_threads(fastnn.get_num_threads())
    print_table(run())
