"""Timing helpers shared by every benchmark file.

Contenders of one workload run interleaved in one process (A, B, C, A, B, C, ...) after a
warm-up, with the same thread count, and the median of the repeats is reported, so machine noise
hits all contenders alike. Peak memory is measured in a fresh child process per contender
(``benchmarks.memory``): the growth of its resident high-water mark (VmHWM) over the resident
size after setup, across warm-up and timed steps. (Resetting VmHWM through /proc/self/clear_refs
is not allowed in every sandbox, where it silently read 0.)
"""

import ctypes
import os
import statistics
import time

import numpy as np


def set_threads(n):
    """One thread count for NumPy's BLAS, PyTorch and fastnn (OpenMP threads; its OpenBLAS
    stays single-threaded). fastnn goes last: threadpoolctl would otherwise also give fastnn's
    OpenBLAS n threads of its own, nested inside fastnn's n OpenMP threads. fastnn is imported
    before torch: torch loads its own libgomp.so.1, which fastnn then shares, and libgomp reads
    fastnn's OMP_WAIT_POLICY=PASSIVE default only if fastnn sets it before the first load."""
    import fastnn

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    fastnn.set_num_threads(n)


def compare(contenders, repeats=7, warmup=2, min_time=0.0, max_repeats=None):
    """Time each callable of {name: fn}, interleaved; returns {name: median seconds}.

    Each repeat calls fn enough times to last min_time seconds and divides. max_repeats
    ({name: n}, n >= 5) lets a slow contender (the NumPy reference at large shapes) stop early;
    the others keep running interleaved.
    """
    names = list(contenders)
    max_repeats = max_repeats or {}
    inner = {}
    for name in names:
        fn = contenders[name]
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        fn()
        once = time.perf_counter() - t0
        inner[name] = max(1, int(min_time / once)) if once > 0 else 1
    samples = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            if r >= max_repeats.get(name, repeats):
                continue
            fn, k = contenders[name], inner[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
    return {name: statistics.median(s) for name, s in samples.items()}


_sgemm_rate = None


def sgemm_gflops(n=2048, repeats=5):
    """The machine's sgemm rate (GFLOP/s): the faster of OpenBLAS (the library fastnn links)
    on all of fastnn's threads and on one thread, for n x n x n.

    fastnn keeps OpenBLAS single-threaded and splits GEMMs over its own threads; on busy cores
    OpenBLAS's own threading can be slower than one thread, so both are measured.
    """
    global _sgemm_rate
    if _sgemm_rate is not None:
        return _sgemm_rate
    import fastnn
    import scipy_openblas32

    lib = ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(),
                                   scipy_openblas32.get_library(fullname=True)))
    sgemm = lib.scipy_cblas_sgemm
    fp = ctypes.POINTER(ctypes.c_float)
    sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, fp, ctypes.c_int, fp, ctypes.c_int,
                                           ctypes.c_float, fp, ctypes.c_int]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    pa, pb, pc = (m.ctypes.data_as(fp) for m in (a, b, c))

    def run(threads):
        def fn():
            lib.scipy_openblas_set_num_threads(threads)
            sgemm(101, 111, 111, n, n, n, 1.0, pa, n, pb, n, 0.0, pc, n)  # row-major, no trans
        return fn

    threads = fastnn.get_num_threads()
    try:
        times = compare({f"{threads} threads": run(threads), "1 thread": run(1)},
                        repeats=repeats, warmup=1)
    finally:
        fastnn.set_num_threads(threads)  # restores fastnn's OpenBLAS setting
    _sgemm_rate = 2.0 * n ** 3 / min(times.values()) / 1e9
    return _sgemm_rate


def row(workload, times, flops=None, memory=None, baseline="fastnn", note=None):
    """One result row: ms per contender, speed-up of `baseline` over each other, GFLOP/s."""
    rate = sgemm_gflops()
    out = {"workload": workload, "ms": {k: v * 1e3 for k, v in times.items()}}
    if note:
        out["note"] = note
    if baseline in times:
        out["speedup"] = {k: v / times[baseline] for k, v in times.items() if k != baseline}
    if flops:
        gf = flops / times[baseline] / 1e9
        out["gflops"] = gf
        out["pct_sgemm"] = 100.0 * gf / rate
    if memory:
        out["peak_mib"] = memory
    return out


def print_table(rows, file=None):
    """A plain-text table of rows made by row()."""
    contenders = []
    for r in rows:
        for k in r["ms"]:
            if k not in contenders:
                contenders.append(k)
    head = ["workload"] + [f"{c} ms" for c in contenders]
    head += [f"x vs {c}" for c in contenders if c != "fastnn"] + ["GFLOP/s", "% sgemm", "peak MiB"]
    lines = [head]
    for r in rows:
        cells = [r["workload"]]
        cells += [f"{r['ms'][c]:.2f}" if c in r["ms"] else "-" for c in contenders]
        cells += [f"{r['speedup'][c]:.2f}" if c in r.get("speedup", {}) else "-"
                  for c in contenders if c != "fastnn"]
        cells.append(f"{r['gflops']:.1f}" if "gflops" in r else "-")
        cells.append(f"{r['pct_sgemm']:.0f}%" if "pct_sgemm" in r else "-")
        peak = r.get("peak_mib")
        cells.append(" / ".join(f"{k} {v:.0f}" for k, v in peak.items()) if peak else "-")
        lines.append(cells)
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    text = "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in lines)
    notes = [f"- {r['workload']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        text += "\n\nNotes:\n" + "\n".join(notes)
    print(text, file=file)
    return text


def torch_or_none():
    """PyTorch when installed (a contender everywhere), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch
