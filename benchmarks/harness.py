"""Timing, thread and table helpers shared by every benchmark file.

How contenders are run (``benchmarks.runner`` starts the processes, ``benchmarks.child`` is what
runs in them): every contender of a workload (fastnn, fastnn.reference, PyTorch) runs in a
process of its own, in the state a user would have: PyTorch's process imports nothing of fastnn
and fastnn's imports no torch, so fastnn's OpenMP settings (``import fastnn`` sets
``OMP_WAIT_POLICY=PASSIVE``, and PyTorch shares fastnn's libgomp when both are loaded) never
reach PyTorch. The processes are alternated (A, B, C, A, B, C, ...) over rounds; inside a
process the contender is timed after a warm-up, and each row reports the median over rounds of
each process's median with its spread (min-max over rounds). Every process sets the same thread
count for its library (``set_threads``).

A workload is a ``Workload``: its label, its GEMM work, and ``build(contender, quick, data)``
returning the step to time. Building a contender imports only that contender's library, so a
bench module imports nothing but NumPy at its top.

Peak memory is measured in a fresh child process per contender (``benchmarks.memory``): the
growth of its resident high-water mark (VmHWM) over the resident size after setup.
"""

import ctypes
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

CONTENDERS = ("fastnn", "reference", "torch")


@dataclass
class Workload:
    """One row of the table.

    build(contender, quick, data) returns a callable step() that runs the workload once; for
    kind "epoch" it returns run() -> seconds of the whole (extrapolated) epoch. data is the
    folder of files the parent prepared (the epoch's images) or None.
    """

    suite: str
    key: str
    label: str
    build: Callable
    contenders: tuple = CONTENDERS
    flops: Optional[float] = None
    dtype: str = "float32"
    kind: str = "step"               # "step" or "epoch"
    samples: int = 3                 # timed samples per process (quick: see quick_samples)
    quick_samples: int = 2
    warmup: int = 1
    warmup_time: float = 0.25        # seconds of warm-up calls at least (quick: 0.05 at most)
    min_time: float = 0.05           # seconds per sample at least (10 ms at most with --quick)
    max_samples: dict = field(default_factory=dict)   # {contender: n}: a slow one stops early
    budget: float = 2.0              # seconds of samples per contender and process at most
    skip_quick: tuple = ()           # contenders left out with --quick (seconds per call)
    note: Optional[str] = None
    needs: Optional[str] = None      # "epoch_data": the parent prepares the data set first
    memory: Optional[str] = None     # bench_train net name whose peak memory the row reports

    def timing(self, quick):
        """(samples, warmup, warmup_time, min_time, budget) of one process."""
        return ((self.quick_samples if quick else self.samples), self.warmup,
                min(self.warmup_time, 0.05) if quick else self.warmup_time,
                min(self.min_time, 0.01) if quick else self.min_time,
                min(self.budget, 0.5) if quick else self.budget)

    def contenders_for(self, quick, available=CONTENDERS):
        return [c for c in self.contenders if c in available
                and not (quick and c in self.skip_quick)]


# ------------------------------------------------------------------ timing inside a process

