"""Recurrent workloads: forward + backward of RNN, LSTM and GRU for fastnn.nn vs
fastnn.reference (the book-style NumPy TimeRNN/TimeLSTM/TimeGRU) vs torch.nn (autograd), in
float32, and the LSTMs again in float64.

Sizes: small (batch 32, T 50, D 64, H 128) and large (batch 20, T 35, D = H = 650). Every
contender starts from the same weights (benchmarks.weights: torch.nn's names and layout, which
fastnn.nn loads as they are; the reference gets their transposes) and the same input. GFLOP/s
counts the GEMM work, 3 x 2*N*T*gH*(D+H) (forward once, backward twice), against the sgemm
(dgemm) rate of fastnn's OpenBLAS.

    PYTHONPATH=. python benchmarks/bench_rnn.py [--quick] [--threads N] [--json out.json]
"""

import os
import sys

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks import weights  # noqa: E402
from benchmarks.harness import Workload  # noqa: E402

SUITE = "bench_rnn"
SIZES = {"small": dict(N=32, T=50, D=64, H=128), "large": dict(N=20, T=35, D=650, H=650)}
GATES = weights.GATES


def gemm_flops(kind, N, T, D, H):
    return 3 * 2 * N * T * GATES[kind] * H * (D + H)


def _inputs(N, T, D, H, dtype):
    """x (T, N, D) and the output's gradient (T, N, H), torch.nn's layout."""
    rng = np.random.default_rng(1)
    return (rng.standard_normal((T, N, D)).astype(dtype),
            rng.standard_normal((T, N, H)).astype(dtype))


def _builder(kind, N, T, D, H, dtype):
    def build(contender, quick=False, data=None):
        state = weights.recurrent(kind, D, H, dtype)
        x, dout = _inputs(N, T, D, H, dtype)
        if contender == "fastnn":
            import fastnn.nn as fnn
            m = getattr(fnn, kind)(D, H, dtype=dtype)
            m.load_state_dict(state)

            def step():
                m(x)
                m.backward(dout)
            return step
        if contender == "reference":
            from fastnn.reference import time_layers as ref
            layer = getattr(ref, "Time" + kind)(
                np.ascontiguousarray(state["weight_ih_l0"].T),
                np.ascontiguousarray(state["weight_hh_l0"].T),
                state["bias_ih_l0"] + state["bias_hh_l0"])
            xs = np.ascontiguousarray(x.transpose(1, 0, 2))      # the book's (N, T, D)
            dhs = np.ascontiguousarray(dout.transpose(1, 0, 2))

            def step():
                layer.forward(xs)
                layer.backward(dhs)
            return step
        if contender == "torch":
            import torch
            m = getattr(torch.nn, kind)(D, H)
            if dtype == np.float64:
                m = m.double()
            m.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
            xt = torch.from_numpy(x).requires_grad_()
            dt = torch.from_numpy(dout)

            def step():
                out, _ = m(xt)
                out.backward(dt)
            return step
        raise ValueError(f"unknown contender {contender!r}")
    return build


def workloads():
    out = []
    for dtype, kinds in ((np.float32, GATES), (np.float64, ("LSTM",))):
        f64 = dtype == np.float64
        for size, dims in SIZES.items():
            for kind in kinds:
                label = (f"{kind} {size} N={dims['N']} T={dims['T']} D={dims['D']} "
                         f"H={dims['H']} fwd+bwd" + (", float64" if f64 else ""))
                out.append(Workload(SUITE, f"{kind.lower()}_{size}" + ("_f64" if f64 else ""),
                                    label, _builder(kind, dtype=dtype, **dims),
                                    flops=gemm_flops(kind, **dims),
                                    dtype="float64" if f64 else "float32"))
    return out


if __name__ == "__main__":
    from benchmarks.__main__ import main
    main(["--only", SUITE] + sys.argv[1:])
