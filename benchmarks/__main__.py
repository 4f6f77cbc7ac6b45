"""Run every benchmark: `python -m benchmarks [--quick] [--threads N] [--json FILE] [--only ...]`.

Every contender of a workload (fastnn, fastnn.reference, PyTorch) runs in its own process, in
the state a user would have (PyTorch's process loads nothing of fastnn, fastnn's no torch),
with the same thread count; the processes are alternated (A, B, C, A, B, C, ...) over --rounds
rounds, and each cell is the median over rounds with its min-max. `--isolation pair` times
fastnn and its reference interleaved in one process instead (torch still alone).

Suites are named with or without their prefix (`--only conv` is `--only bench_conv`); the GPU
suite reports why it is skipped when fastnn cannot use CUDA here, the MPI suite (bench_mpi:
allreduce per step, 1 rank x 2 threads against 2 ranks x 1 thread) when MPI is not installed.

Prints the tables, float32 and float64 (ms per contender, fastnn's speed-up over each,
fastnn's GFLOP/s and its share of the best sgemm or dgemm rate measured during the run, peak
memory of a training step), and writes the rows, the machine, the versions and the load as JSON.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

from benchmarks import ORIGINAL_ENV
from benchmarks.child import SUITES as CPU_SUITES
from benchmarks.child import suite_workloads
from benchmarks.harness import CONTENDERS, print_table, torch_available
from benchmarks import runner
from benchmarks.runner import ISOLATION, ChildError, peak_memory, run_workload, spawn

SUITES = CPU_SUITES + ["bench_gpu", "bench_mpi"]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(processes):
    """Library versions and configurations, as the contenders' processes reported them."""
    out = {"python": platform.python_version()}
    for info in processes.values():
        out.setdefault("numpy", info.get("numpy"))
        if info.get("numpy_blas"):
            out.setdefault("numpy_blas", info["numpy_blas"])
        if "fastnn" in info:
            b = info["fastnn"]["build_info"]
            out.setdefault("fastnn", info["fastnn"]["version"])
            out.setdefault("fastnn_cpu_level", b.get("cpu_level"))
            out.setdefault("fastnn_blas_config", b.get("blas_config"))
            out.setdefault("fastnn_build_info", b)
        if "torch" in info:
            out.setdefault("torch", info["torch"]["version"])
    return out


def gemm_rates(threads, when):
    """{'sgemm', 'dgemm': GFLOP/s, 'when': when}, measured in a process of their own."""
    out = spawn(["gemm", "--threads", threads], ["gemm"])
    return {"sgemm": out["sgemm"], "dgemm": out["dgemm"], "when": when,
            "load": os.getloadavg()[0]}


