"""Whether fastnn can run its CUDA kernels here: ``is_available()`` and ``reason()``.

With the CUDA build (``FASTNN_CUDA=ON``), the ops take CuPy arrays (anything exposing
``__cuda_array_interface__``) to the kernels of ``csrc/cuda`` (``fastnn/ops/cuda.py``).
"""

import ctypes
import glob
import os

from . import _C

__all__ = ["is_available", "reason"]

_BUILT = bool(_C.build_info()["cuda"])
_reason_cache = None


def _preload_cublas():
    """Load PyPI's nvidia-cublas by path (any install layout), so the kernels' dlopen of
    libcublas.so.N finds it whatever fastnn's own location."""
    try:
        import nvidia
    except ImportError:
        return
    for root in nvidia.__path__:
        for lib in sorted(glob.glob(os.path.join(root, "*", "lib", "libcublas.so.*"))):
            try:
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
                return
            except OSError:
                continue


def reason():
    """'' when CUDA arrays can be used, else why not (not built with CUDA, no CuPy, no device,
    no cuBLAS)."""
    global _reason_cache
    if _reason_cache is None:
        if not _BUILT:
            _reason_cache = ("fastnn was built without CUDA (build it with "
                             "-C cmake.define.FASTNN_CUDA=ON)")
        else:
            try:
                import cupy  # noqa: F401
            except ImportError as e:
                _reason_cache = f"CuPy is not importable ({e}); pip install cupy-cuda13x"
            else:
                _preload_cublas()
                _reason_cache = _C.cuda_unavailable_reason()
    return _reason_cache


def is_available():
    """True when fastnn has CUDA kernels, CuPy imports, and a CUDA device and cuBLAS load."""
    return reason() == ""
