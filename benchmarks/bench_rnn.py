"""Forward + backward of RNN, LSTM and GRU: fastnn vs fastnn.reference vs torch.nn (float32).

Sizes: small (batch 32, T 50, D 64, H 128) and large (batch 20, T 35, D = H = 650). Every
contender runs with the same thread count, interleaved, median of >= 5 timed runs after a
warm-up. GFLOP/s counts the GEMM work only (2*M*N*K per product, forward 1x + backward 2x)
and is also shown as a fraction of the machine's measured sgemm rate.

    python benchmarks/bench_rnn.py [--quick] [--threads N] [--json out.json]
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fastnn  # noqa: E402
import fastnn.nn as fnn  # noqa: E402
from fastnn.reference import time_layers as ref  # noqa: E402

SIZES = {"small": dict(N=32, T=50, D=64, H=128), "large": dict(N=20, T=35, D=650, H=650)}
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def gemm_flops(kind, N, T, D, H):
    """GEMM flops of one forward + backward pass (input and hidden projections, x3)."""
    G = GATES[kind] * H
    return 3 * 2 * N * T * G * (D + H)


def sgemm_rate(threads, n=1024, reps=7):
    """The machine's float32 GEMM rate in GFLOP/s: best of reps n x n products by NumPy's BLAS
    limited to the same thread count (best, not median: it is the machine's ceiling)."""
    try:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(threads)
    except ImportError:  # NumPy's BLAS then runs on its own default thread count
        limit = None
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    if limit is not None:
        limit.restore_original_limits()
    return 2 * n ** 3 / best / 1e9


def _fastnn_step(kind, N, T, D, H, rng):
    m = getattr(fnn, kind)(D, H)
    x = rng.standard_normal((T, N, D)).astype(np.float32)
    dout = rng.standard_normal((T, N, H)).astype(np.float32)

    def step():
        m(x)
        m.backward(dout)
    return step


def _reference_step(kind, N, T, D, H, rng):
    cls = {"RNN": ref.TimeRNN, "LSTM": ref.TimeLSTM, "GRU": ref.TimeGRU}[kind]
    G = GATES[kind] * H
    layer = cls((rng.standard_normal((D, G)) * 0.05).astype(np.float32),
                (rng.standard_normal((H, G)) * 0.05).astype(np.float32),
                np.zeros(G, np.float32))
    xs = rng.standard_normal((N, T, D)).astype(np.float32)
    dhs = rng.standard_normal((N, T, H)).astype(np.float32)

    def step():
        layer.forward(xs)
        layer.backward(dhs)
    return step


def _torch_step(kind, N, T, D, H, rng):
    import torch
    m = getattr(torch.nn, kind)(D, H)
    x = torch.from_numpy(rng.standard_normal((T, N, D)).astype(np.float32)).requires_grad_()
    dout = torch.from_numpy(rng.standard_normal((T, N, H)).astype(np.float32))

    def step():
        out, _ = m(x)
        out.backward(dout)
    return step


def run(quick=False, threads=None):
    """Time every (size, kind, contender); returns one dict per row."""
    threads = threads or fastnn.get_num_threads()
    fastnn.set_num_threads(threads)
    contenders = {"fastnn": _fastnn_step, "reference": _reference_step}
    try:
        import torch
        torch.set_num_threads(threads)
        contenders["torch"] = _torch_step
    except ImportError:
        pass
    reps = 5 if quick else 9
    rate = sgemm_rate(threads, 512 if quick else 1024)
    rng = np.random.default_rng(0)
    rows = []
    for size, dims in SIZES.items():
        for kind in GATES:
            # the reference is slow at the large size; fewer runs (still median of >= 5)
            steps = {name: make(kind, rng=rng, **dims) for name, make in contenders.items()}
            for s in steps.values():
                s()  # warm-up
            times = {name: [] for name in steps}
            for _ in range(reps):
                for name, s in steps.items():  # interleaved
                    t0 = time.perf_counter()
                    s()
                    times[name].append(time.perf_counter() - t0)
            flops = gemm_flops(kind, **dims)
            med = {name: float(np.median(t)) for name, t in times.items()}
            for name, t in med.items():
                rows.append(dict(size=size, kind=kind, impl=name, threads=threads,
                                 ms=1e3 * t, gflops=flops / t / 1e9,
                                 frac_sgemm=flops / t / 1e9 / rate,
                                 speedup_vs_torch=med["torch"] / t if "torch" in med else None,
                                 speedup_vs_reference=med["reference"] / t, sgemm_gflops=rate,
                                 **dims))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = run(args.quick, args.threads)
    print(f"threads={rows[0]['threads']}  sgemm={rows[0]['sgemm_gflops']:.1f} GFLOP/s  "
          f"(float32, forward+backward)")
    print(f"{'size':6} {'layer':5} {'impl':10} {'ms':>9} {'GFLOP/s':>8} {'%sgemm':>7} "
          f"{'x torch':>8} {'x ref':>7}")
    for r in rows:
        vs_t = f"{r['speedup_vs_torch']:.2f}" if r["speedup_vs_torch"] else "-"
        print(f"{r['size']:6} {r['kind']:5} {r['impl']:10} {r['ms']:9.2f} {r['gflops']:8.1f} "
              f"{100 * r['frac_sgemm']:6.1f}% {vs_t:>8} {r['speedup_vs_reference']:7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
