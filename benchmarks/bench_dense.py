"""Dense-layer workloads: fastnn vs fastnn.reference (NumPy), forward + backward.

One process, contenders interleaved, median of the timed repeats after a warm-up, the same
thread count for both (fastnn.set_num_threads also sets the OpenBLAS NumPy uses only when they
share a library, so run with OMP/OPENBLAS_NUM_THREADS set alike for a fair comparison).
Usage: PYTHONPATH=. python benchmarks/bench_dense.py [--repeats 9] [--json out.json]
"""

import argparse
import json
import time

import numpy as np

import fastnn
from fastnn import layers as L
from fastnn.reference import layers as R


def _affine(mod, dtype, N=100, D=4320, M=100):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D)).astype(dtype)
    W = (0.01 * rng.standard_normal((D, M))).astype(dtype)
    b = np.zeros(M, dtype)
    dout = rng.standard_normal((N, M)).astype(dtype)
    layer = mod.Affine(W, b)

    def step():
        layer.forward(x)
        layer.backward(dout)
    return step, 3 * 2 * N * D * M  # three GEMMs


def _softmax_loss(mod, dtype, N=100, C=1000):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C)).astype(dtype)
    t = rng.integers(0, C, N)
    layer = mod.SoftmaxWithLoss()

    def step():
        layer.forward(x, t)
        layer.backward()
    return step, None


def _batchnorm(mod, dtype, N=100, D=4320):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D)).astype(dtype)
    dout = rng.standard_normal((N, D)).astype(dtype)
    layer = mod.BatchNormalization(np.ones(D, dtype), np.zeros(D, dtype), 0.9,
                                   np.zeros(D, dtype), np.ones(D, dtype))

    def step():
        layer.forward(x)
        layer.backward(dout)
    return step, None


WORKLOADS = {
    "Affine 4320->100 N=100 fwd+bwd": _affine,
    "SoftmaxWithLoss N=100 C=1000 fwd+bwd": _softmax_loss,
    "BatchNorm N=100 D=4320 fwd+bwd": _batchnorm,
}


def _timings_ms(fns, repeats):
    """Median and best time of each contender, in ms."""
    times = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeats):
        for k, fn in fns.items():  # interleaved
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: (1e3 * float(np.median(v)), 1e3 * min(v)) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    print(f"threads: {fastnn.get_num_threads()}")
    print(f"{'workload':40s} {'dtype':8s} {'fastnn ms':>10s} {'numpy ms':>10s} {'speed-up':>9s}"
          f" {'(best-of)':>9s}")
    for name, make in WORKLOADS.items():
        for dtype in (np.float32, np.float64):
            ours, flops = make(L, dtype)
            ref, _ = make(R, dtype)
            ms = _timings_ms({"fastnn": ours, "numpy": ref}, args.repeats)
            (ours_ms, ours_best), (ref_ms, ref_best) = ms["fastnn"], ms["numpy"]
            row = dict(workload=name, dtype=np.dtype(dtype).name, fastnn_ms=ours_ms,
                       numpy_ms=ref_ms, speedup=ref_ms / ours_ms, fastnn_best_ms=ours_best,
                       numpy_best_ms=ref_best, speedup_best=ref_best / ours_best)
            if flops:
                row["fastnn_gflops"] = flops / ours_ms / 1e6
            rows.append(row)
            print(f"{name:40s} {row['dtype']:8s} {ours_ms:10.3f} {ref_ms:10.3f}"
                  f" {row['speedup']:8.2f}x {row['speedup_best']:8.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(threads=fastnn.get_num_threads(), rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
