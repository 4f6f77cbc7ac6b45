"""Convolution and max pooling, forward + backward (dx, dW, db): fastnn's layer classes,
fastnn.reference's, and PyTorch (F.conv2d / F.max_pool2d with autograd), on identical inputs
and an identical upstream gradient. The convolutions run in float32 and again in float64.
The SimpleConvNet block (convolution, ReLU, 2x2 max pooling), with dx like the rows above:
fastnn's one kernel through its op front (ops.conv2d_relu_maxpool_*, which the networks call),
the reference's three layers, PyTorch's three functions."""

import numpy as np

from benchmarks.harness import Workload, book_layers, layer_step, torch_step

SUITE = "bench_conv"

# (key, label, N, C, H, W, FN, FH, FW, stride, pad); the reference is slow at the big shapes.
CONVS = [
    ("conv_simple", "conv2d SimpleConvNet 100x1x28x28, 30 5x5", 100, 1, 28, 28, 30, 5, 5, 1, 0),
    ("conv_resnet", "conv2d ResNet block 32x64x56x56, 64 3x3 p1", 32, 64, 56, 56, 64, 3, 3, 1, 1),
    ("conv_first", "conv2d first layer 8x3x224x224, 64 7x7 s2 p3", 8, 3, 224, 224, 64, 7, 7, 2, 3),
]
# Depthwise (groups = C, MobileNetV2's expanded 3x3 layers at batch 32 of 64x64 images):
# (key, label, N, C, H, W, stride)
DEPTHWISE = [
    ("conv_dw", "depthwise 3x3 p1 32x144x16x16", 32, 144, 16, 16, 1),
    ("conv_dw_s2", "depthwise 3x3 s2 p1 32x96x32x32", 32, 96, 32, 32, 2),
]
# (key, label, N, C, H, W, pool, stride, pad)
POOLS = [
    ("pool_simple", "maxpool 2x2 s2 100x30x24x24", 100, 30, 24, 24, 2, 2, 0),
    ("pool_big", "maxpool 3x3 s2 p1 32x64x112x112", 32, 64, 112, 112, 3, 2, 1),
]


def _out(size, k, stride, pad):
    return (size + 2 * pad - k) // stride + 1


def _conv_data(N, C, H, W, FN, FH, FW, stride, pad, dtype, groups=1):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = (0.05 * rng.standard_normal((FN, C // groups, FH, FW))).astype(dtype)
    b = (0.1 * rng.standard_normal(FN)).astype(dtype)
    dout = rng.standard_normal((N, FN, _out(H, FH, stride, pad), _out(W, FW, stride, pad))
                               ).astype(dtype)
    return x, Wt, b, dout


def _conv_builder(dims, dtype, groups=1):
    N, C, H, W, FN, FH, FW, stride, pad = dims

    def build(contender, quick=False, data=None):
        x, Wt, b, dout = _conv_data(N, C, H, W, FN, FH, FW, stride, pad, dtype, groups)
        if contender == "torch":
            import torch
            F = torch.nn.functional
            return torch_step(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad,
                                                       groups=groups), x, [Wt, b], dout)
        layer = book_layers(contender).Convolution(Wt, b, stride, pad, groups)
        return layer_step(layer, x, dout)
    return build


def _pool_builder(dims, dtype):
    N, C, H, W, k, stride, pad = dims

    def build(contender, quick=False, data=None):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        dout = rng.standard_normal((N, C, _out(H, k, stride, pad), _out(W, k, stride, pad))
                                   ).astype(dtype)
        if contender == "torch":
            import torch
            F = torch.nn.functional
            return torch_step(lambda x: F.max_pool2d(x, k, stride, pad), x, [], dout)
        return layer_step(book_layers(contender).Pooling(k, k, stride, pad), x, dout)
    return build


def _block_builder(dtype):
    N, C, H, W, FN, FH, FW, stride, pad = 100, 1, 28, 28, 30, 5, 5, 1, 0

    def build(contender, quick=False, data=None):
        x, Wt, b, _ = _conv_data(N, C, H, W, FN, FH, FW, stride, pad, dtype)
        dout = np.random.default_rng(1).standard_normal((N, FN, 12, 12)).astype(dtype)
        if contender == "torch":
            import torch
            F = torch.nn.functional
            return torch_step(lambda x, w, b: F.max_pool2d(F.relu(F.conv2d(x, w, b)), 2, 2),
                              x, [Wt, b], dout)
        if contender == "fastnn":
            from fastnn import ops
            keep = np.empty_like(x)  # the copy of x a network's block keeps, as the layer does

            def step():
                out, arg = ops.conv2d_relu_maxpool_forward(x, Wt, b, keep=keep)
                ops.conv2d_relu_maxpool_backward(dout, arg, out, keep, Wt, b)
            return step
        mod = book_layers(contender)
        layers = [mod.Convolution(Wt, b), mod.Relu(), mod.Pooling(2, 2, 2)]

        def step():
            y = x
            for layer in layers:
                y = layer.forward(y)
            d = dout
            for layer in reversed(layers):
                d = layer.backward(d)
        return step
    return build


def workloads():
    out = []
    for dtype in (np.float32, np.float64):
        f64 = dtype == np.float64
        for key, label, N, C, H, W, FN, FH, FW, stride, pad in CONVS:
            OH, OW = _out(H, FH, stride, pad), _out(W, FW, stride, pad)
            big = N * OH * OW * C * FH * FW > 10 ** 7
            note = None
            if big:
                note = "reference: one sample per process (seconds per call); left out with --quick"
            out.append(Workload(
                SUITE, key + ("_f64" if f64 else ""),
                label + " fwd+bwd" + (", float64" if f64 else ""),
                _conv_builder((N, C, H, W, FN, FH, FW, stride, pad), dtype),
                flops=3 * 2 * N * FN * OH * OW * C * FH * FW,
                dtype="float64" if f64 else "float32", min_time=0.02,
                max_samples={"reference": 1} if big else {},
                skip_quick=("reference",) if big else (), note=note))
        if f64:
            continue
        out.append(Workload(
            SUITE, "block_simple", "conv2d+ReLU+maxpool SimpleConvNet block fwd+bwd",
            _block_builder(dtype), flops=3 * 2 * 100 * 30 * 24 * 24 * 25, dtype="float32",
            min_time=0.02))
        for key, label, N, C, H, W, stride in DEPTHWISE:
            OH, OW = _out(H, 3, stride, 1), _out(W, 3, stride, 1)
            out.append(Workload(
                SUITE, key, label + " fwd+bwd", _conv_builder((N, C, H, W, C, 3, 3, stride, 1),
                                                              dtype, groups=C),
                flops=3 * 2 * N * C * OH * OW * 9, dtype="float32", min_time=0.02))
        for key, label, N, C, H, W, k, stride, pad in POOLS:
            big = N * C * H * W > 10 ** 7
            out.append(Workload(
                SUITE, key, label + " fwd+bwd", _pool_builder((N, C, H, W, k, stride, pad), dtype),
                min_time=0.02, max_samples={"reference": 1} if big else {},
                skip_quick=("reference",) if big else (),
                note=("reference: one sample per process (seconds per call); left out with "
                      "--quick") if big else None))
    return out
