"""Run every benchmark: `python -m benchmarks [--quick] [--threads N] [--json FILE] [--only ...]`.

Suites are named with or without their prefix (`--only gpu` is `--only bench_gpu`); the GPU
suite reports why it is skipped when fastnn cannot use CUDA here.

Prints one table (ms per contender, fastnn's speed-up over each, GFLOP/s and the share of the
sgemm rate measured at start, peak memory of a training step) and writes the rows as JSON.
"""

import argparse
import importlib
import json
import os
import platform
import sys
import time

from benchmarks.harness import print_table, set_threads, sgemm_gflops

# Benchmark modules, each with run(quick) -> list of rows; missing ones are reported, not hidden.
SUITES = ["bench_train", "bench_conv", "bench_dense", "bench_rnn", "bench_basenn", "bench_gpu"]


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, a sub-minute run")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for everyone")
    ap.add_argument("--json", default="bench_results/latest.json", help="where to write rows")
    ap.add_argument("--only", nargs="*", help="run only these suites (e.g. bench_conv or conv)")
    args = ap.parse_args(argv)

    import fastnn

    set_threads(args.threads)
    rate = sgemm_gflops()
    machine = _cpu_model() or platform.machine()
    load = os.getloadavg()
    print(f"fastnn {fastnn.__version__} | {machine}, {os.cpu_count()} cores | "
          f"{args.threads} threads | measured sgemm {rate:.1f} GFLOP/s | float32 | load {load[0]:.1f}"
          + (" | --quick" if args.quick else ""))
    rows = []
    for name in args.only or SUITES:
        name = name if name.startswith("bench_") else f"bench_{name}"
        mod = importlib.import_module(f"benchmarks.{name}")
        t0 = time.perf_counter()
        rows += mod.run(quick=args.quick)
        print(f"[{name}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr)
    print_table(rows)
    load_end = os.getloadavg()
    print(f"load average at start {load[0]:.1f}, at end {load_end[0]:.1f}")
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"threads": args.threads, "sgemm_gflops": rate, "rows": rows,
                   "machine": machine, "cores": os.cpu_count(), "quick": args.quick,
                   "load": [load[0], load_end[0]], "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                         time.gmtime()),
                   "build": {k: v for k, v in fastnn.build_info().items()}}, f, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
