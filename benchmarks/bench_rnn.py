"""Recurrent workloads: forward + backward of RNN, LSTM and GRU, float32, for fastnn.nn vs
fastnn.reference (the book-style NumPy TimeRNN/TimeLSTM/TimeGRU) vs torch.nn (autograd).

Sizes: small (batch 32, T 50, D 64, H 128) and large (batch 20, T 35, D = H = 650). One
process, contenders interleaved, median of the timed repeats after a warm-up, the same thread
count for everyone (harness.set_threads). GFLOP/s counts the GEMM work, 3 x 2*N*T*gH*(D+H)
(forward once, backward twice), against the sgemm rate of fastnn's OpenBLAS.

    PYTHONPATH=. python benchmarks/bench_rnn.py [--quick] [--threads N] [--json out.json]
"""

import argparse
import json
import os
import sys

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.harness import compare, print_table, row, set_threads, sgemm_gflops  # noqa: E402

SIZES = {"small": dict(N=32, T=50, D=64, H=128), "large": dict(N=20, T=35, D=650, H=650)}
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def gemm_flops(kind, N, T, D, H):
    return 3 * 2 * N * T * GATES[kind] * H * (D + H)


def _fastnn(kind, N, T, D, H, rng):
    import fastnn.nn as fnn
    m = getattr(fnn, kind)(D, H)
    x = rng.standard_normal((T, N, D)).astype(np.float32)
    dout = rng.standard_normal((T, N, H)).astype(np.float32)

    def step():
        m(x)
        m.backward(dout)
    return step


def _reference(kind, N, T, D, H, rng):
    from fastnn.reference import time_layers as ref
    G = GATES[kind] * H
    layer = getattr(ref, "Time" + kind)((rng.standard_normal((D, G)) * 0.05).astype(np.float32),
                                        (rng.standard_normal((H, G)) * 0.05).astype(np.float32),
                                        np.zeros(G, np.float32))
    xs = rng.standard_normal((N, T, D)).astype(np.float32)
    dhs = rng.standard_normal((N, T, H)).astype(np.float32)

    def step():
        layer.forward(xs)
        layer.backward(dhs)
    return step


def _torch(kind, N, T, D, H, rng):
    import torch
    m = getattr(torch.nn, kind)(D, H)
    x = torch.from_numpy(rng.standard_normal((T, N, D)).astype(np.float32)).requires_grad_()
    dout = torch.from_numpy(rng.standard_normal((T, N, H)).astype(np.float32))

    def step():
        out, _ = m(x)
        out.backward(dout)
    return step


def run(quick=False):
    """Time every (size, layer) for each contender; one harness row per workload."""
    contenders = {"fastnn": _fastnn, "reference": _reference}
    try:
        import torch  # noqa: F401
        contenders["torch"] = _torch
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    rows = []
    for size, dims in SIZES.items():
        for kind in GATES:
            steps = {name: make(kind, rng=rng, **dims) for name, make in contenders.items()}
            # Each sample lasts >= 50 ms, as in the other suites, rather than one call of a few ms.
            times = compare(steps, repeats=5 if quick else 9, warmup=1,
                            min_time=0.0 if quick else 0.05)
            label = f"{kind} {size} N={dims['N']} T={dims['T']} D={dims['D']} H={dims['H']}"
            rows.append(row(label + " fwd+bwd", times, gemm_flops(kind, **dims)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    print(f"{args.threads} threads | sgemm {sgemm_gflops():.1f} GFLOP/s | float32")
    rows = run(args.quick)
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "sgemm_gflops": sgemm_gflops(), "rows": rows},
                      f, indent=1)


if __name__ == "__main__":
    main()
