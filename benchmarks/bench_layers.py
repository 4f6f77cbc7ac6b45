"""Layer benchmarks of the core: each vol. 1 layer, and the SimpleConvNet layer stack
(conv 30x5x5 on 100 images 1x28x28, ReLU, max-pool 2x2, affine 4320->100, ReLU, affine 100->10,
softmax loss), forward + backward in float32, against fastnn.reference and PyTorch CPU."""

import numpy as np

from benchmarks.harness import compare, peak_memory_mib, row

DT = np.float32


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _stack_params(rng):
    return {
        "W1": (0.01 * rng.standard_normal((30, 1, 5, 5))).astype(DT),
        "b1": np.zeros(30, DT),
        "W2": (0.01 * rng.standard_normal((4320, 100))).astype(DT),
        "b2": np.zeros(100, DT),
        "W3": (0.01 * rng.standard_normal((100, 10))).astype(DT),
        "b3": np.zeros(10, DT),
    }


def _book_stack(mod, p):
    """The SimpleConvNet layer sequence built from a module with the book's layer classes."""
    layers = [mod.Convolution(p["W1"], p["b1"], 1, 0), mod.Relu(), mod.Pooling(2, 2, stride=2),
              mod.Affine(p["W2"], p["b2"]), mod.Relu(), mod.Affine(p["W3"], p["b3"])]
    last = mod.SoftmaxWithLoss()

    def step(x, t):
        for layer in layers:
            x = layer.forward(x)
        last.forward(x, t)
        d = last.backward(1)
        for layer in reversed(layers):
            d = layer.backward(d)
        return d

    return step


def _torch_stack(torch, p):
    F = torch.nn.functional
    w = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in p.items()}
    lin2 = w["W2"].detach().T.contiguous().requires_grad_()
    lin3 = w["W3"].detach().T.contiguous().requires_grad_()
    params = [w["W1"], w["b1"], lin2, w["b2"], lin3, w["b3"]]

    def step(x, t):
        for q in params:
            q.grad = None
        h = F.relu(F.conv2d(x, w["W1"], w["b1"]))
        h = F.max_pool2d(h, 2, 2).reshape(x.shape[0], -1)
        h = F.relu(F.linear(h, lin2, w["b2"]))
        loss = F.cross_entropy(F.linear(h, lin3, w["b3"]), t)
        loss.backward()
        return loss

    return step


def _layer_cases(rng):
    """(name, builder(mod) -> (layer, x), flops of forward+backward)."""
    x_img = rng.random((100, 1, 28, 28), dtype=DT)
    W1 = (0.01 * rng.standard_normal((30, 1, 5, 5))).astype(DT)
    b1 = np.zeros(30, DT)
    conv_out = rng.standard_normal((100, 30, 24, 24)).astype(DT)
    x_aff = rng.standard_normal((100, 4320)).astype(DT)
    W2 = (0.01 * rng.standard_normal((4320, 100))).astype(DT)
    b2 = np.zeros(100, DT)
    conv_flops = 3 * 2 * 100 * 30 * 24 * 24 * 25
    aff_flops = 3 * 2 * 100 * 4320 * 100
    return [
        ("Convolution 1->30 5x5, 100x28x28", lambda m: (m.Convolution(W1, b1), x_img), conv_flops),
        ("Relu 100x30x24x24", lambda m: (m.Relu(), conv_out), None),
        ("Pooling 2x2 100x30x24x24", lambda m: (m.Pooling(2, 2, stride=2), conv_out), None),
        ("Affine 4320->100, batch 100", lambda m: (m.Affine(W2, b2), x_aff), aff_flops),
    ]


def run(quick=False):
    import fastnn.layers as fast
    import fastnn.reference.layers as ref

    rng = np.random.default_rng(0)
    repeats = 5 if quick else 9
    torch = _torch()
    rows = []

    for name, build, flops in _layer_cases(rng):
        contenders = {}
        for label, mod in (("fastnn", fast), ("reference", ref)):
            layer, x = build(mod)

            def fb(layer=layer, x=x):
                y = layer.forward(x)
                layer.backward(np.ones_like(y))

            contenders[label] = fb
        rows.append(row(name, compare(contenders, repeats=repeats), flops))

    x = rng.random((100, 1, 28, 28), dtype=DT)
    t = rng.integers(0, 10, 100)
    p = _stack_params(rng)
    steps = {"fastnn": _book_stack(fast, p), "reference": _book_stack(ref, p)}
    contenders = {k: (lambda s=s: s(x, t)) for k, s in steps.items()}
    if torch is not None:
        tstep = _torch_stack(torch, p)
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        contenders["torch"] = lambda: tstep(xt, tt)
    times = compare(contenders, repeats=repeats)
    memory = {k: peak_memory_mib(fn) for k, fn in contenders.items()}
    memory = {k: v for k, v in memory.items() if v is not None}
    stack_flops = 3 * 2 * 100 * (30 * 24 * 24 * 25 + 4320 * 100 + 100 * 10)
    rows.append(row("SimpleConvNet stack fwd+bwd, batch 100", times, stack_flops, memory))
    return rows


if __name__ == "__main__":
    from benchmarks.harness import print_table, set_threads
    import fastnn

    set_threads(fastnn.get_num_threads())
    print_table(run())
