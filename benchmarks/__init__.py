"""fastnn benchmarks: `python -m benchmarks [--quick] [--json FILE]`."""

import os



def _initial_environment():
    """The environment this process was started with: on Linux /proc/self/environ, which
    settings made since (``import fastnn`` sets OMP_WAIT_POLICY, the line below
    OPENBLAS_THREAD_TIMEOUT) do not change; elsewhere os.environ as it is now."""
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return dict(os.environ)
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env or dict(os.environ)


# The environment as the user gave it: what each contender's own process starts with
# (benchmarks.runner), so that it runs in the state a user would have, even when this process
# has imported fastnn.
ORIGINAL_ENV = _initial_environment()
# Set in the processes benchmarks.runner starts: they keep the environment they were given.
CHILD_MARKER = "FASTNN_BENCH_CHILD"
# Variables that change how the contenders' threads behave, recorded with every process.
ENV_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "OMP_PROC_BIND",
            "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "MKL_NUM_THREADS", "FASTNN_CPU")

# In-process tools (gemm_floor, memory run by hand, bench_gpu) time several contenders in one
# process. NumPy's OpenBLAS threads spin for ~0.1 s after every call (OpenBLAS's default thread
# timeout, 2^28 cycles): measured 0.107 s of CPU during a 0.2 s sleep after three 512^3
# matmuls, none with this setting; in a process that interleaves contenders, that spin takes
# the cores from whichever contender runs after the reference. Read when NumPy loads OpenBLAS,
# so set before. A process of one contender keeps the user's setting (none by default).
if os.environ.get(CHILD_MARKER) != "1":
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