def compare_samples(contenders, samples=5, warmup=2, min_time=0.0, max_samples=None,
                    budget=None, warmup_time=0.0):
    """Time each callable of {name: fn}, interleaved (A, B, A, B, ... rotating who goes first);
    returns {name: [seconds per call, one per sample]}.

    Each fn first warms up: warmup calls, and more until warmup_time seconds have passed (a
    fresh process's first calls run slower while caches, the allocator's free lists and the
    cores' clocks settle). The last warm-up call is timed to size the samples: each sample
    calls fn enough times to last min_time seconds and divides. max_samples ({name: n}) lets a
    slow contender stop early while the others keep going; so does budget (seconds): a
    contender whose samples have taken that long stops, after one sample at least.
    """
    names = list(contenders)
    max_samples = max_samples or {}
    inner = {}
    for name in names:
        fn = contenders[name]
        start, calls = time.perf_counter(), 0
        while True:
            t0 = time.perf_counter()
            fn()
            once = time.perf_counter() - t0
            calls += 1
            if calls >= warmup and time.perf_counter() - start >= warmup_time:
                break
        inner[name] = max(1, int(min_time / once)) if once > 0 else 1
    out = {name: [] for name in names}
    spent = {name: 0.0 for name in names}
    for r in range(samples):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            if r >= max_samples.get(name, samples) or (budget and out[name]
                                                       and spent[name] >= budget):
                continue
            fn, k = contenders[name], inner[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            took = time.perf_counter() - t0
            spent[name] += took
            out[name].append(took / k)
    return out


def compare(contenders, repeats=7, warmup=2, min_time=0.0, max_repeats=None, best=False):
    """compare_samples' medians (fastest samples when best): {name: seconds}."""
    s = compare_samples(contenders, repeats, warmup, min_time, max_repeats)
    return {name: (min(v) if best else statistics.median(v)) for name, v in s.items()}


# ------------------------------------------------------------------ threads

def set_threads(n, contenders=("fastnn", "reference")):
    """One thread count for the libraries of `contenders` in this process: NumPy's BLAS
    (threadpoolctl), PyTorch (torch.set_num_threads) and fastnn (its OpenMP threads; its own
    OpenBLAS stays single-threaded). Only the contenders' libraries are imported.

    fastnn goes first and its thread setting last: threadpoolctl would otherwise also give
    fastnn's OpenBLAS n threads of its own, nested inside fastnn's n OpenMP threads; and where
    torch shares the process (``--isolation none``), fastnn must be imported before torch,
    which loads the libgomp.so.1 fastnn then shares (libgomp reads OMP_WAIT_POLICY when it
    loads)."""
    fastnn = None
    if "fastnn" in contenders:
        import fastnn
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n, user_api="blas")
    except ImportError:
        pass
    if "torch" in contenders:
        import torch

        torch.set_num_threads(n)
    if fastnn is not None:
        fastnn.set_num_threads(n)


# ------------------------------------------------------------------ GEMM rates

def gemm_rates(threads, n=2048, repeats=5):
    """{'sgemm': GFLOP/s, 'dgemm': GFLOP/s} of the OpenBLAS fastnn links (scipy_openblas32,
    loaded here without fastnn) for n x n x n: for each, the faster of `threads` threads and
    one thread (fastnn keeps OpenBLAS single-threaded and splits GEMMs over its own threads; on
    busy cores OpenBLAS's own threading can be slower than one thread), fastest of `repeats`
    interleaved calls: the rate the machine can reach, which other work only lowers."""
    import scipy_openblas32

    lib = ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(),
                                   scipy_openblas32.get_library(fullname=True)))
    rng = np.random.default_rng(0)
    rates = {}
    for name, ctype, dtype in (("sgemm", ctypes.c_float, np.float32),
                               ("dgemm", ctypes.c_double, np.float64)):
        gemm = getattr(lib, f"scipy_cblas_{name}")
        fp = ctypes.POINTER(ctype)
        gemm.argtypes = [ctypes.c_int] * 6 + [ctype, fp, ctypes.c_int, fp, ctypes.c_int,
                                              ctype, fp, ctypes.c_int]
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        c = np.empty((n, n), dtype=dtype)
        pa, pb, pc = (m.ctypes.data_as(fp) for m in (a, b, c))

        def run(t, gemm=gemm, pa=pa, pb=pb, pc=pc):
            def fn():
                lib.scipy_openblas_set_num_threads(t)
                gemm(101, 111, 111, n, n, n, 1.0, pa, n, pb, n, 0.0, pc, n)  # row-major, NN
            return fn

        variants = {f"{threads} threads": run(threads)}
        if threads != 1:
            variants["1 thread"] = run(1)
        times = compare(variants, repeats=repeats, warmup=1, best=True)
        rates[name] = 2.0 * n ** 3 / min(times.values()) / 1e9
    lib.scipy_openblas_set_num_threads(1)
    return rates


# ------------------------------------------------------------------ rows and the table

