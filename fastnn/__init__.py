"""fastnn: compiled drop-in replacements for the NumPy layers of *Deep Learning from Scratch*.

Change ``from common.layers import *`` to ``from fastnn.layers import *`` and the same program
runs on C++ kernels (OpenMP + OpenBLAS). ``fastnn.reference`` holds the same classes in plain
NumPy: the readable oracle every kernel is tested against.
"""

# OpenBLAS ships in the PyPI package scipy-openblas32; importing it loads the library with
# RTLD_GLOBAL so that _C (linked with an $ORIGIN-relative rpath) resolves it at import.
import os as _os

import scipy_openblas32 as _openblas  # noqa: F401

# Idle OpenMP workers sleep instead of spinning: on few busy cores a spinning worker takes the
# core from the threads that have work (other processes, NumPy's BLAS); docs/performance.md
# has the measurements. Read by libgomp when it loads: import fastnn
# before torch, whose own libgomp.so.1 fastnn otherwise shares with torch's settings. A value
# the user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")



def _check_cpu(cpuinfo="/proc/cpuinfo"):
    """A portable build's module code is compiled for x86-64-v2: say so on an older CPU, where
    loading _C would otherwise end the process with "Illegal instruction"."""
    try:
        from . import _cpu_requirements as req
    except ImportError:  # an in-place development build
        return
    if not req.FLAGS or not _os.path.exists(cpuinfo):
        return
    with open(cpuinfo) as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")),
                     None)
    missing = [x for x in req.FLAGS if flags is not None and x not in flags]
    if missing:
        raise ImportError(f"fastnn needs an {req.NAME} CPU; this one lacks {', '.join(missing)}. "
                          "Build fastnn from source for it: pip install . -C "
                          "cmake.define.FASTNN_NATIVE=ON")


_check_cpu()

try:
    from . import _C  # noqa: E402
except ImportError:
    if _os.path.exists(_os.path.join(_os.path.dirname(__file__), "..", "pyproject.toml")) and \
            not any(n.startswith("_C.") for n in _os.listdir(_os.path.dirname(__file__))):
        raise ImportError(
            f"fastnn is imported from its source tree ({_os.path.dirname(__file__)}), where the "
            "compiled module fastnn._C has not been built. Install fastnn (pip install .) and "
            "run from another folder, or build it in place with .ci/dev_build.sh.") from None
    raise

__version__ = "0.1.0"

__all__ = ["set_num_threads", "get_num_threads", "build_info", "buffer_cache",
           "release_buffers", "__version__"]


def set_num_threads(n):
    """Set how many threads fastnn's OpenMP kernels and OpenBLAS use (together, never more).

    In a child process made by ``fork()`` (``multiprocessing``'s default start method on Linux)
    fastnn uses one thread whatever n is: GNU OpenMP's threads do not survive a fork, and a
    parallel region in the child would wait for them forever.

    n is at most 4 per processor and at most 1024 (``build_info()['max_threads']``): the kernels
    are compute-bound, so more threads than cores only add switching, and every thread reserves
    a stack. Larger n raises ValueError; RuntimeError when the system cannot start n threads
    (memory or process limits), with the thread count left as it was.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    cap = _C.max_num_threads()
    if n > cap:
        raise ValueError(f"set_num_threads: n must be at most {cap} (4 threads per processor, "
                         f"at most 1024), got {n}")
    _C.set_num_threads(n)


def get_num_threads():
    """Threads fastnn's kernels use (OpenMP and OpenBLAS share this count)."""
    return _C.get_num_threads()


def build_info():
    """What this build of fastnn links and supports: BLAS, OpenMP version, CUDA, kernel families,
    and the CPU kernels' instruction-set levels: ``cpu_levels_compiled`` (baseline, avx2, avx512
    on x86-64), ``cpu_level_detected`` (the highest this CPU supports) and ``cpu_level`` (the one
    in use: the highest compiled level the CPU supports, at most ``$FASTNN_CPU``), and
    ``distributed``: mpi4py, the MPI library, rank and size, and how GPU gradients are reduced
    (``fastnn.distributed``)."""
    info = dict(_C.build_info())
    info["version"] = __version__
    info["blas_config"] = _openblas.get_openblas_config()
    info["num_threads"] = get_num_threads()
    info["max_threads"] = _C.max_num_threads()
    from . import distributed
    info["distributed"] = distributed.info()
    return info


def buffer_cache(limit_bytes=None):
    """The cache of freed kernel outputs: ``{'idle_bytes', 'limit_bytes', 'min_bytes'}``.

    Arrays of at least ``min_bytes`` that fastnn's kernels return take their memory from this
    cache and give it back when freed, so a training loop reuses the same memory every step
    instead of faulting fresh pages in. At most ``limit_bytes`` (256 MiB by default) stay idle;
    ``buffer_cache(limit_bytes=n)`` sets that limit (0 turns the cache off) and frees what
    exceeds it.
    """
    if limit_bytes is not None:
        limit_bytes = int(limit_bytes)
        if limit_bytes < 0:
            raise ValueError(f"buffer_cache: limit_bytes must be >= 0, got {limit_bytes}")
        _C.set_buffer_cache_limit(limit_bytes)
    return dict(_C.buffer_cache_info())


def release_buffers():
    """Free every idle buffer of the cache (see ``buffer_cache``) back to the system."""
    _C.release_buffers()


def _initial_threads():
    """One thread budget from the start (OpenBLAS otherwise sizes its own pool independently):
    OpenMP's default, i.e. OMP_NUM_THREADS or the processors. A count above the cap is clamped
    and one the system cannot start falls back to 1, each with a warning, so that the import
    never fails or crashes over a thread count."""
    import warnings

    asked = _os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    cap = _C.max_num_threads()
    if asked.isdigit() and int(asked) > cap:
        warnings.warn(f"fastnn: OMP_NUM_THREADS={asked} is more than the {cap} threads fastnn "
                      f"allows (4 threads per processor, at most 1024); using {cap}",
                      RuntimeWarning, stacklevel=3)
    try:
        _C.set_num_threads(_C.get_num_threads())  # OpenMP's default, capped
    except RuntimeError as e:
        warnings.warn(f"fastnn: {e}; using 1 thread", RuntimeWarning, stacklevel=3)
        _C.set_num_threads(1)


_initial_threads()

# The optional CUDA backend: fastnn.cuda.is_available() / fastnn.cuda.reason().
from . import cuda  # noqa: E402,F401
