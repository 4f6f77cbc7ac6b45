"""fastnn: compiled drop-in replacements for the NumPy layers of *Deep Learning from Scratch*.

Change ``from common.layers import *`` to ``from fastnn.layers import *`` and the same program
runs on C++ kernels (OpenMP + OpenBLAS). ``fastnn.reference`` holds the same classes in plain
NumPy: the readable oracle every kernel is tested against.
"""

# OpenBLAS ships in the PyPI package scipy-openblas32; importing it loads the library with
# RTLD_GLOBAL so that _C (linked with an $ORIGIN-relative rpath) resolves it at import.
import os as _os

import scipy_openblas32 as _openblas  # noqa: F401

# Idle OpenMP workers spin briefly (~20k polls, tens of microseconds), catching the next
# parallel region of a layer sequence, then sleep so they never starve other processes on busy
# cores. OpenBLAS runs no threads of its own (core/blas.h), so nothing of ours competes with
# them. Measured against OMP_WAIT_POLICY=PASSIVE: MLP 784-256-10 step 1.17x faster on 2 cores.
# Read by libgomp when _C loads it; values the user set (or OMP_WAIT_POLICY) win.
_os.environ.setdefault("GOMP_SPINCOUNT", "20000")

from . import _C  # noqa: E402

__version__ = "0.1.0"

__all__ = ["set_num_threads", "get_num_threads", "build_info", "__version__"]


def set_num_threads(n):
    """Set how many threads fastnn's OpenMP kernels and OpenBLAS use (together, never more)."""
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _C.set_num_threads(n)


def get_num_threads():
    """Threads fastnn's kernels use (OpenMP and OpenBLAS share this count)."""
    return _C.get_num_threads()


def build_info():
    """What this build of fastnn links and supports: BLAS, OpenMP version, CUDA, kernel families."""
    info = dict(_C.build_info())
    info["version"] = __version__
    info["blas_config"] = _openblas.get_openblas_config()
    info["num_threads"] = get_num_threads()
    return info


# One thread budget from the start: OpenBLAS otherwise sizes its own pool independently.
_C.set_num_threads(_C.get_num_threads())

# The optional CUDA backend: fastnn.cuda.is_available() / fastnn.cuda.reason().
from . import cuda  # noqa: E402,F401
