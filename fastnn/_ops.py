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


# ---------------------------------------------------------------- optim

def _fused_ok(p):
    """True when ``p`` can be updated in place by a fused kernel."""
    return (type(p) is np.ndarray and p.dtype in _FLOATS and p.flags.c_contiguous
            and p.flags.writeable)


def check_param(opt, key, p, g):
    """Validate one (parameter, gradient) pair; return the gradient in the parameter's dtype."""
    check_host(opt, p, g)
    if not isinstance(p, np.ndarray):
        raise TypeError(f"{opt}: params[{key!r}] must be a NumPy array, got {type(p).__name__}")
    if p.dtype not in _FLOATS:
        raise TypeError(f"{opt}: params[{key!r}] has dtype {p.dtype}; parameters are updated "
                        "in place and must be float32 or float64")
    if not p.flags.writeable:
        raise ValueError(f"{opt}: params[{key!r}] is read-only")
    g = np.asarray(g)
    if g.dtype.kind not in "biuf":
        raise TypeError(f"{opt}: grads[{key!r}] has dtype {g.dtype} (use float32 or float64)")
    if g.shape != p.shape:
        raise ValueError(f"{opt}: grads[{key!r}] has shape {g.shape} but params[{key!r}] "
                         f"has shape {p.shape}")
    return g.astype(p.dtype, copy=False)


def sgd_update(p, g, lr):
    if _fused_ok(p):
        _C.sgd_update(p, as_compute(g, p.dtype), lr)
    else:
        p -= lr * g


def momentum_update(p, v, g, lr, momentum):
    if _fused_ok(p):
        _C.momentum_update(p, v, as_compute(g, p.dtype), lr, momentum)
    else:
        v *= momentum
        v -= lr * g
        p += v


def nesterov_update(p, v, g, lr, momentum):
    if _fused_ok(p):
        _C.nesterov_update(p, v, as_compute(g, p.dtype), lr, momentum)
    else:
        v *= momentum
        v -= lr * g
        p += momentum * momentum * v
        p -= (1 + momentum) * lr * g


def adagrad_update(p, h, g, lr, eps):
    if _fused_ok(p):
        _C.adagrad_update(p, h, as_compute(g, p.dtype), lr, eps)
    else:
        h += g * g
        p -= lr * g / (np.sqrt(h) + eps)


def rmsprop_update(p, h, g, lr, decay_rate, eps):
    if _fused_ok(p):
        _C.rmsprop_update(p, h, as_compute(g, p.dtype), lr, decay_rate, eps)
    else:
        h *= decay_rate
        h += (1 - decay_rate) * g * g
        p -= lr * g / (np.sqrt(h) + eps)


def adam_update(p, m, v, g, lr_t, beta1, beta2, eps):
    if _fused_ok(p):
        _C.adam_update(p, m, v, as_compute(g, p.dtype), lr_t, beta1, beta2, eps)
    else:
        m += (1 - beta1) * (g - m)
        v += (1 - beta2) * (g ** 2 - v)
        p -= lr_t * m / (np.sqrt(v) + eps)
