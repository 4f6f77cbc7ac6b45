"""The GEMM floor of a training step: how long its matrix products alone take on this machine,
against the steps it is compared with (the SimpleConvNet step by default, ``--workload rnnlm``
for vol. 2's BetterRnnlm, where fastnn's step is timed too).

    python -m benchmarks.gemm_floor [--workload simple|rnnlm] [--threads N] [--repeats R]

Each GEMM of a step at batch 100 (the convolution as one 57600x25 by 25x30 product and its dW,
the 4320->100 affine's forward, dW and dx, the 100->10 affine's three) is timed as one large
OpenBLAS call, through fastnn's GEMM (`affine_forward` with a zero bias) and through NumPy's
`matmul`, as C = A @ B and as C^T = B^T @ A^T; the fastest of the four, best of the repeats,
counts. No step can take less than their
sum, whatever its other passes (im2col, pooling, ReLU, Adam) cost. fastnn's step and the
reference step (the NumPy layers) are timed in the same process, best of the repeats like the
GEMMs: the first's ratio to the sum is how far fastnn is from that floor, the second's the most
any implementation calling OpenBLAS could reach against the reference.
"""

import argparse
import os
import time

import numpy as np

from benchmarks.bench_train import make_step
from benchmarks.harness import set_threads

DT = np.float32
# name: (M, K, N) of C (M, N) = A (M, K) @ B (K, N)
SIMPLE_CONVNET_GEMMS = {
    "conv forward": (57600, 25, 30),
    "conv dW": (30, 57600, 25),
    "affine 4320->100 forward": (100, 4320, 100),
    "affine 4320->100 dW": (4320, 100, 100),
    "affine 4320->100 dx": (100, 100, 4320),
    "affine 100->10 forward": (100, 100, 10),
    "affine 100->10 dW": (100, 100, 10),
    "affine 100->10 dx": (100, 10, 100),
}
# BetterRnnlm (benchmarks/bench_nlp.py): N*T = 700 rows, D = H = 650, V = 10000, 4H = 2600.
# Each LSTM layer's products over the 35 steps are counted as one call (the recurrent h @ Wh
# cannot be one call in a real step: a floor), twice for the two layers.
_LSTM = {"x @ Wx": (700, 650, 2600), "h @ Wh": (700, 650, 2600), "dx": (700, 2600, 650),
         "dh": (700, 2600, 650), "dWx": (650, 700, 2600), "dWh": (650, 700, 2600)}
BETTER_RNNLM_GEMMS = {
    "affine 650->10000 forward": (700, 650, 10000),
    "affine 650->10000 dW": (650, 700, 10000),
    "affine 650->10000 dx": (700, 10000, 650),
    **{f"lstm{layer} {name}": mkn for layer in (1, 2) for name, mkn in _LSTM.items()},
}
GEMMS = {"simple": SIMPLE_CONVNET_GEMMS, "rnnlm": BETTER_RNNLM_GEMMS}


def best_seconds(fn, repeats, inner=10):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def gemm_floor(repeats=9, gemms=SIMPLE_CONVNET_GEMMS, inner=10):
    """{gemm name: seconds}, each the fastest of fastnn's and NumPy's call in either orientation."""
    from fastnn import _C

    rng = np.random.default_rng(0)
    out = {}
    for name, (M, K, N) in gemms.items():
        times = []
        # C and its transpose B^T @ A^T: the same product, either orientation counts.
        for m, k, n in ((M, K, N), (N, K, M)):
            a = rng.standard_normal((m, k), dtype=DT)
            b = rng.standard_normal((k, n), dtype=DT)
            zero = np.zeros(n, DT)
            c = np.empty((m, n), DT)
            times += [best_seconds(lambda: _C.affine_forward(a, b, zero), repeats, inner),
                      best_seconds(lambda: np.matmul(a, b, out=c), repeats, inner)]
        out[name] = min(times)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--workload", choices=sorted(GEMMS), default="simple")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    gemms = GEMMS[args.workload]
    # The BetterRnnlm's products take 10-100 ms each: one call per repeat.
    floor = gemm_floor(args.repeats, gemms, 10 if args.workload == "simple" else 1)
    for name, s in floor.items():
        print(f"{name:28s} {s * 1e3:8.3f} ms")
    total = sum(floor.values())
    print(f"{'GEMMs alone':28s} {total * 1e3:8.3f} ms")
    if args.workload == "rnnlm":
        from benchmarks.bench_nlp import _rnnlm
        flops = 2 * sum(M * K * N for M, K, N in gemms.values())
        for contender, repeats in (("fastnn", args.repeats), ("reference", 2)):
            step = _rnnlm(contender)
            t = best_seconds(step, repeats, inner=1)
            print(f"{contender + ' step':28s} {t * 1e3:8.3f} ms (best of {repeats}): GEMMs "
                  f"{100 * total / t:.0f}% of it, {flops / t / 1e9:.1f} GFLOP/s")
        return
    step, batch = make_step("simple", "fastnn")
    # Steps back to back, as in training: 0.3 s of them first (a fresh process runs its first
    # calls several times slower), then the best of the repeats, as for the GEMMs.
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.3:
        step(*batch)
    fast = best_seconds(lambda: step(*batch), args.repeats)
    print(f"{'fastnn step':28s} {fast * 1e3:8.3f} ms (best of {args.repeats}): "
          f"{fast / total:.2f}x its GEMMs alone")
    step, batch = make_step("simple", "reference")
    reference = best_seconds(lambda: step(*batch), args.repeats, inner=1)
    print(f"{'reference step':28s} {reference * 1e3:8.3f} ms (best of {args.repeats})")
    print(f"at most {reference / total:.1f}x the reference for any step calling OpenBLAS "
          f"({args.threads} threads)")


if __name__ == "__main__":
    main()
