"""Peak memory of a training step, one contender per fresh process.

    python -m benchmarks.memory NET CONTENDER [--steps N] [--threads T] [--dtype float32]

The child builds the network, optimizer and batch (importing only the contender's library),
notes its resident size (VmRSS), runs N steps (the first is the warm-up that allocates
optimizer state and scratch buffers) and prints, as JSON, the growth of the resident
high-water mark (VmHWM) over that size: the extra memory a step needs at its peak. A fresh
process per contender keeps one contender's freed pages and allocator caches from hiding
another's, and starts its own VmHWM (ru_maxrss would not do: Linux carries it over from the
parent through fork and exec).
"""

import argparse
import json
import os

import numpy as np


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def peak_growth_mib(net, contender, steps=10, threads=None):
    """MiB the step of `net` for `contender` adds at its peak, measured in a child process
    started like the benchmarks' own (benchmarks.runner); None when the child fails."""
    from benchmarks.runner import peak_memory

    return peak_memory(net, [contender], threads or os.cpu_count(), steps).get(contender)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    ap.add_argument("net")
    ap.add_argument("contender", choices=["fastnn", "reference", "torch"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args(argv)

    from benchmarks.bench_train import make_step
    from benchmarks.child import process_info
    from benchmarks.harness import set_threads

    set_threads(args.threads, [args.contender])
    step, batch = make_step(args.net, args.contender, np.dtype(args.dtype).type)
    base = _status_kib("VmRSS")
    hwm_before = _status_kib("VmHWM")
    for _ in range(args.steps):
        step(*batch)
    peak = _status_kib("VmHWM")
    print(json.dumps({"net": args.net, "contender": args.contender, "rss_after_setup_mib":
                      base / 1024, "hwm_after_setup_mib": hwm_before / 1024,
                      "peak_growth_mib": max(0, peak - base) / 1024, "info": process_info()},
                     default=str))


if __name__ == "__main__":
    main()