def row(workload, rounds, flops=None, gemm_rate=None, dtype="float32", baseline="fastnn",
        note=None, memory=None):
    """One result row from {contender: [seconds, one per round]}: the median ms of each
    contender with its min-max over rounds, fastnn's speed-up over each other contender
    (median over median), and fastnn's GFLOP/s as a share of gemm_rate (the sgemm rate for
    float32, the dgemm rate for float64)."""
    gemm_name = "dgemm" if dtype == "float64" else "sgemm"
    rounds = {k: list(v) for k, v in rounds.items() if v}
    med = {k: statistics.median(v) for k, v in rounds.items()}
    out = {"workload": workload, "dtype": dtype, "ms": {k: v * 1e3 for k, v in med.items()},
           "ms_min": {k: min(v) * 1e3 for k, v in rounds.items()},
           "ms_max": {k: max(v) * 1e3 for k, v in rounds.items()},
           "rounds_ms": {k: [s * 1e3 for s in v] for k, v in rounds.items()}}
    if note:
        out["note"] = note
    if baseline in med:
        out["speedup"] = {k: v / med[baseline] for k, v in med.items() if k != baseline}
    if flops and baseline in med:
        gf = flops / med[baseline] / 1e9
        out["gflops"] = gf
        if gemm_rate:
            out[f"pct_{gemm_name}"] = 100.0 * gf / gemm_rate
    if memory:
        out["peak_mib"] = memory
    return out


def _ms(v):
    return f"{v:.0f}" if v >= 1000 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def _cell(r, c, spread):
    if c not in r.get("ms", {}):
        return "-"
    text = _ms(r["ms"][c])
    if spread and c in r.get("ms_min", {}) and len(r.get("rounds_ms", {}).get(c, ())) > 1:
        text += f" ({_ms(r['ms_min'][c])}-{_ms(r['ms_max'][c])})"
    return text


def _pct(r, gemm):
    return f"{r[f'pct_{gemm}']:.0f}%" if f"pct_{gemm}" in r else "-"


def table(rows, spread=True, gemm_columns=True):
    """The rows as a Markdown table: ms per contender (median, min-max over rounds), fastnn's
    speed-up over each other contender, GFLOP/s and its share of the sgemm rate (of the dgemm
    rate when every row is float64), then the peak memory and the notes."""
    gemm = "dgemm" if rows and all(r.get("dtype") == "float64" for r in rows) else "sgemm"
    contenders = [c for c in CONTENDERS if any(c in r.get("ms", {}) for r in rows)]
    contenders += [c for r in rows for c in r.get("ms", {}) if c not in contenders]
    contenders = list(dict.fromkeys(contenders))
    others = [c for c in contenders if c != "fastnn"]
    head = (["workload"] + [f"{c} ms" for c in contenders] + [f"x vs {c}" for c in others]
            + (["GFLOP/s", f"% {gemm}"] if gemm_columns else []))
    lines = ["| " + " | ".join(head) + " |",
             "|---" + "|---:" * (len(head) - 1) + "|"]
    for r in rows:
        cells = [r["workload"]] + [_cell(r, c, spread) for c in contenders]
        cells += [f"{r['speedup'][c]:.2f}" if c in r.get("speedup", {}) else "-" for c in others]
        if gemm_columns:
            cells.append(f"{r['gflops']:.1f}" if "gflops" in r else "-")
            cells.append(_pct(r, gemm))
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    for r in rows:
        if r.get("peak_mib"):
            text += (f"\n\nPeak memory of the {r['workload'].split(',')[0]}: "
                     + ", ".join(f"{k} {v:.0f} MiB" for k, v in r["peak_mib"].items()) + ".")
    notes = [f"- {r['workload']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        text += "\n\nNotes:\n" + "\n".join(notes)
    return text


def print_table(rows, file=None, spread=True, gemm_columns=True):
    text = table(rows, spread, gemm_columns)
    print(text, file=file)
    return text


def torch_step(fn, x, params, dout):
    """A PyTorch autograd step: fn(x, *params).backward(dout) on tensors made once from the
    NumPy arrays (params copied), gradients cleared each time."""
    import torch
    xt = torch.from_numpy(x).requires_grad_()
    ps = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    dt = torch.from_numpy(dout) if dout is not None else None

    def step():
        for t in [xt] + ps:
            t.grad = None
        fn(xt, *ps).backward(dt)
    return step


def layer_step(layer, x, dout):
    """A book layer's forward then backward."""
    def step():
        layer.forward(x)
        layer.backward(dout)
    return step


def book_layers(contender):
    """The layer module of 'fastnn' or 'reference' (imported in that contender's process)."""
    if contender == "fastnn":
        import fastnn.layers as mod
    elif contender == "reference":
        import fastnn.reference.layers as mod
    else:
        raise ValueError(f"unknown contender {contender!r}")
    return mod


def torch_available():
    """Whether PyTorch can be imported, found without importing it."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None
