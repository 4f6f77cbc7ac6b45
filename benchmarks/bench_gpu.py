"""GPU (CUDA) workloads, float32: fastnn on CuPy arrays against PyTorch CUDA eager on the same GPU.

- SimpleConvNet training step, batch 100 of 1x28x28 (conv 30x5x5, ReLU, pool 2x2, affine
  4320->100, ReLU, affine 100->10): forward, backward and an Adam update (lr 0.001), from the
  same initial weights on the same batch. fastnn: ``SimpleConvNet(dtype=np.float32).to("cuda")``
  and fastnn.optim.Adam; PyTorch: the same network as an nn.Module (Conv2d, Linear) holding
  those weights, autograd and torch.optim.Adam. PyTorch runs twice: with its defaults ("torch":
  cuDNN convolutions may use TF32) and with TF32 off ("torch-fp32", full float32 like fastnn,
  whose GEMMs are cuBLAS SGEMM).
- Depthwise convolutions (groups = C), forward + backward (dx, dW, db), at bench_conv's
  depthwise sizes: fastnn's direct kernels through fastnn.ops on CuPy arrays against
  F.conv2d(groups=C) with autograd, same inputs and upstream gradient.
- LSTM sequences, forward + backward, at bench_rnn's sizes: fastnn.nn.LSTM holding CuPy
  weights (load_state_dict of CuPy arrays) on a CuPy input against torch.nn.LSTM (cuDNN) with
  the same weights.

Every timed call ends with a device synchronisation (cupy / torch.cuda.synchronize), the
contenders run interleaved, and the median of the timed repeats after a warm-up is reported
(harness.compare). Each row's note records the device, the versions and a check that both
contenders computed the same numbers. Without a usable GPU the suite prints why and is
skipped; a contender that cannot run a workload is reported as failed in that row's note and
the others are still timed.

    PYTHONPATH=. python benchmarks/bench_gpu.py [--quick] [--json out.json]
    python -m benchmarks --only gpu
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.bench_conv import DEPTHWISE  # noqa: E402
from benchmarks.harness import compare, print_table  # noqa: E402

DT = np.float32
LSTM_SIZES = {"small": dict(N=32, T=50, D=64, H=128), "large": dict(N=20, T=35, D=650, H=650)}


def fastnn_gpu_reason():
    """'' when fastnn can compute on CuPy arrays here, else why not."""
    from fastnn import cuda
    return cuda.reason()


def torch_cuda():
    """(torch, '') when PyTorch sees a CUDA device, else (None, why not)."""
    try:
        import torch
    except ImportError as e:
        return None, f"PyTorch is not importable ({e})"
    if not torch.cuda.is_available():
        return None, f"torch {torch.__version__} sees no CUDA device"
    return torch, ""


def _device_info(cp, torch):
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"]
    info = [name.decode() if isinstance(name, bytes) else str(name), f"CuPy {cp.__version__}"]
    if torch is not None:
        info.append(f"torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN "
                    f"{torch.backends.cudnn.version()})")
    return ", ".join(info)


def _row(workload, times, notes, device):
    out = {"workload": workload, "ms": {k: v * 1e3 for k, v in times.items()},
           "device": device}
    if "fastnn" in times:
        out["speedup"] = {k: v / times["fastnn"] for k, v in times.items() if k != "fastnn"}
    if notes:
        out["note"] = "; ".join(notes)
    return out


def _failure(who, e):
    return f"{who} failed: {type(e).__name__}: {e}"


# ---------------------------------------------------------------- SimpleConvNet training step

def _initial_simple_convnet():
    """The book's SimpleConvNet in float32 with the weights every contender starts from."""
    from fastnn.models import SimpleConvNet
    np.random.seed(0)
    return SimpleConvNet(dtype=DT)


def _batch(N=100, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((N, 1, 28, 28), dtype=DT), rng.integers(0, 10, N)


def _fastnn_simple(cp, x, t):
    """(step, initial loss) of fastnn's SimpleConvNet on the GPU with Adam."""
    from fastnn.optim import Adam
    net = _initial_simple_convnet().to("cuda")
    opt = Adam(lr=0.001)
    xd, td = cp.asarray(x), cp.asarray(t)
    loss0 = float(net.loss(xd, td))
    device = cp.cuda.Device()

    def step():
        opt.update(net.params, net.gradient(xd, td))
        device.synchronize()
    return step, loss0


def _torch_simple(torch, params, x, t, tf32):
    """(step, initial loss) of the same network as a torch.nn.Module on CUDA with Adam; tf32
    None keeps PyTorch's defaults, False turns TF32 off for cuDNN and matmuls."""
    nn, F = torch.nn, torch.nn.functional

    class SimpleConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 30, 5)
            self.fc1 = nn.Linear(4320, 100)
            self.fc2 = nn.Linear(100, 10)

        def forward(self, x):
            h = F.max_pool2d(torch.relu(self.conv(x)), 2, 2).flatten(1)
            return self.fc2(torch.relu(self.fc1(h)))

    model = SimpleConvNet()
    with torch.no_grad():
        for p, key, transpose in ((model.conv.weight, "W1", False), (model.conv.bias, "b1", False),
                                  (model.fc1.weight, "W2", True), (model.fc1.bias, "b2", False),
                                  (model.fc2.weight, "W3", True), (model.fc2.bias, "b3", False)):
            w = params[key].T if transpose else params[key]
            p.copy_(torch.from_numpy(np.ascontiguousarray(w)))
    model = model.cuda()
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    xd, td = torch.from_numpy(x).cuda(), torch.from_numpy(t).cuda()

    def settings():
        if tf32 is None:
            return None
        saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
        return saved

    def restore(saved):
        if saved is not None:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved

    saved = settings()
    try:
        with torch.no_grad():
            loss0 = F.cross_entropy(model(xd), td).item()
    finally:
        restore(saved)

    def step():
        saved = settings()
        try:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xd), td).backward()
            opt.step()
            torch.cuda.synchronize()
        finally:
            restore(saved)
    return step, loss0


