"""Dense layers, forward + backward, float32: fastnn's layer classes, fastnn.reference's and
PyTorch (autograd) on identical inputs and upstream gradients: Affine at SimpleConvNet's
4320->100 and at 4096->4096 (GEMM bound), SoftmaxWithLoss, Relu and BatchNormalization; and the
builder's (fastnn.basenn) ReLU6, SiLU, per-channel batch norm and group norm at MobileNetV2's and
the diffusion U-Net's sizes, against fastnn.reference.builder_layers and PyTorch."""

import numpy as np

from benchmarks.harness import Workload, book_layers, layer_step, torch_step

SUITE = "bench_dense"
DT = np.float32


def _affine(N, D, M):
    def build(contender, quick=False, data=None):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, D), dtype=DT)
        W = (0.01 * rng.standard_normal((D, M))).astype(DT)
        b = rng.standard_normal(M, dtype=DT)
        dout = rng.standard_normal((N, M), dtype=DT)
        if contender == "torch":
            import torch
            return torch_step(torch.nn.functional.linear, x, [np.ascontiguousarray(W.T), b],
                               dout)
        return layer_step(book_layers(contender).Affine(W, b), x, dout)
    return build


def _softmax(N, C):
    def build(contender, quick=False, data=None):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, C), dtype=DT)
        t = rng.integers(0, C, N)
        if contender == "torch":
            import torch
            tt = torch.from_numpy(t)
            return torch_step(lambda x: torch.nn.functional.cross_entropy(x, tt), x, [], None)
        layer = book_layers(contender).SoftmaxWithLoss()

        def step():
            layer.forward(x, t)
            layer.backward()
        return step
    return build


def _relu(shape):
    def build(contender, quick=False, data=None):
        rng = np.random.default_rng(0)
        x = rng.standard_normal(shape, dtype=DT)
        dout = rng.standard_normal(shape, dtype=DT)
        if contender == "torch":
            import torch
            return torch_step(torch.relu, x, [], dout)
        return layer_step(book_layers(contender).Relu(), x, dout)
    return build


def _batchnorm(N, D):
    def build(contender, quick=False, data=None):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, D), dtype=DT)
        dout = rng.standard_normal((N, D), dtype=DT)
        if contender == "torch":
            import torch
            rm, rv = torch.zeros(D), torch.ones(D)
            return torch_step(
                lambda x, g, b: torch.nn.functional.batch_norm(
                    x, rm, rv, g, b, training=True, momentum=0.1, eps=1e-7),
                x, [np.ones(D, DT), np.zeros(D, DT)], dout)
        layer = book_layers(contender).BatchNormalization(np.ones(D, DT), np.zeros(D, DT), 0.9,
                                                      np.zeros(D, DT), np.ones(D, DT))
        return layer_step(layer, x, dout)
    return build


def _builder(kind, shape, groups=8):
    """The builder's layer ``kind`` (relu6, silu, batchnorm, groupnorm) on x of ``shape``."""
    def build(contender, quick=False, data=None):
        rng = np.random.default_rng(0)
        x = rng.standard_normal(shape, dtype=DT)
        dout = rng.standard_normal(shape, dtype=DT)
        C = shape[1]
        if contender == "torch":
            import torch
            F = torch.nn.functional
            if kind == "batchnorm":
                rm, rv = torch.zeros(C), torch.ones(C)
                fn = lambda x, g, b: F.batch_norm(x, rm, rv, g, b, training=True)  # noqa: E731
            elif kind == "groupnorm":
                fn = lambda x, g, b: F.group_norm(x, groups, g, b)  # noqa: E731
            else:
                fn = {"relu6": F.relu6, "silu": F.silu}[kind]
            params = [np.ones(C, DT), np.zeros(C, DT)] if "norm" in kind else []
            return torch_step(fn, x, params, dout)
        if contender == "fastnn":
            from fastnn.basenn import diffusion, modules
            layer = {"relu6": modules.ReLU6, "silu": diffusion.SiLU,
                     "batchnorm": lambda: modules.BatchNorm(C, dims=2, dtype=DT),
                     "groupnorm": lambda: diffusion.GroupNorm(groups, C, DT)}[kind]()

            def step():
                layer.forward(x, True)
                layer.backward(dout)
            return step
        if contender == "reference":
            from fastnn.reference import builder_layers as R
            g, b = np.ones(C, DT), np.zeros(C, DT)
            layer = {"relu6": R.ReLU6, "silu": R.SiLU,
                     "batchnorm": lambda: R.ChannelBatchNorm(g, b, np.zeros(C, DT),
                                                             np.ones(C, DT)),
                     "groupnorm": lambda: R.GroupNorm(groups, g, b)}[kind]()
            return layer_step(layer, x, dout)
        raise ValueError(f"unknown contender {contender!r}")
    return build


def workloads():
    cases = [
        ("affine_small", "affine 4320->100, batch 100", _affine(100, 4320, 100),
         3 * 2 * 100 * 4320 * 100),
        ("affine_big", "affine 4096->4096, batch 512", _affine(512, 4096, 4096),
         3 * 2 * 512 * 4096 * 4096),
        ("softmax_small", "softmax-cross-entropy 100x10", _softmax(100, 10), None),
        ("softmax_big", "softmax-cross-entropy 256x1000", _softmax(256, 1000), None),
        ("relu", "relu 100x30x24x24", _relu((100, 30, 24, 24)), None),
        ("batchnorm", "batchnorm 100x4320", _batchnorm(100, 4320), None),
        ("relu6", "basenn ReLU6 32x96x32x32", _builder("relu6", (32, 96, 32, 32)), None),
        ("channel_batchnorm", "basenn per-channel batch norm 32x96x32x32",
         _builder("batchnorm", (32, 96, 32, 32)), None),
        ("silu", "basenn SiLU 64x32x28x28", _builder("silu", (64, 32, 28, 28)), None),
        ("group_norm", "basenn group norm (8 groups) 64x32x28x28",
         _builder("groupnorm", (64, 32, 28, 28)), None),
    ]
    return [Workload(SUITE, key, label + " fwd+bwd", build, flops=flops, min_time=0.02)
            for key, label, build, flops in cases]
