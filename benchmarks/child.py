"""What runs in one benchmark process (started by ``benchmarks.runner``; not for users).

    python -m benchmarks.child run --suite S --workload KEY --contenders fastnn[,reference]
                                   --threads N [--quick] [--data DIR]
    python -m benchmarks.child info --contenders torch --threads N
    python -m benchmarks.child gemm --threads N
    python -m benchmarks.child prepare-epoch --out DIR
    python -m benchmarks.child build --contenders torch --threads N [--suites ...] [--quick]

Each prints one JSON object as the last line of stdout. Only the libraries of the named
contenders are imported: a torch process loads nothing of fastnn, a fastnn process no torch
(``process_info`` reports what was loaded, and the parent checks it).
"""

import argparse
import importlib
import json
import os
import platform
import statistics
import sys

import numpy as np

from benchmarks import ENV_VARS
from benchmarks.harness import compare_samples, gemm_rates, set_threads

SUITES = ["bench_train", "bench_conv", "bench_dense", "bench_rnn", "bench_nlp", "bench_basenn"]


def suite_workloads(suite):
    return importlib.import_module(f"benchmarks.{suite}").workloads()


def find_workload(suite, key):
    for w in suite_workloads(suite):
        if w.key == key:
            return w
    raise KeyError(f"{suite} has no workload {key!r}")


def _blas_libraries():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keep = ("user_api", "internal_api", "version", "num_threads", "threading_layer",
            "architecture")
    return [dict({k: lib.get(k) for k in keep}, file=os.path.basename(lib.get("filepath", "")))
            for lib in threadpool_info()]


def _numpy_blas():
    """NumPy's own BLAS: its build configuration and, at run time, its core type and threads."""
    out = {}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out = {"name": blas.get("name"), "version": blas.get("version"),
               "config": blas.get("openblas configuration")}
    except Exception:  # older NumPy: no dict mode
        pass
    try:
        from threadpoolctl import threadpool_info
        for lib in threadpool_info():
            if "numpy" in lib.get("filepath", ""):
                out.update(architecture=lib.get("architecture"), threads=lib.get("num_threads"))
    except ImportError:
        pass
    return out


def process_info():
    """What this process holds: versions, thread settings, the environment variables that
    change threading, and which of fastnn and torch it has loaded."""
    fastnn_modules = sorted(m for m in sys.modules if m == "fastnn" or m.startswith("fastnn."))
    info = {"pid": os.getpid(), "python": platform.python_version(), "numpy": np.__version__,
            "fastnn_modules": fastnn_modules, "torch_loaded": "torch" in sys.modules,
            "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
            "numpy_blas": _numpy_blas(), "threadpools": _blas_libraries()}
    if "fastnn" in sys.modules:
        fastnn = sys.modules["fastnn"]
        info["fastnn"] = {"version": fastnn.__version__, "threads": fastnn.get_num_threads(),
                          "build_info": fastnn.build_info()}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads(),
                         "parallel_info": torch.__config__.parallel_info()}
    return info


def run(suite, key, contenders, threads, quick, data):
    """Time the workload's contenders in this process (interleaved when several); returns the
    samples in seconds and the process's info."""
    w = find_workload(suite, key)
    set_threads(threads, contenders)
    steps = {c: w.build(c, quick, data) for c in contenders}
    if w.kind == "epoch":
        samples = {c: [steps[c]()] for c in contenders}
    else:
        n, warmup, warmup_time, min_time, budget = w.timing(quick)
        samples = compare_samples(steps, samples=n, warmup=warmup, min_time=min_time,
                                  max_samples=w.max_samples, budget=budget,
                                  warmup_time=warmup_time)
    return {"suite": suite, "workload": key, "contenders": list(contenders),
            "samples": samples,
            "median": {c: statistics.median(s) for c, s in samples.items()},
            "info": process_info()}


def build_all(contenders, threads, quick, suites=None):
    """Build (not time) every workload the contenders take part in, except those needing
    prepared data; returns what was built and the process's info."""
    set_threads(threads, contenders)
    built = []
    for suite in suites or SUITES:
        for w in suite_workloads(suite):
            if w.needs:
                continue
            for c in w.contenders_for(quick):
                if c in contenders:
                    w.build(c, quick, None)
                    built.append(f"{suite}:{w.key}:{c}")
    return {"built": built, "info": process_info()}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.child", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--suite", required=True)
    p.add_argument("--workload", required=True)
    p.add_argument("--contenders", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--data")
    p = sub.add_parser("info")
    p.add_argument("--contenders", required=True)
    p.add_argument("--threads", type=int, required=True)
    p = sub.add_parser("gemm")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repeats", type=int, default=5)
    p = sub.add_parser("prepare-epoch")
    p.add_argument("--out", required=True)
    p = sub.add_parser("build")
    p.add_argument("--contenders", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--suites", nargs="*")
    a = ap.parse_args(argv)

    if a.cmd == "run":
        out = run(a.suite, a.workload, a.contenders.split(","), a.threads, a.quick, a.data)
    elif a.cmd == "info":
        set_threads(a.threads, a.contenders.split(","))
        out = process_info()
    elif a.cmd == "gemm":
        out = gemm_rates(a.threads, repeats=a.repeats)
        out["info"] = process_info()
    elif a.cmd == "prepare-epoch":
        from benchmarks.bench_train import prepare_epoch
        out = {"skipped": prepare_epoch(a.out)}
    else:
        out = build_all(a.contenders.split(","), a.threads, a.quick, a.suites)
    sys.stdout.flush()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
