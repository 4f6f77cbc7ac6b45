"""Convolution and max pooling, forward + backward (dx, dW, db), float32: fastnn's layer classes,
fastnn.reference's, and PyTorch (F.conv2d / F.max_pool2d with autograd), on identical inputs and
an identical upstream gradient."""

import numpy as np

from benchmarks.harness import compare, row, torch_or_none

DT = np.float32

# (label, N, C, H, W, FN, FH, FW, stride, pad); the reference is slow at the big shapes.
CONVS = [
    ("conv2d SimpleConvNet 100x1x28x28, 30 5x5", 100, 1, 28, 28, 30, 5, 5, 1, 0),
    ("conv2d ResNet block 32x64x56x56, 64 3x3 p1", 32, 64, 56, 56, 64, 3, 3, 1, 1),
    ("conv2d first layer 8x3x224x224, 64 7x7 s2 p3", 8, 3, 224, 224, 64, 7, 7, 2, 3),
]
# (label, N, C, H, W, pool, stride, pad)
POOLS = [
    ("maxpool 2x2 s2 100x30x24x24", 100, 30, 24, 24, 2, 2, 0),
    ("maxpool 3x3 s2 p1 32x64x112x112", 32, 64, 112, 112, 3, 2, 1),
]


def _out(size, k, stride, pad):
    return (size + 2 * pad - k) // stride + 1


def _layer_step(layer, x, dout):
    def step():
        layer.forward(x)
        layer.backward(dout)
    return step


def _torch_step(torch, fn, x, params, dout):
    xt = torch.from_numpy(x).requires_grad_()
    ps = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    dt = torch.from_numpy(dout)

    def step():
        for t in [xt] + ps:
            t.grad = None
        fn(xt, *ps).backward(dt)
    return step


def run(quick=False):
    import fastnn.layers as fast
    import fastnn.reference.layers as ref

    torch = torch_or_none()
    rng = np.random.default_rng(0)
    repeats = 5 if quick else 9
    rows = []
    for label, N, C, H, W, FN, FH, FW, stride, pad in CONVS:
        x = rng.standard_normal((N, C, H, W), dtype=DT)
        Wt = (0.05 * rng.standard_normal((FN, C, FH, FW))).astype(DT)
        b = (0.1 * rng.standard_normal(FN)).astype(DT)
        OH, OW = _out(H, FH, stride, pad), _out(W, FW, stride, pad)
        dout = rng.standard_normal((N, FN, OH, OW), dtype=DT)
        big = N * OH * OW * C * FH * FW > 10 ** 7
        contenders = {"fastnn": _layer_step(fast.Convolution(Wt, b, stride, pad), x, dout)}
        note = None
        if big and quick:
            note = "reference skipped in --quick (seconds per call)"
        else:
            contenders["reference"] = _layer_step(ref.Convolution(Wt, b, stride, pad), x, dout)
            if big:
                note = "reference: 5 repeats (seconds per call)"
        if torch is not None:
            F = torch.nn.functional
            contenders["torch"] = _torch_step(
                torch, lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad),
                x, [Wt, b], dout)
        times = compare(contenders, repeats=repeats, warmup=1,
                        max_repeats={"reference": 5} if big else None)
        flops = 3 * 2 * N * FN * OH * OW * C * FH * FW
        rows.append(row(label + " fwd+bwd", times, flops, note=note))

    for label, N, C, H, W, k, stride, pad in POOLS:
        x = rng.standard_normal((N, C, H, W), dtype=DT)
        OH, OW = _out(H, k, stride, pad), _out(W, k, stride, pad)
        dout = rng.standard_normal((N, C, OH, OW), dtype=DT)
        contenders = {"fastnn": _layer_step(fast.Pooling(k, k, stride, pad), x, dout)}
        big = x.size > 10 ** 7
        note = "reference skipped in --quick (seconds per call)" if big and quick else None
        if not (big and quick):
            contenders["reference"] = _layer_step(ref.Pooling(k, k, stride, pad), x, dout)
        if torch is not None:
            F = torch.nn.functional
            contenders["torch"] = _torch_step(
                torch, lambda x: F.max_pool2d(x, k, stride, pad), x, [], dout)
        times = compare(contenders, repeats=repeats, warmup=1, min_time=0.02,
                        max_repeats={"reference": 5})
        rows.append(row(label + " fwd+bwd", times, note=note))
    return rows