def _gpu_rows(quick):
    """bench_gpu in a process of its own (fastnn on CuPy and PyTorch CUDA interleaved there)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gpu.json")
        args = ["--json", path] + (["--quick"] if quick else [])
        try:
            spawn(args, ("fastnn", "torch"), module="benchmarks.bench_gpu", parse=False)
            with open(path) as f:
                rows = json.load(f)["rows"]
        except ChildError as e:
            rows = [{"workload": "GPU suite (bench_gpu)", "ms": {}, "note": f"failed: {e}"}]
    for r in rows:
        r["suite"] = "bench_gpu"
    return rows


def _mpi_rows(quick):
    """bench_mpi in a process of its own (it starts its mpiexec runs from there); rows that say
    "MPI not installed" when mpi4py or mpiexec is missing."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mpi.json")
        args = ["--json", path] + (["--quick"] if quick else [])
        try:
            spawn(args, ("fastnn",), module="benchmarks.bench_mpi", parse=False)
            with open(path) as f:
                return json.load(f)["rows"]
        except ChildError as e:
            return [{"workload": "MPI suite (bench_mpi)", "suite": "bench_mpi", "ms": {},
                     "note": f"failed: {e}"}]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="2 rounds, 2 short samples per process, the reference left out at "
                         "the big shapes, 8 steps of the epoch")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for everyone")
    ap.add_argument("--rounds", type=int, default=None,
                    help="processes per contender and workload, alternated (default 3; 2 with "
                         "--quick)")
    ap.add_argument("--isolation", choices=list(ISOLATION), default="each",
                    help="; ".join(f"{k}: {v}" for k, v in ISOLATION.items()))
    ap.add_argument("--json", default="bench_results/latest.json", help="where to write rows")
    ap.add_argument("--only", nargs="*",
                    help="run only these suites (e.g. bench_conv or conv), or workloads of a "
                         "suite (conv:conv_simple,conv_simple_f64)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    ap.add_argument("--env", action="append", default=[], metavar="VAR=VALUE",
                    help="set VAR in every contender's process (e.g. OMP_WAIT_POLICY=PASSIVE "
                         "to see each library with sleeping idle threads); recorded in the JSON")
    args = ap.parse_args(argv)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 3
    if args.rounds < 1 or args.threads < 1:
        ap.error("--rounds and --threads must be at least 1")
    extra_env = {}
    for item in args.env:
        var, sep, value = item.partition("=")
        if not sep or not var:
            ap.error(f"--env takes VAR=VALUE, got {item!r}")
        extra_env[var] = value
    runner.EXTRA_ENV.clear()
    runner.EXTRA_ENV.update(extra_env)
    keys = {}
    for item in args.only or SUITES:
        suite, _, wanted = item.partition(":")
        suite = suite if suite.startswith("bench_") else f"bench_{suite}"
        if suite not in SUITES:
            ap.error(f"unknown suite {suite}; choose from {', '.join(SUITES)}")
        if wanted:
            keys.setdefault(suite, set()).update(wanted.split(","))
        else:
            keys[suite] = None
    suites = list(keys)
    plan = {}
    for suite in suites:
        if suite in ("bench_gpu", "bench_mpi"):
            continue
        workloads = suite_workloads(suite)
        if keys[suite] is not None:
            unknown = keys[suite] - {w.key for w in workloads}
            if unknown:
                ap.error(f"{suite} has no workload {', '.join(sorted(unknown))}; it has "
                         f"{', '.join(w.key for w in workloads)}")
            workloads = [w for w in workloads if w.key in keys[suite]]
        plan[suite] = workloads

    available = [c for c in CONTENDERS if c != "torch" or torch_available()]
    started = time.time()
    load_start = os.getloadavg()
    machine = cpu_model()
    rates = [gemm_rates(args.threads, "start")]
    rates_start = rates[0]
    print(f"{machine}, {os.cpu_count()} cores | {args.threads} threads | sgemm "
          f"{rates_start['sgemm']:.1f}, dgemm {rates_start['dgemm']:.1f} GFLOP/s | load average "
          f"{load_start[0]:.1f} {load_start[1]:.1f} {load_start[2]:.1f} | {args.rounds} rounds, "
          f"{ISOLATION[args.isolation]}" + (" | --quick" if args.quick else "")
          + "".join(f" | {k}={v}" for k, v in extra_env.items()), flush=True)

    rows, processes = [], {}
    tmp = tempfile.TemporaryDirectory(prefix="fastnn-bench-")
    data, data_skip = None, None
    try:
        for suite in suites:
            t_suite = time.perf_counter()
            if suite in ("bench_gpu", "bench_mpi"):
                rows += _gpu_rows(args.quick) if suite == "bench_gpu" else _mpi_rows(args.quick)
                print(f"[{suite}: {time.perf_counter() - t_suite:.1f} s]", file=sys.stderr)
                continue
            for w in plan[suite]:
                if w.needs == "epoch_data" and data is None and data_skip is None:
                    data_skip = spawn(["prepare-epoch", "--out", tmp.name], ["fastnn"])["skipped"]
                    data = None if data_skip else tmp.name
                if w.needs and data is None:
                    rows.append({"workload": w.label, "suite": suite, "key": w.key, "ms": {},
                                 "dtype": w.dtype, "note": f"skipped: {data_skip}"})
                    continue
                memory = None
                if w.memory and not args.no_memory:
                    memory = peak_memory(w.memory, w.contenders_for(args.quick, available),
                                         args.threads, steps=3 if args.quick else 10)
                r, infos = run_workload(w, args.quick, args.threads, args.rounds,
                                        args.isolation, data, None, available,
                                        memory=memory)
                rows.append(r)
                for k, v in infos.items():
                    processes.setdefault(k, v)
                print(f"[{suite} {w.key}: {r['wall_s']:.1f} s, load {r['load']:.1f}]",
                      file=sys.stderr, flush=True)
            print(f"[{suite}: {time.perf_counter() - t_suite:.1f} s]", file=sys.stderr)
            rates.append(gemm_rates(args.threads, f"after {suite}"))
    finally:
        tmp.cleanup()
    load_end = os.getloadavg()
    # The machine's GEMM rate is what its least disturbed measurement shows: on a shared machine
    # a single measurement at start can catch other work and halve it.
    best = {k: max(r[k] for r in rates) for k in ("sgemm", "dgemm")}
    for r in rows:
        if "gflops" in r and r.get("suite") != "bench_gpu":
            gemm = "dgemm" if r.get("dtype") == "float64" else "sgemm"
            r[f"pct_{gemm}"] = 100.0 * r["gflops"] / best[gemm]

    gpu = [r for r in rows if r.get("suite") == "bench_gpu"]
    mpi = [r for r in rows if r.get("suite") == "bench_mpi"]
    cpu32 = [r for r in rows if r not in gpu + mpi and r.get("dtype", "float32") == "float32"]
    cpu64 = [r for r in rows if r not in gpu + mpi and r.get("dtype") == "float64"]
    tables = {}
    for title, part in (("float32", cpu32), ("float64", cpu64), ("GPU", gpu), ("MPI", mpi)):
        if part:
            print(f"\n{title}\n")
            tables[title] = print_table(part, gemm_columns=part is cpu32 or part is cpu64)
    loads = [r["load"] for r in rows if "load" in r]
    print(f"\nload average (1 min) at start {load_start[0]:.1f}, at end {load_end[0]:.1f}"
          + (f", {min(loads):.1f}-{max(loads):.1f} at the rows' starts" if loads else "")
          + f"; sgemm {best['sgemm']:.1f}, dgemm {best['dgemm']:.1f} GFLOP/s (best of "
          f"{len(rates)} measurements: sgemm {min(r['sgemm'] for r in rates):.1f}-"
          f"{best['sgemm']:.1f}, dgemm {min(r['dgemm'] for r in rates):.1f}-{best['dgemm']:.1f})")

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "wall_s": time.time() - started,
        "machine": {"cpu": machine, "cores": os.cpu_count(), "platform": platform.platform()},
        "threads": args.threads, "rounds": args.rounds, "quick": args.quick,
        "isolation": args.isolation, "isolation_text": ISOLATION[args.isolation],
        "suites": suites, "command": " ".join(["python -m benchmarks"] + list(argv or
                                                                          sys.argv[1:])),
        "gemm_gflops": rates, "sgemm_gflops": best["sgemm"], "dgemm_gflops": best["dgemm"],
        "load": {"start": list(load_start), "end": list(load_end)},
        "env": {k: ORIGINAL_ENV[k] for k in sorted(ORIGINAL_ENV)
                if k.startswith(("OMP_", "GOMP_", "OPENBLAS_", "MKL_", "FASTNN_"))},
        "env_override": extra_env,
        "versions": versions(processes),
        "processes": processes,
        "rows": rows,
        "tables": tables,
    }
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
