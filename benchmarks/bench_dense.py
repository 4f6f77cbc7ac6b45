"""Dense layers, forward + backward, float32: fastnn's layer classes, fastnn.reference's and
PyTorch (autograd) on identical inputs and upstream gradients: Affine at SimpleConvNet's
4320->100 and at 4096->4096 (GEMM bound), SoftmaxWithLoss, Relu and BatchNormalization."""

import numpy as np

from benchmarks.harness import compare, row, torch_or_none

DT = np.float32


def _torch_step(torch, fn, x, params, dout):
    xt = torch.from_numpy(x).requires_grad_()
    ps = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    dt = torch.from_numpy(dout) if dout is not None else None

    def step():
        for t in [xt] + ps:
            t.grad = None
        fn(xt, *ps).backward(dt)
    return step


def _layer_step(layer, x, dout):
    def step():
        layer.forward(x)
        layer.backward(dout)
    return step


def _affine(mod, torch, rng, N, D, M):
    x = rng.standard_normal((N, D), dtype=DT)
    W = (0.01 * rng.standard_normal((D, M))).astype(DT)
    b = rng.standard_normal(M, dtype=DT)
    dout = rng.standard_normal((N, M), dtype=DT)
    c = {k: _layer_step(m.Affine(W, b), x, dout) for k, m in mod.items()}
    if torch is not None:
        c["torch"] = _torch_step(torch, lambda x, w, b: torch.nn.functional.linear(x, w, b),
                                 x, [np.ascontiguousarray(W.T), b], dout)
    return c, 3 * 2 * N * D * M


def _softmax(mod, torch, rng, N, C):
    x = rng.standard_normal((N, C), dtype=DT)
    t = rng.integers(0, C, N)
    c = {}
    for k, m in mod.items():
        layer = m.SoftmaxWithLoss()

        def step(layer=layer):
            layer.forward(x, t)
            layer.backward()
        c[k] = step
    if torch is not None:
        tt = torch.from_numpy(t)
        c["torch"] = _torch_step(torch, lambda x: torch.nn.functional.cross_entropy(x, tt),
                                 x, [], None)
    return c, None


def _relu(mod, torch, rng, shape):
    x = rng.standard_normal(shape, dtype=DT)
    dout = rng.standard_normal(shape, dtype=DT)
    c = {k: _layer_step(m.Relu(), x, dout) for k, m in mod.items()}
    if torch is not None:
        c["torch"] = _torch_step(torch, torch.relu, x, [], dout)
    return c, None


def _batchnorm(mod, torch, rng, N, D):
    x = rng.standard_normal((N, D), dtype=DT)
    dout = rng.standard_normal((N, D), dtype=DT)
    c = {k: _layer_step(m.BatchNormalization(np.ones(D, DT), np.zeros(D, DT), 0.9,
                                             np.zeros(D, DT), np.ones(D, DT)), x, dout)
         for k, m in mod.items()}
    if torch is not None:
        rm, rv = torch.zeros(D), torch.ones(D)
        c["torch"] = _torch_step(
            torch, lambda x, g, b: torch.nn.functional.batch_norm(
                x, rm, rv, g, b, training=True, momentum=0.1, eps=1e-7),
            x, [np.ones(D, DT), np.zeros(D, DT)], dout)
    return c, None


def run(quick=False):
    import fastnn.layers as fast
    import fastnn.reference.layers as ref

    torch = torch_or_none()
    rng = np.random.default_rng(0)
    mod = {"fastnn": fast, "reference": ref}
    repeats = 5 if quick else 9
    cases = [
        ("affine 4320->100, batch 100", _affine(mod, torch, rng, 100, 4320, 100)),
        ("affine 4096->4096, batch 512", _affine(mod, torch, rng, 512, 4096, 4096)),
        ("softmax-cross-entropy 100x10", _softmax(mod, torch, rng, 100, 10)),
        ("softmax-cross-entropy 256x1000", _softmax(mod, torch, rng, 256, 1000)),
        ("relu 100x30x24x24", _relu(mod, torch, rng, (100, 30, 24, 24))),
        ("batchnorm 100x4320", _batchnorm(mod, torch, rng, 100, 4320)),
    ]
    rows = []
    for label, (contenders, flops) in cases:
        times = compare(contenders, repeats=repeats, warmup=1, min_time=0.02)
        rows.append(row(label + " fwd+bwd", times, flops))
    return rows
