"""The parent side: starts one process per contender (or group of contenders) per round,
alternates them, checks what each loaded, and turns their medians into rows.

This module imports neither fastnn nor torch, so the processes it starts inherit nothing of
them: each child gets the environment the user started the benchmarks with
(``benchmarks.ORIGINAL_ENV``), its own interpreter, and loads only its contenders' libraries.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import CHILD_MARKER, ORIGINAL_ENV
from benchmarks.harness import CONTENDERS, row

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# How the contenders of a workload share processes.
ISOLATION = {
    "each": "every contender in its own process",
    "pair": "fastnn and its reference interleaved in one process, torch in its own",
    "none": "all contenders interleaved in one process (torch then runs with fastnn's OpenMP "
            "settings; for comparison only)",
}


# Variables set in every process on top of the user's environment (`--env VAR=VALUE`).
EXTRA_ENV = {}


class ChildError(RuntimeError):
    """A benchmark process failed."""


class IsolationError(RuntimeError):
    """A process loaded a library that its contenders must not have."""


def groups_for(contenders, isolation="each"):
    """The processes of one round: a list of lists of contenders, in table order."""
    contenders = [c for c in CONTENDERS if c in contenders] + \
        [c for c in contenders if c not in CONTENDERS]
    if isolation == "each":
        return [[c] for c in contenders]
    if isolation == "pair":
        own = [c for c in contenders if c in ("fastnn", "reference")]
        return ([own] if own else []) + [[c] for c in contenders if c not in own]
    if isolation == "none":
        return [list(contenders)] if contenders else []
    raise ValueError(f"isolation must be one of {', '.join(ISOLATION)}, got {isolation!r}")


def schedule(groups, rounds):
    """[(round, group), ...]: the groups alternated, A, B, C, A, B, C, ... for `rounds` rounds."""
    return [(r, g) for r in range(rounds) for g in groups]


def _fastnn_home():
    """The folder holding the fastnn package this process would import (found, not imported):
    the source tree after .ci/dev_build.sh, or site-packages after pip install."""
    spec = importlib.util.find_spec("fastnn")
    if spec is None or not spec.origin:
        return None
    return os.path.dirname(os.path.dirname(os.path.abspath(spec.origin)))


def child_env(group):
    """The environment of a process running `group`: the user's, with the fastnn this process
    would import and then the repository (for `benchmarks`) on the path. A process that
    interleaves several contenders also stops NumPy's OpenBLAS threads from spinning after each
    call (they would take the cores of the next contender)."""
    env = dict(ORIGINAL_ENV)
    paths = [_fastnn_home(), ROOT] + ORIGINAL_ENV.get("PYTHONPATH", "").split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    env[CHILD_MARKER] = "1"
    if len(group) > 1:
        env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    env.update(EXTRA_ENV)
    return env


def spawn(args, group=("fastnn",), module="benchmarks.child", parse=True):
    """Run `python -m module *args` in a fresh process; the JSON of its last stdout line (its
    whole stdout when not parse)."""
    # Started outside the repository: `-m` puts the working folder first on the path, where a
    # source tree's fastnn (unbuilt after pip install) would hide the installed one.
    proc = subprocess.run([sys.executable, "-m", module] + [str(a) for a in args],
                          cwd=tempfile.gettempdir(), env=child_env(list(group)),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise ChildError(f"{module} {' '.join(map(str, args))} exited with {proc.returncode}:"
                         f"\n{tail}")
    lines = proc.stdout.strip().splitlines()
    if not parse:
        return proc.stdout
    if not lines:
        raise ChildError(f"{module} {' '.join(map(str, args))} printed nothing")
    return json.loads(lines[-1])


def check_isolation(group, info):
    """Raise IsolationError when a process loaded a library its contenders must not have:
    fastnn (or fastnn.reference, which lives in fastnn's package) in a process without fastnn
    or the reference, torch in one without torch."""
    if not {"fastnn", "reference"} & set(group) and info.get("fastnn_modules"):
        raise IsolationError(f"the process of {'+'.join(group)} imported "
                             f"{', '.join(info['fastnn_modules'][:5])}")
    if "torch" not in group and info.get("torch_loaded"):
        raise IsolationError(f"the process of {'+'.join(group)} imported torch")


def run_workload(w, quick, threads, rounds, isolation="each", data=None, rates=None,
                 available=CONTENDERS, spawner=None, memory=None):
    """One row: every process of every round, alternated; returns (row, {group: info}).
    spawner(args, group) runs one process (default: spawn)."""
    spawner = spawner or spawn
    contenders = w.contenders_for(quick, available)
    groups = groups_for(contenders, isolation)
    seconds = {c: [] for c in contenders}
    counts = {c: [] for c in contenders}
    infos, failed, notes = {}, set(), []
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    for _, group in schedule(groups, rounds):
        name = "+".join(group)
        if name in failed:
            continue
        args = ["run", "--suite", w.suite, "--workload", w.key, "--contenders", ",".join(group),
                "--threads", threads] + (["--quick"] if quick else []) + \
            (["--data", data] if data else [])
        try:
            out = spawner(args, group)
        except ChildError as e:
            failed.add(name)
            notes.append(f"{name} failed: {str(e).splitlines()[-1]}")
            print(e, file=sys.stderr)
            continue
        check_isolation(group, out["info"])
        infos.setdefault(name, out["info"])
        for c in group:
            seconds[c].append(out["median"][c])
            counts[c].append(len(out.get("samples", {}).get(c, ())))
    rate = (rates or {}).get("dgemm" if w.dtype == "float64" else "sgemm")
    note = "; ".join(([w.note] if w.note else []) + notes) or None
    r = row(w.label, seconds, w.flops, rate, w.dtype, note=note, memory=memory)
    r.update({"suite": w.suite, "key": w.key, "kind": w.kind, "rounds": rounds,
              "processes": ["+".join(g) for g in groups], "load": load,
              "samples_per_process": {c: n for c, n in counts.items() if n},
              "wall_s": time.perf_counter() - t0})
    if w.kind == "epoch":
        r["epoch_s"] = {c: v / 1e3 for c, v in r["ms"].items()}
    return r, infos


def peak_memory(net, contenders, threads, steps=10, spawner=None):
    """{contender: MiB} that a training step of `net` adds at its peak, one fresh process per
    contender (benchmarks.memory); a contender whose process fails is left out."""
    spawner = spawner or spawn
    out = {}
    for c in contenders:
        try:
            res = spawner([net, c, "--steps", steps, "--threads", threads], [c],
                          module="benchmarks.memory")
        except ChildError as e:
            print(e, file=sys.stderr)
            continue
        check_isolation([c], res.get("info", {}))
        out[c] = res["peak_growth_mib"]
    return out
