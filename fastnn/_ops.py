"""Typed Python entry points of the compiled kernels.

Each function here validates in the user's words, decides the compute dtype (NumPy promotion:
float32 with float64 gives float64; ints and bools become float64; complex, object and strings
raise TypeError), makes the arrays C-contiguous in that dtype, and calls one ``_C`` kernel.
Arrays exposing ``__cuda_array_interface__`` (CuPy) are where a CUDA backend plugs in.
"""

import numpy as np

from . import _C

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def compute_dtype(layer, *arrays):
    """The float dtype a kernel computes in, by NumPy's promotion of ``arrays``."""
    dtypes = []
    for a in arrays:
        if a is None:
            continue
        dt = np.asarray(a).dtype if not hasattr(a, "dtype") else np.dtype(a.dtype)
        if dt.kind not in "biuf":
            raise TypeError(f"{layer}: arrays of dtype {dt} are not supported "
                            "(use float32 or float64)")
        dtypes.append(dt)
    dt = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
    if dt in _FLOATS:
        return dt
    if dt.kind == "f" and dt.itemsize < 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_compute(a, dtype):
    """``a`` as a C-contiguous array of ``dtype``; no copy when it already is one."""
    return np.ascontiguousarray(a, dtype=dtype)


def check_host(layer, *arrays):
    """Raise a clear error for device arrays until the CUDA backend handles them."""
    for a in arrays:
        if hasattr(a, "__cuda_array_interface__"):
            raise TypeError(f"{layer}: got a GPU array; this build of fastnn runs on the CPU "
                            "(fastnn.build_info()['cuda'] is False)")


# ---------------------------------------------------------------- activations

def relu_forward(x, layer="Relu"):
    check_host(layer, x)
    x = as_compute(x, compute_dtype(layer, x))
    return _C.relu_forward(x)


def relu_backward(dout, mask, layer="Relu"):
    """The book's Relu.backward: zero dout where x <= 0, in place when dout allows it."""
    check_host(layer, dout)
    dout_arr = np.asarray(dout)
    if dout_arr.shape != mask.shape:
        raise ValueError(f"{layer}.backward: dout has shape {dout_arr.shape} but the forward "
                         f"input had shape {mask.shape}")
    dt = compute_dtype(layer, dout_arr)
    in_place = (isinstance(dout, np.ndarray) and dout.dtype == dt and dout.flags.c_contiguous
                and dout.flags.writeable)
    d = dout if in_place else as_compute(dout_arr, dt)
    if not in_place and d is dout_arr:
        d = d.copy()
    _C.relu_backward(d, mask, d)
    return d


def _unary_forward(kernel, x, layer):
    check_host(layer, x)
    return kernel(as_compute(x, compute_dtype(layer, x)))


def _unary_backward(kernel, dout, y, layer):
    check_host(layer, dout)
    dout = np.asarray(dout)
    if dout.shape != y.shape:
        raise ValueError(f"{layer}.backward: dout has shape {dout.shape} but the forward "
                         f"output had shape {y.shape}")
    dt = compute_dtype(layer, dout, y)
    return kernel(as_compute(dout, dt), as_compute(y, dt), layer)


def sigmoid_forward(x, layer="Sigmoid"):
    return _unary_forward(_C.sigmoid_forward, x, layer)


def sigmoid_backward(dout, y, layer="Sigmoid"):
    return _unary_backward(_C.sigmoid_backward, dout, y, layer)


def tanh_forward(x, layer="Tanh"):
    return _unary_forward(_C.tanh_forward, x, layer)


def tanh_backward(dout, y, layer="Tanh"):
    return _unary_backward(_C.tanh_backward, dout, y, layer)
