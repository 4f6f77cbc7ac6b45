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


# ---------------------------------------------------------------- im2col, convolution, pooling
# Geometry of a sliding window (the book's names): x (N, C, H, W), window FH x FW (filter or
# pool), stride, pad; output OH = (H + 2*pad - FH) // stride + 1, likewise OW.

import operator  # noqa: E402


def _as_int(layer, name, value):
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{layer}: {name} must be an integer, got {value!r}") from None


def check_window(layer, FH, FW, stride, pad):
    """Validated (FH, FW, stride, pad) as ints: window >= 1x1, stride >= 1, pad >= 0."""
    FH, FW = _as_int(layer, "window height", FH), _as_int(layer, "window width", FW)
    stride, pad = _as_int(layer, "stride", stride), _as_int(layer, "pad", pad)
    if FH < 1 or FW < 1:
        raise ValueError(f"{layer}: window size must be at least 1x1, got {FH}x{FW}")
    if stride < 1:
        raise ValueError(f"{layer}: stride must be >= 1, got {stride}")
    if pad < 0:
        raise ValueError(f"{layer}: pad must be >= 0, got {pad}")
    return FH, FW, stride, pad


def _shape_error(layer, msg, **arrays):
    shapes = ", ".join(f"{k}.shape={tuple(v)}" for k, v in arrays.items())
    return ValueError(f"{layer}: {msg} ({shapes})")


def _check_images(layer, x, FH, FW, pad, **shapes):
    """x must be 4-D (N, C, H, W) and hold the FH x FW window once padded."""
    shapes = {"x": x.shape, **shapes}
    if x.ndim != 4:
        raise _shape_error(layer, f"x must be 4-D (N, C, H, W), got {x.ndim}-D", **shapes)
    H, W = x.shape[2], x.shape[3]
    if FH > H + 2 * pad or FW > W + 2 * pad:
        raise _shape_error(layer, f"window {FH}x{FW} is larger than the padded input "
                           f"{H + 2 * pad}x{W + 2 * pad} with pad={pad}", **shapes)


def _check_shape(layer, what, shape):
    shape = tuple(int(d) for d in shape)
    if len(shape) != 4 or any(d < 0 for d in shape):
        raise ValueError(f"{layer}: {what} must be (N, C, H, W), got {shape}")
    return shape


def im2col(x, FH, FW, stride=1, pad=0, layer="im2col"):
    """x (N, C, H, W) -> col (N*OH*OW, C*FH*FW), the book's layout; padding reads as 0."""
    check_host(layer, x)
    FH, FW, stride, pad = check_window(layer, FH, FW, stride, pad)
    x = np.asarray(x)
    _check_images(layer, x, FH, FW, pad)
    return _C.im2col(as_compute(x, compute_dtype(layer, x)), FH, FW, stride, pad)


def col2im(col, input_shape, FH, FW, stride=1, pad=0, layer="col2im"):
    """col (N*OH*OW, C*FH*FW) -> (N, C, H, W), summing the entries that share a pixel."""
    check_host(layer, col)
    FH, FW, stride, pad = check_window(layer, FH, FW, stride, pad)
    N, C, H, W = _check_shape(layer, "input_shape", input_shape)
    col = np.asarray(col)
    if FH > H + 2 * pad or FW > W + 2 * pad:
        raise ValueError(f"{layer}: window {FH}x{FW} is larger than the padded input "
                         f"{H + 2 * pad}x{W + 2 * pad} with pad={pad} (input_shape={(N, C, H, W)})")
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    if col.shape != (N * OH * OW, C * FH * FW):
        raise ValueError(f"{layer}: col has shape {col.shape} but input_shape "
                         f"{(N, C, H, W)} with a {FH}x{FW} window, stride {stride}, pad {pad} "
                         f"needs {(N * OH * OW, C * FH * FW)}")
    return _C.col2im(as_compute(col, compute_dtype(layer, col)), [N, C, H, W], FH, FW, stride,
                     pad)


def _conv_checks(layer, x, W, b, stride, pad):
    """Validated (x, W, b, stride, pad) of a convolution, x/W/b as arrays."""
    check_host(layer, x, W, b)
    x, W = np.asarray(x), np.asarray(W)
    shapes = {"x": x.shape, "W": W.shape}
    if W.ndim != 4:
        raise _shape_error(layer, f"W must be 4-D (FN, C, FH, FW), got {W.ndim}-D", **shapes)
    FN, C, FH, FW = W.shape
    _, _, stride, pad = check_window(layer, FH, FW, stride, pad)
    _check_images(layer, x, FH, FW, pad, W=W.shape)
    if x.shape[1] != C:
        raise _shape_error(layer, f"x has {x.shape[1]} channels but W expects {C}", **shapes)
    if b is not None:
        b = np.asarray(b)
        if b.size != FN or b.ndim > 2 or (b.ndim == 2 and b.shape[0] != 1):
            raise _shape_error(layer, f"b must have FN={FN} elements, shape ({FN},)",
                               b=b.shape, **shapes)
    return x, W, b, stride, pad


