"""The BaseNN builder: one training step (forward, cross-entropy, backward, SGD update) in
float32, fastnn.basenn against the same network in torch.nn from the same weights: LeNet-5
(batch 64 of 1x32x32, benchmarks.weights.lenet) and MobileNetV2's backbone with a 10-class
linear head (batch 32 of 3x64x64, benchmarks.weights.by_name); and the diffusion_model's U-Net
(batch 64 of 1x28x28, base width 32, noise-prediction MSE and an Adam update, with the same
steps and noise on both sides; torch's twin in benchmarks.torch_diffusion)."""

import numpy as np

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


MOBILE_BATCH, MOBILE_SIZE, MOBILE_CLASSES = 32, 64, 10


def _mobilenet_build(contender, quick=False, data=None):
    x, t = weights.batch(MOBILE_BATCH, (3, MOBILE_SIZE, MOBILE_SIZE), classes=MOBILE_CLASSES)
    if contender == "fastnn":
        from fastnn.basenn import modules as M
        from fastnn.basenn import nn

        model = nn("cls")
        model.add("mobilenet_backbone")
        model.add("Linear", size=(1280, MOBILE_CLASSES), activation="Softmax")
        model.loss = "CrossEntropyLoss"
        net, head = model.layers[0].module, model.layers[1].module
        state = {}
        for prefix, m in net.torchvision_names:
            if isinstance(m, M.Conv2d):
                name = prefix + ".weight"
                state[name] = weights.by_name(name, m.params["W"].shape)
            else:
                for k in ("weight", "bias", "running_mean", "running_var"):
                    state[f"{prefix}.{k}"] = weights.by_name(f"{prefix}.{k}", (m.c,))
        M.load_torchvision_weights(net, state)
        head.params["W"][...] = weights.by_name("classifier.1.weight",
                                                (MOBILE_CLASSES, 1280)).T
        head.params["b"][...] = weights.by_name("classifier.1.bias", (MOBILE_CLASSES,))
        step = fastnn_step(model)
        return lambda: step(x, t)
    if contender == "torch":
        import torch
        from benchmarks.torch_mobilenet import MobileNetV2

        net = MobileNetV2(MOBILE_CLASSES)
        with torch.no_grad():
            for name, v in net.state_dict().items():
                if not name.endswith("num_batches_tracked"):
                    v.copy_(torch.from_numpy(weights.by_name(name, tuple(v.shape))))
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        loss_fn = torch.nn.CrossEntropyLoss()
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)

        def tstep():
            opt.zero_grad()
            loss = loss_fn(net(xt), tt)
            loss.backward()
            opt.step()
        return tstep
    raise ValueError(f"unknown contender {contender!r}")


DIFF_BATCH, DIFF_SIZE, DIFF_DIM, DIFF_T = 64, 28, 32, 500


def _torch_name(key):
    """The torch state_dict name of the diffusion U-Net's fastnn parameter ``key``."""
    prefix, _, last = key.rpartition(".")
    return f"{prefix}.{'weight' if last in ('W', 'gamma') else 'bias'}"


def _diffusion_build(contender, quick=False, data=None):
    rng = np.random.default_rng(0)
    shape = (DIFF_BATCH, 1, DIFF_SIZE, DIFF_SIZE)
    x = rng.standard_normal(shape).astype(np.float32)
    noise = rng.standard_normal(shape).astype(np.float32)
    t = rng.integers(0, DIFF_T, DIFF_BATCH)
    if contender == "fastnn":
        from fastnn.basenn import nn
        from fastnn.basenn.model import make_optimizer

        model = nn()
        model.add("diffusion_model", img_size=DIFF_SIZE, timestep=DIFF_T, dim=DIFF_DIM)
        module = model.layers[0].module
        for k, p in module.params.items():
            w = weights.by_name(_torch_name(k), p.shape[::-1] if p.ndim == 2 else p.shape)
            p[...] = w.T if p.ndim == 2 else w
        opt = make_optimizer("Adam", 5e-4)
        params = model._params()

        def step():
            module.t = t
            diff = module.forward(x, True) - noise
            module.backward(diff * np.float32(2.0 / diff.size))
            opt.update(params, model._params("grads"))
            return float(np.mean(diff * diff))
        return step
    if contender == "torch":
        import torch
        from benchmarks.torch_diffusion import UNet

        net = UNet(1, DIFF_DIM)
        with torch.no_grad():
            for name, v in net.state_dict().items():
                v.copy_(torch.from_numpy(weights.by_name(name, tuple(v.shape))))
        opt = torch.optim.Adam(net.parameters(), lr=5e-4)
        xt, nt, tt = torch.from_numpy(x), torch.from_numpy(noise), torch.from_numpy(t)

        def tstep():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(xt, tt), nt)
            loss.backward()
            opt.step()
            return float(loss.detach())
        return tstep
    raise ValueError(f"unknown contender {contender!r}")


def _diffusion_flops():
    """Multiply-adds x 2 of the U-Net's convolutions for one forward of the batch (the time
    MLP and the elementwise work are left out), times 3 for forward and backward."""
    d, s = DIFF_DIM, DIFF_SIZE
    full, half = s * s, (s // 2) ** 2

    def res(a, b, area):
        return area * (9 * a * b + 9 * b * b + (a * b if a != b else 0))

    macs = (full * 9 * d + res(d, d, full) + half * 4 * d * 2 * d + res(2 * d, 2 * d, half)
            + full * 9 * 2 * d * d + res(2 * d, d, full) + full * d)
    return 3 * 2 * DIFF_BATCH * macs


def workloads():
    forward = 2 * BATCH * (6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10)
    return [Workload(SUITE, "lenet", f"basenn LeNet-5 train step, batch {BATCH} 1x32x32",
                     _build, contenders=("fastnn", "torch"), flops=3 * forward),
            Workload(SUITE, "mobilenet",
                     f"basenn MobileNetV2 backbone train step, batch {MOBILE_BATCH} "
                     f"3x{MOBILE_SIZE}x{MOBILE_SIZE}", _mobilenet_build,
                     contenders=("fastnn", "torch"), flops=None),
            Workload(SUITE, "diffusion",
                     f"basenn diffusion U-Net train step (Adam), batch {DIFF_BATCH} "
                     f"1x{DIFF_SIZE}x{DIFF_SIZE}, width {DIFF_DIM}", _diffusion_build,
                     contenders=("fastnn", "torch"), flops=_diffusion_flops())]