def _simple_row(cp, torch, device, repeats):
    x, t = _batch()
    params = _initial_simple_convnet().params
    steps, losses, notes = {}, {}, []
    builders = {"fastnn": lambda: _fastnn_simple(cp, x, t)}
    if torch is not None:
        builders["torch"] = lambda: _torch_simple(torch, params, x, t, None)
        builders["torch-fp32"] = lambda: _torch_simple(torch, params, x, t, False)
    for name, build in builders.items():
        try:
            steps[name], losses[name] = build()
        except Exception as e:  # reported in the row; the other contenders still run
            notes.append(_failure(name, e))
    times = _timed(steps, repeats, notes, min_time=0.05)
    if losses:
        notes.insert(0, "initial loss " + ", ".join(f"{k} {v:.6f}" for k, v in losses.items())
                     + " (same weights, same batch; fastnn adds the book's 1e-7 inside log)")
    return _row("SimpleConvNet train step (Adam), batch 100 [GPU]", times, notes, device)


def _timed(steps, repeats, notes, min_time=0.0):
    """compare() over the steps that can run; a step failing while timed is dropped with a
    note and the others are timed again."""
    steps = dict(steps)
    while steps:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PyTorch's notices about the TF32 flags
                return compare(steps, repeats=repeats, warmup=3, min_time=min_time)
        except Exception as e:
            failed = _failing(steps)
            notes.append(_failure(failed, e))
            del steps[failed]
    return {}


def _failing(steps):
    for name, step in steps.items():
        try:
            step()
        except Exception:
            return name
    return next(iter(steps))


# ---------------------------------------------------------------- depthwise convolution

def _fastnn_depthwise(cp, x, W, b, dout, stride):
    """(step, output on the host) of fastnn's depthwise convolution on CuPy arrays."""
    from fastnn import ops
    xd, Wd, bd, dd = (cp.asarray(a) for a in (x, W, b, dout))
    C = x.shape[1]
    out = ops.conv2d_forward(xd, Wd, bd, stride, 1, groups=C)
    device = cp.cuda.Device()

    def step():
        ops.conv2d_forward(xd, Wd, bd, stride, 1, groups=C)
        ops.conv2d_backward(dd, xd, Wd, bd, stride, 1, groups=C)
        device.synchronize()
    return step, cp.asnumpy(out)


def _torch_depthwise(torch, x, W, b, dout, stride):
    F = torch.nn.functional
    xd, Wd, bd = (torch.from_numpy(a).cuda().requires_grad_() for a in (x, W, b))
    dd = torch.from_numpy(dout).cuda()
    C = x.shape[1]
    with torch.no_grad():
        out = F.conv2d(xd, Wd, bd, stride, 1, groups=C).cpu().numpy()

    def step():
        xd.grad = Wd.grad = bd.grad = None
        F.conv2d(xd, Wd, bd, stride, 1, groups=C).backward(dd)
        torch.cuda.synchronize()
    return step, out


def _depthwise_row(cp, torch, device, label, N, C, H, W, stride, repeats):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(DT)
    Wt = (rng.standard_normal((C, 1, 3, 3)) / 3).astype(DT)
    b = rng.standard_normal(C).astype(DT)
    OH, OW = (H - 1) // stride + 1, (W - 1) // stride + 1  # 3x3, pad 1
    dout = rng.standard_normal((N, C, OH, OW)).astype(DT)
    steps, outs, notes = {}, {}, []
    builders = {"fastnn": lambda: _fastnn_depthwise(cp, x, Wt, b, dout, stride)}
    if torch is not None:
        builders["torch"] = lambda: _torch_depthwise(torch, x, Wt, b, dout, stride)
    for name, build in builders.items():
        try:
            steps[name], outs[name] = build()
        except Exception as e:
            notes.append(_failure(name, e))
    if len(outs) == 2:
        diff = float(np.max(np.abs(outs["fastnn"] - outs["torch"])))
        notes.insert(0, f"max |output fastnn - torch| {diff:.2e} (same weights and input)")
    times = _timed(steps, repeats, notes, min_time=0.05)
    return _row(f"{label} fwd+bwd [GPU]", times, notes, device)


