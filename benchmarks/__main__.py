"""Run every benchmark: `python -m benchmarks [--quick] [--threads N] [--json FILE]`.

Prints one table (ms per contender, fastnn's speed-up over each, GFLOP/s and the share of the
sgemm rate measured at start, peak memory) and writes the rows as JSON.
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
SUITES = ["bench_layers", "bench_train", "bench_rnn", "bench_basenn"]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, a sub-minute run")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for everyone")
    ap.add_argument("--json", default="bench_results/latest.json", help="where to write rows")
    ap.add_argument("--only", nargs="*", help="run only these suites (e.g. bench_layers)")
    args = ap.parse_args(argv)

    import fastnn

    set_threads(args.threads)
    rate = sgemm_gflops()
    print(f"fastnn {fastnn.__version__} | {platform.processor() or platform.machine()} | "
          f"{args.threads} threads | measured sgemm {rate:.1f} GFLOP/s | float32")
    rows = []
    for name in args.only or SUITES:
        mod = importlib.import_module(f"benchmarks.{name}")
        t0 = time.perf_counter()
        rows += mod.run(quick=args.quick)
        print(f"[{name}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr)
    print_table(rows)
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"threads": args.threads, "sgemm_gflops": rate, "rows": rows,
                   "build": {k: v for k, v in fastnn.build_info().items()}}, f, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