def conv2d_forward(x, W, b, stride=1, pad=0, layer="Convolution"):
    """out (N, FN, OH, OW) = convolution of x (N, C, H, W) with W (FN, C, FH, FW), plus b (FN,).

    Computes in NumPy's promotion of x, W and b (float32 images with float64 weights: float64).
    """
    x, W, b, stride, pad = _conv_checks(layer, x, W, b, stride, pad)
    dt = compute_dtype(layer, x, W, b)
    bc = None if b is None else as_compute(b, dt).reshape(-1)
    return _C.conv2d_forward(as_compute(x, dt), as_compute(W, dt), bc, stride, pad)


def conv2d_backward(dout, x, W, b=None, stride=1, pad=0, layer="Convolution"):
    """(dx, dW, db) of conv2d_forward for dout (N, FN, OH, OW), in the promotion of all inputs."""
    x, W, b, stride, pad = _conv_checks(layer, x, W, b, stride, pad)
    check_host(layer, dout)
    dout = np.asarray(dout)
    FN, _, FH, FW = W.shape
    N, _, H, Wd = x.shape
    expected = (N, FN, (H + 2 * pad - FH) // stride + 1, (Wd + 2 * pad - FW) // stride + 1)
    if dout.shape != expected:
        raise ValueError(f"{layer}.backward: dout has shape {dout.shape} but the forward output "
                         f"had shape {expected}")
    dt = compute_dtype(layer, dout, x, W, b)
    return _C.conv2d_backward(as_compute(dout, dt), as_compute(x, dt), as_compute(W, dt), stride,
                              pad)


def _pool_checks(layer, x, pool_h, pool_w, stride, pad):
    check_host(layer, x)
    FH, FW, stride, pad = check_window(layer, pool_h, pool_w, stride, pad)
    x = np.asarray(x)
    _check_images(layer, x, FH, FW, pad)
    return x, FH, FW, stride, pad


def _pool_dout(layer, dout, x_shape, FH, FW, stride, pad):
    check_host(layer, dout)
    FH, FW, stride, pad = check_window(layer, FH, FW, stride, pad)
    N, C, H, W = _check_shape(layer, "x_shape", x_shape)
    dout = np.asarray(dout)
    expected = (N, C, (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1)
    if dout.shape != expected:
        raise ValueError(f"{layer}.backward: dout has shape {dout.shape} but the forward output "
                         f"had shape {expected}")
    return as_compute(dout, compute_dtype(layer, dout)), [N, C, H, W], FH, FW, stride, pad


def maxpool2d_forward(x, pool_h, pool_w, stride=1, pad=0, layer="Pooling"):
    """(out, arg): max over each window (padding counts as -inf, NaN propagates like np.max)
    and the window-local index fh*pool_w + fw of each maximum, both (N, C, OH, OW); arg is int32.
    """
    x, FH, FW, stride, pad = _pool_checks(layer, x, pool_h, pool_w, stride, pad)
    return _C.maxpool2d_forward(as_compute(x, compute_dtype(layer, x)), FH, FW, stride, pad)


def maxpool2d_backward(dout, arg, x_shape, pool_h, pool_w, stride=1, pad=0, layer="Pooling"):
    """dx of shape x_shape: each dout routed to its window's argmax (overlaps add up)."""
    dout, shape, FH, FW, stride, pad = _pool_dout(layer, dout, x_shape, pool_h, pool_w, stride,
                                                  pad)
    arg = np.asarray(arg)
    if arg.shape != dout.shape:
        raise ValueError(f"{layer}.backward: arg has shape {arg.shape} but dout has shape "
                         f"{dout.shape}")
    return _C.maxpool2d_backward(dout, np.ascontiguousarray(arg, dtype=np.int32), shape, FH, FW,
                                 stride, pad)


def avgpool2d_forward(x, pool_h, pool_w, stride=1, pad=0, layer="AvgPooling"):
    """Mean of each window, padding counted as zeros (divisor always pool_h*pool_w)."""
    x, FH, FW, stride, pad = _pool_checks(layer, x, pool_h, pool_w, stride, pad)
    return _C.avgpool2d_forward(as_compute(x, compute_dtype(layer, x)), FH, FW, stride, pad)


def avgpool2d_backward(dout, x_shape, pool_h, pool_w, stride=1, pad=0, layer="AvgPooling"):
    """dx of shape x_shape: each pixel gets dout / (pool_h*pool_w) from every window over it."""
    dout, shape, FH, FW, stride, pad = _pool_dout(layer, dout, x_shape, pool_h, pool_w, stride,
                                                  pad)
    return _C.avgpool2d_backward(dout, shape, FH, FW, stride, pad)