# ---------------------------------------------------------------- LSTM sequences

def _lstm_state(torch, D, H, seed=0):
    """(torch.nn.LSTM on CUDA or None, its weights as host arrays)."""
    if torch is not None:
        torch.manual_seed(seed)
        module = torch.nn.LSTM(D, H).cuda()
        return module, {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    import fastnn.nn as fnn
    np.random.seed(seed)
    return None, {k: np.array(v) for k, v in fnn.LSTM(D, H).state_dict().items()}


def _fastnn_lstm(cp, state, x, dout, D, H):
    """(step, output on the host) of fastnn.nn.LSTM with CuPy weights on a CuPy input."""
    import fastnn.nn as fnn

    def on_host():
        return [k for k, p in module.state_dict().items() if not isinstance(p, cp.ndarray)]

    module = fnn.LSTM(D, H)
    try:
        module.load_state_dict({k: cp.asarray(v) for k, v in state.items()})
        why = "it kept host arrays"
    except Exception as e:
        why = f"{type(e).__name__}: {e}"
    if on_host() and callable(getattr(module, "cuda", None)):
        module.load_state_dict(state)  # host weights, then a torch-style move
        module.cuda()
    if on_host():
        raise TypeError(f"fastnn.nn.LSTM cannot hold CuPy weights: load_state_dict of CuPy "
                        f"arrays failed ({why}) and it has no working .cuda()")
    xd, dd = cp.asarray(x), cp.asarray(dout)
    out, _ = module(xd)
    dx = module.backward(dd)
    for what, a in (("output", out), ("input gradient", dx)):
        if not isinstance(a, cp.ndarray):
            raise TypeError(f"fastnn.nn.LSTM returned its {what} as {type(a).__name__} for a "
                            f"CuPy input")
    device = cp.cuda.Device()

    def step():
        module(xd)
        module.backward(dd)
        device.synchronize()
    return step, cp.asnumpy(out)


def _torch_lstm(torch, module, x, dout):
    xd = torch.from_numpy(x).cuda().requires_grad_()
    dd = torch.from_numpy(dout).cuda()
    with torch.no_grad():
        out = module(xd)[0].cpu().numpy()

    def step():
        y, _ = module(xd)
        y.backward(dd)
        torch.cuda.synchronize()
    return step, out


def _lstm_row(cp, torch, device, size, dims, repeats):
    N, T, D, H = dims["N"], dims["T"], dims["D"], dims["H"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, N, D)).astype(DT)
    dout = rng.standard_normal((T, N, H)).astype(DT)
    module, state = _lstm_state(torch, D, H)
    steps, outs, notes = {}, {}, []
    builders = {"fastnn": lambda: _fastnn_lstm(cp, state, x, dout, D, H)}
    if module is not None:
        builders["torch"] = lambda: _torch_lstm(torch, module, x, dout)
    for name, build in builders.items():
        try:
            steps[name], outs[name] = build()
        except Exception as e:
            notes.append(_failure(name, e))
    if len(outs) == 2:
        diff = float(np.max(np.abs(outs["fastnn"] - outs["torch"])))
        notes.insert(0, f"max |output fastnn - torch| {diff:.2e} (same weights and input)")
    times = _timed(steps, repeats, notes, min_time=0.05)
    return _row(f"LSTM {size} N={N} T={T} D={D} H={H} fwd+bwd [GPU]", times, notes, device)


# ---------------------------------------------------------------- suite

def run(quick=False):
    """Rows of the GPU workloads, or one row saying why the suite is skipped."""
    why = fastnn_gpu_reason()
    if why:
        return [{"workload": "GPU suite (bench_gpu)", "ms": {},
                 "note": f"skipped: fastnn cannot use CUDA here: {why}"}]
    import cupy as cp
    torch, torch_why = torch_cuda()
    device = _device_info(cp, torch)
    repeats = 5 if quick else 9
    rows = [_simple_row(cp, torch, device, repeats)]
    for _, label, N, C, H, W, stride in DEPTHWISE:
        rows.append(_depthwise_row(cp, torch, device, label, N, C, H, W, stride, repeats))
    for size, dims in LSTM_SIZES.items():
        rows.append(_lstm_row(cp, torch, device, size, dims, repeats))
    prefix = device + (f"; no PyTorch contender: {torch_why}" if torch_why else "")
    for r in rows:
        r["note"] = prefix + ("; " + r["note"] if r.get("note") else "")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args(argv)
    rows = run(args.quick)
    print_table(rows)
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"suite": "bench_gpu", "quick": args.quick, "rows": rows}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
