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
    """Raise a clear error for device arrays where no CUDA kernel takes them: a CPU-only build,
    or an op that has a CPU kernel only (the builder's ReLU6, SiLU and norms)."""
    for a in arrays:
        if hasattr(a, "__cuda_array_interface__"):
            if _C.build_info()["cuda"]:
                raise TypeError(f"{layer}: got a GPU array; this op runs on the CPU only (pass "
                                "NumPy arrays, e.g. cupy.asnumpy(x))")
            raise TypeError(f"{layer}: got a GPU array; this build of fastnn runs on the CPU "
                            "(fastnn.build_info()['cuda'] is False)")


def array_module(layer, *arrays):
    """``cupy`` when any of ``arrays`` is a device array (exposes ``__cuda_array_interface__``),
    else ``numpy``: layers make their state and outputs with it, so that they live where their
    inputs do. Device arrays without usable CUDA raise the TypeError of fastnn.cuda."""
    if _on_device(*arrays):
        from . import cuda
        return cuda._cupy(layer)
    return np


def _shape_error(layer, what, **arrays):
    """ValueError naming the layer, the problem and the shapes (arrays or shape tuples)."""
    shapes = ", ".join(f"{k}.shape={tuple(v.shape) if hasattr(v, 'shape') else tuple(v)}"
                       for k, v in arrays.items())
    return ValueError(f"{layer}: {what} ({shapes})")


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


def relu6_forward(x, layer="ReLU6"):
    """min(max(x, 0), 6) (MobileNet's activation); NaN passes through."""
    return _unary_forward(_C.relu6_forward, x, layer)


def relu6_backward(dout, y, layer="ReLU6"):
    """dout where the forward output y is strictly between 0 and 6, else 0."""
    return _unary_backward(_C.relu6_backward, dout, y, layer)


def silu_forward(x, layer="SiLU"):
    """x * sigmoid(x)."""
    return _unary_forward(_C.silu_forward, x, layer)


def silu_backward(dout, x, layer="SiLU"):
    """dout * s * (1 + x * (1 - s)), s = sigmoid(x), from the forward input x."""
    check_host(layer, dout)
    dout = np.asarray(dout)
    if dout.shape != x.shape:
        raise ValueError(f"{layer}.backward: dout has shape {dout.shape} but the forward "
                         f"input had shape {x.shape}")
    dt = compute_dtype(layer, dout, x)
    return _C.silu_backward(as_compute(dout, dt), as_compute(x, dt), layer)


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


def check_conv_shapes(layer, x, W, b, stride, pad, groups):
    """Validated (stride, pad, groups) of a convolution of x (N, C, H, W) with W
    (FN, C // groups, FH, FW) and b (FN,) or None; the arrays need only .shape/.ndim/.size."""
    shapes = {"x": x.shape, "W": W.shape}
    if W.ndim != 4:
        raise _shape_error(layer, f"W must be 4-D (FN, C, FH, FW), got {W.ndim}-D", **shapes)
    FN, C, FH, FW = W.shape
    _, _, stride, pad = check_window(layer, FH, FW, stride, pad)
    _check_images(layer, x, FH, FW, pad, W=W.shape)
    groups = _as_int(layer, "groups", groups)
    if groups < 1:
        raise ValueError(f"{layer}: groups must be >= 1, got {groups}")
    if FN % groups:
        raise _shape_error(layer, f"FN={FN} filters do not split into groups={groups}", **shapes)
    if x.shape[1] != C * groups:
        per_group = f" per group x groups={groups}" if groups > 1 else ""
        raise _shape_error(layer, f"x has {x.shape[1]} channels but W expects {C}{per_group}",
                           **shapes)
    if b is not None and (b.size != FN or b.ndim > 2 or (b.ndim == 2 and b.shape[0] != 1)):
        raise _shape_error(layer, f"b must have FN={FN} elements, shape ({FN},)", b=b.shape,
                           **shapes)
    return stride, pad, groups


def _conv_checks(layer, x, W, b, stride, pad, groups):
    """Validated (x, W, b, stride, pad, groups) of a convolution, x/W/b as NumPy arrays."""
    check_host(layer, x, W, b)
    x, W = np.asarray(x), np.asarray(W)
    b = None if b is None else np.asarray(b)
    return (x, W, b) + check_conv_shapes(layer, x, W, b, stride, pad, groups)


def conv2d_forward(x, W, b, stride=1, pad=0, layer="Convolution", groups=1):
    """out (N, FN, OH, OW) = convolution of x (N, C, H, W) with W (FN, C // groups, FH, FW), plus
    b (FN,). With groups > 1, filter group g (FN // groups filters) sees channel group g only;
    groups = C is a depthwise convolution.

    Computes in NumPy's promotion of x, W and b (float32 images with float64 weights: float64).
    """
    x, W, b, stride, pad, groups = _conv_checks(layer, x, W, b, stride, pad, groups)
    dt = compute_dtype(layer, x, W, b)
    bc = None if b is None else as_compute(b, dt).reshape(-1)
    return _C.conv2d_forward(as_compute(x, dt), as_compute(W, dt), bc, stride, pad, groups)


def conv2d_backward(dout, x, W, b=None, stride=1, pad=0, layer="Convolution", need_dx=True,
                    groups=1):
    """(dx, dW, db) of conv2d_forward for dout (N, FN, OH, OW), in the promotion of all inputs;
    dx is None (not computed) when need_dx is false."""
    x, W, b, stride, pad, groups = _conv_checks(layer, x, W, b, stride, pad, groups)
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
                              pad, need_dx, groups)


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

# ---------------------------------------------------------------- affine, softmax, batchnorm
# (dense layers: fastnn.layers Affine / SoftmaxWithLoss / BatchNormalization, and the vol. 2
# time layers that reshape to 2-D and call these)

def flatten_batch(layer, x):
    """``x`` (N, ...) viewed as (N, D) with D the product of the other axes (the book's
    ``x.reshape(x.shape[0], -1)``, which also works for an empty batch here)."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{layer}: x must have a batch axis, got a scalar")
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))


def affine_forward(x, W, b, layer="Affine"):
    """out = x.reshape(N, -1) @ W + b, shape (N, M), in the promoted dtype of x, W, b."""
    check_host(layer, x, W, b)
    x2, W, b = flatten_batch(layer, x), np.asarray(W), np.asarray(b)
    dt = compute_dtype(layer, x2, W, b)
    if W.ndim != 2 or b.ndim != 1:
        raise _shape_error(layer, "W must be 2-D (D, M) and b 1-D (M,)", W=W, b=b)
    if x2.shape[1] != W.shape[0]:
        raise _shape_error(layer, f"x has {x2.shape[1]} features per sample but W expects "
                           f"{W.shape[0]}", x=x, W=W)
    if b.shape[0] != W.shape[1]:
        raise _shape_error(layer, f"b has length {b.shape[0]} but W has {W.shape[1]} columns",
                           W=W, b=b)
    Wk, W_trans = _affine_weights(W, dt)
    return _C.affine_forward(as_compute(x2, dt), Wk, as_compute(b, dt), W_trans)


def _affine_weights(W, dt):
    """(array for the kernel, W_trans): a transposed view of a C-contiguous array (the book's
    tied weights, TimeAffine(embed_W.T, b)) goes as that array, read in place; anything else as
    a C-contiguous copy in dt when it is not one already."""
    if W.dtype == dt and not W.flags.c_contiguous and W.T.flags.c_contiguous and W.size:
        return W.T, True
    return as_compute(W, dt), False


def affine_backward(dout, x, W, layer="Affine", need_dx=True):
    """(dx, dW, db) of out = x.reshape(N, -1) @ W + b; dx has x's shape, or is None (not
    computed) when need_dx is false. Each result has the dtype NumPy gives the book's
    expression (dout @ W.T, x.T @ dout, dout.sum(axis=0))."""
    check_host(layer, dout, x, W)
    x = np.asarray(x)
    x2, W, dout = flatten_batch(layer, x), np.asarray(W), np.asarray(dout)
    dt = compute_dtype(layer, dout, x2, W)
    if W.ndim != 2 or x2.shape[1] != W.shape[0]:
        raise _shape_error(layer + ".backward", "x and W do not match", x=x, W=W)
    expected = (x2.shape[0], W.shape[1])
    if dout.shape != expected:
        raise ValueError(f"{layer}.backward: dout has shape {dout.shape} but the forward output "
                         f"had shape {expected}")
    Wk, W_trans = _affine_weights(W, dt)
    dx, dW, db = _C.affine_backward(as_compute(dout, dt), as_compute(x2, dt), Wk, need_dx,
                                    W_trans)
    if W_trans:
        dW = dW.T  # computed as dW^T (M, D): a view laid out like W
    if dx is not None:
        dx = dx.reshape(x.shape).astype(compute_dtype(layer, dout, W), copy=False)
    return (dx,
            dW.astype(compute_dtype(layer, x2, dout), copy=False),
            db.astype(compute_dtype(layer, dout), copy=False))


def softmax(x, layer="softmax"):
    """Softmax over the last axis (max-subtracted), in x's float dtype."""
    check_host(layer, x)
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{layer}: x must have at least one axis, got a scalar")
    return _C.softmax_forward(as_compute(x, compute_dtype(layer, x)))


def _labels(layer, t, y_shape):
    """Class indices (int64, (N,)) and the dense targets (or None) for a batch y of y_shape.
    t of y's shape is one-hot (or soft) and its labels are argmax(t, axis=1), as in the book;
    otherwise t holds one integer label per sample."""
    t = np.asarray(t)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"{layer}: labels t of dtype {t.dtype} are not supported")
    if t.shape == y_shape and t.ndim == 2:
        return np.ascontiguousarray(np.argmax(t, axis=1), dtype=np.int64), t
    if t.dtype.kind not in "iu":
        raise TypeError(f"{layer}: integer labels t must have an integer dtype, got {t.dtype} "
                        f"(t.shape={t.shape}; one-hot t must have y's shape {y_shape})")
    if t.ndim != 1 or t.shape[0] != y_shape[0]:
        raise ValueError(f"{layer}: got {t.size} labels for a batch of {y_shape[0]} with "
                         f"{y_shape[1]} classes (t.shape={t.shape}, x.shape={y_shape}); t must "
                         f"have shape ({y_shape[0]},) or {y_shape}")
    if t.dtype == np.uint64 and t.size and t.max() > np.iinfo(np.int64).max:
        raise IndexError(f"{layer}: label {t.max()} is out of range for {y_shape[1]} classes")
    # Exactly C-contiguous int64: pybind11 would otherwise pick an overload by converting x.
    return np.ascontiguousarray(t, dtype=np.int64), None


def _count(t, ignore_label):
    return t.shape[0] if ignore_label is None else int(np.count_nonzero(t != ignore_label))


def softmax_cross_entropy_forward(x, t, eps=1e-7, ignore_label=None, layer="SoftmaxWithLoss"):
    """(y, loss) for logits x (N, C): y = softmax(x) and
    loss = -sum log(y[i, t_i] + eps) / (number of samples whose label is not ignore_label).
    t: integer labels (N,) or one-hot (N, C) (labels = argmax, as the book does). The book's
    vol. 1 uses eps=1e-7; vol. 2's TimeSoftmaxWithLoss uses eps=0 and ignore_label=-1.
    The loss is a NumPy scalar of y's dtype; NaN when no sample counts (an empty batch)."""
    check_host(layer, x, t)
    x = np.asarray(x)
    dt = compute_dtype(layer, x)
    if x.ndim != 2:
        raise ValueError(f"{layer}: expected x of shape (N, C), got x.shape={x.shape}")
    labels, _ = _labels(layer, t, x.shape)
    y, total, count = _C.softmax_cross_entropy_forward(as_compute(x, dt), labels, float(eps),
                                                       ignore_label, layer)
    return y, dt.type(total / count if count else np.nan)


def _scalar_dout(layer, dout):
    d = np.asarray(dout)
    if d.dtype.kind not in "biuf":
        raise TypeError(f"{layer}.backward: dout of dtype {d.dtype} is not supported")
    if d.size != 1:
        raise ValueError(f"{layer}.backward: the loss is a scalar, so dout must be one number; "
                         f"got dout.shape={d.shape}")
    return float(d.reshape(()))


def softmax_cross_entropy_backward(y, t, dout=1, ignore_label=None, out=None,
                                   layer="SoftmaxWithLoss"):
    """dx = (y - t) * dout / count for the y of the forward (N, C): count = samples not ignored
    (N without ignore_label), rows with ignore_label get 0. t as in the forward; with dense t
    the difference uses t itself (dtype NumPy's promotion of y and t). out: an array of y's
    shape and dtype (y itself is allowed) to write dx into, for integer labels."""
    check_host(layer, y, t)
    y = np.asarray(y)
    if y.ndim != 2:
        raise ValueError(f"{layer}.backward: expected y of shape (N, C), got y.shape={y.shape}")
    d = _scalar_dout(layer, dout)
    labels, dense = _labels(layer, t, y.shape)
    count = _count(labels, ignore_label)
    scale = d / count if count else np.nan
    if dense is not None and ignore_label is None:
        if out is not None:
            raise ValueError(f"{layer}.backward: out= needs integer labels, not one-hot t")
        dt = compute_dtype(layer, y, dense)
        return _C.softmax_cross_entropy_backward_dense(as_compute(y, dt), as_compute(dense, dt),
                                                       scale, layer)
    dt = compute_dtype(layer, y)
    if out is not None and (not isinstance(out, np.ndarray) or out.dtype != dt
                            or out.shape != y.shape or not out.flags.c_contiguous
                            or not out.flags.writeable):
        raise ValueError(f"{layer}.backward: out must be a writeable C-contiguous {dt} array "
                         f"of shape {y.shape}")
    return _C.softmax_cross_entropy_backward(as_compute(y, dt), labels, scale, ignore_label, out,
                                             layer)


BATCHNORM_EPS = 10e-7  # the book's constant inside sqrt(var + 10e-7), i.e. 1e-6


def _batchnorm_x(layer, x):
    x = np.asarray(x)
    if x.ndim not in (2, 4):
        raise ValueError(f"{layer}: x must be 2-D (N, D) or 4-D (N, C, H, W), "
                         f"got x.shape={x.shape}")
    return flatten_batch(layer, x)


def _batchnorm_params(layer, D, x_shape, **params):
    for name, p in params.items():
        if np.shape(p) != (D,):
            raise ValueError(f"{layer}: {name}.shape={np.shape(p)} but x has {D} features per "
                             f"sample (x.shape={x_shape}; 4-D x is normalised per C*H*W "
                             f"feature, as in the book)")


def _batchnorm_inputs(layer, x, gamma, beta, running_mean, running_var):
    """Checked (x, x as (N, D), running_mean, running_var, compute dtype); None running
    averages become float64 zeros, as the book starts them."""
    check_host(layer, x, gamma, beta, running_mean, running_var)
    x = np.asarray(x)
    x2 = _batchnorm_x(layer, x)
    D = x2.shape[1]
    if running_mean is None:
        running_mean = np.zeros(D)
    if running_var is None:
        running_var = np.zeros(D)
    _batchnorm_params(layer, D, x.shape, gamma=gamma, beta=beta, running_mean=running_mean,
                      running_var=running_var)
    dt = compute_dtype(layer, x2, gamma, beta, running_mean, running_var)
    return x, x2, running_mean, running_var, dt


def batchnorm_forward_train(x, gamma, beta, running_mean=None, running_var=None, momentum=0.9,
                            eps=BATCHNORM_EPS, layer="BatchNormalization"):
    """Training forward over x (N, D) or (N, C, H, W) (flattened to (N, C*H*W) as the book
    does). Returns (out (x.shape), xc (N, D), xn (N, D), std (D,), running_mean, running_var)
    with the running averages as new arrays (None starts them at float64 zeros, as the book).
    An empty batch leaves the running averages unchanged."""
    x, x2, running_mean, running_var, dt = _batchnorm_inputs(layer, x, gamma, beta,
                                                            running_mean, running_var)
    out, xc, xn, std, rm, rv = _C.batchnorm_forward_train(
        as_compute(x2, dt), as_compute(gamma, dt), as_compute(beta, dt),
        as_compute(running_mean, dt), as_compute(running_var, dt), float(momentum), float(eps))
    out = out.reshape(x.shape).astype(compute_dtype(layer, x2, gamma, beta), copy=False)
    xdt = compute_dtype(layer, x2)  # the book's xc, xn, std have x's (float) dtype
    xc, xn, std = (a.astype(xdt, copy=False) for a in (xc, xn, std))
    rm = rm.astype(compute_dtype(layer, running_mean, x2), copy=False)
    rv = rv.astype(compute_dtype(layer, running_var, x2), copy=False)
    return out, xc, xn, std, rm, rv


def batchnorm_forward_infer(x, gamma, beta, running_mean=None, running_var=None,
                            eps=BATCHNORM_EPS, layer="BatchNormalization"):
    """Inference forward: gamma * (x - running_mean) / sqrt(running_var + eps) + beta, shape of
    x (2-D or 4-D as in training); None running averages are zeros, as the book."""
    x, x2, running_mean, running_var, dt = _batchnorm_inputs(layer, x, gamma, beta,
                                                            running_mean, running_var)
    out = _C.batchnorm_forward_infer(as_compute(x2, dt), as_compute(gamma, dt),
                                     as_compute(beta, dt), as_compute(running_mean, dt),
                                     as_compute(running_var, dt), float(eps))
    return out.reshape(x.shape)


def batchnorm_backward(dout, gamma, xc, xn, std, layer="BatchNormalization"):
    """(dx (dout.shape), dgamma (D,), dbeta (D,)) from the training forward's xc, xn, std;
    dout has the forward's output shape (flattened to (N, D) like x)."""
    check_host(layer, dout, gamma)
    dout = np.asarray(dout)
    xc = np.asarray(xc)
    if dout.ndim not in (2, 4) or dout.shape[0] != xc.shape[0] or \
            int(np.prod(dout.shape[1:], dtype=np.int64)) != xc.shape[1]:
        raise ValueError(f"{layer}.backward: dout has shape {dout.shape} but the forward "
                         f"input was {xc.shape} once flattened")
    d2 = flatten_batch(layer, dout)
    _batchnorm_params(layer + ".backward", d2.shape[1], dout.shape, gamma=gamma)
    dt = compute_dtype(layer, d2, gamma, xc, xn, std)
    dx, dgamma, dbeta = _C.batchnorm_backward(as_compute(d2, dt), as_compute(gamma, dt),
                                              as_compute(xc, dt), as_compute(xn, dt),
                                              as_compute(std, dt))
    return dx.reshape(dout.shape), dgamma, dbeta


# Per-channel normalization of x (N, C, ...): channel axis 1, the axes after it (H, W or a
# length L, or none) flattened to S, so the kernels see (N, C, S).

def _channels_view(layer, x):
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{layer}: x must be (N, C, ...) with channels on axis 1, got "
                         f"x.shape={x.shape}")
    return x.reshape(x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64)))


def _channel_params(layer, C, **params):
    for name, p in params.items():
        if np.shape(p) != (C,):
            raise ValueError(f"{layer}: {name}.shape={np.shape(p)} but x has {C} channels")


def channel_batchnorm_forward(x, gamma, beta, eps, layer="BatchNorm"):
    """Batch norm per channel of x (N, C, ...) in training: statistics of channel c over the
    batch and the spatial axes. Returns (out (x.shape), xn (x.shape), mean (C,), var (C,),
    inv_std (C,)); var is biased, inv_std = 1 / sqrt(var + eps)."""
    check_host(layer, x, gamma, beta)
    x3 = _channels_view(layer, x)
    C = x3.shape[1]
    _channel_params(layer, C, gamma=gamma, beta=beta)
    dt = compute_dtype(layer, x3, gamma, beta)
    out, xn, mean, var, inv_std = _C.channel_batchnorm_forward(
        as_compute(x3, dt), as_compute(gamma, dt), as_compute(beta, dt), float(eps))
    shape = np.shape(x)
    return out.reshape(shape), xn.reshape(shape), mean, var, inv_std


def channel_batchnorm_backward(dout, xn, gamma, inv_std, layer="BatchNorm"):
    """(dx, dgamma, dbeta) of channel_batchnorm_forward from its xn and inv_std."""
    check_host(layer, dout)
    dout = np.asarray(dout)
    if dout.shape != xn.shape:
        raise ValueError(f"{layer}.backward: dout has shape {dout.shape} but the forward "
                         f"output had shape {xn.shape}")
    d3 = _channels_view(layer, dout)
    dt = compute_dtype(layer, d3, xn, gamma)
    dx, dgamma, dbeta = _C.channel_batchnorm_backward(
        as_compute(d3, dt), as_compute(_channels_view(layer, xn), dt), as_compute(gamma, dt),
        as_compute(inv_std, dt))
    return dx.reshape(dout.shape), dgamma, dbeta


def channel_affine(x, scale, shift, layer="BatchNorm"):
    """scale[c] * x + shift[c] over channel axis 1 of x (N, C, ...)."""
    check_host(layer, x, scale, shift)
    x3 = _channels_view(layer, x)
    _channel_params(layer, x3.shape[1], scale=scale, shift=shift)
    dt = compute_dtype(layer, x3, scale, shift)
    out = _C.channel_affine(as_compute(x3, dt), as_compute(scale, dt), as_compute(shift, dt))
    return out.reshape(np.shape(x))


def _groups(layer, C, groups):
    groups = _as_int(layer, "groups", groups)
    if groups < 1 or C % groups:
        raise ValueError(f"{layer}: {C} channels do not split into {groups} groups")
    return groups


def group_norm_forward(x, gamma, beta, groups, eps=1e-5, layer="GroupNorm"):
    """Group norm of x (N, C, ...): per sample, statistics over each group of C / groups
    consecutive channels and the spatial axes (biased variance), then gamma[c] * xn + beta[c].
    Returns (out (x.shape), xn (x.shape), inv_std (N, groups))."""
    check_host(layer, x, gamma, beta)
    x3 = _channels_view(layer, x)
    N, C = x3.shape[:2]
    groups = _groups(layer, C, groups)
    _channel_params(layer, C, gamma=gamma, beta=beta)
    dt = compute_dtype(layer, x3, gamma, beta)
    out, xn, inv_std = _C.group_norm_forward(as_compute(x3, dt), as_compute(gamma, dt),
                                             as_compute(beta, dt), groups, float(eps))
    shape = np.shape(x)
    return out.reshape(shape), xn.reshape(shape), inv_std.reshape(N, groups)


def group_norm_backward(dout, xn, gamma, inv_std, groups, layer="GroupNorm"):
    """(dx, dgamma, dbeta) of group_norm_forward from its xn and inv_std."""
    check_host(layer, dout)
    dout = np.asarray(dout)
    if dout.shape != xn.shape:
        raise ValueError(f"{layer}.backward: dout has shape {dout.shape} but the forward "
                         f"output had shape {xn.shape}")
    d3 = _channels_view(layer, dout)
    groups = _groups(layer, d3.shape[1], groups)
    dt = compute_dtype(layer, d3, xn, gamma)
    dx, dgamma, dbeta = _C.group_norm_backward(
        as_compute(d3, dt), as_compute(_channels_view(layer, xn), dt), as_compute(gamma, dt),
        as_compute(np.ravel(inv_std), dt), groups)
    return dx.reshape(dout.shape), dgamma, dbeta


# ---------------------------------------------------------------- optim

def _fused_ok(p, *state):
    """True when ``p`` and its optimizer ``state`` can be updated in place by a fused kernel:
    C-contiguous writeable NumPy arrays of one float dtype (the kernels refuse anything else,
    which they could only update as a temporary copy)."""
    return all(type(a) is np.ndarray and a.dtype == p.dtype and a.flags.c_contiguous
               and a.flags.writeable for a in (p, *state)) and p.dtype in _FLOATS


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
    if _fused_ok(p, v):
        _C.momentum_update(p, v, as_compute(g, p.dtype), lr, momentum)
    else:
        v *= momentum
        v -= lr * g
        p += v


def nesterov_update(p, v, g, lr, momentum):
    if _fused_ok(p, v):
        _C.nesterov_update(p, v, as_compute(g, p.dtype), lr, momentum)
    else:
        v *= momentum
        v -= lr * g
        p += momentum * momentum * v
        p -= (1 + momentum) * lr * g


def adagrad_update(p, h, g, lr, eps):
    if _fused_ok(p, h):
        _C.adagrad_update(p, h, as_compute(g, p.dtype), lr, eps)
    else:
        h += g * g
        p -= lr * g / (np.sqrt(h) + eps)


def rmsprop_update(p, h, g, lr, decay_rate, eps):
    if _fused_ok(p, h):
        _C.rmsprop_update(p, h, as_compute(g, p.dtype), lr, decay_rate, eps)
    else:
        h *= decay_rate
        h += (1 - decay_rate) * g * g
        p -= lr * g / (np.sqrt(h) + eps)


def adam_update(p, m, v, g, lr_t, beta1, beta2, eps):
    if _fused_ok(p, m, v):
        _C.adam_update(p, m, v, as_compute(g, p.dtype), lr_t, beta1, beta2, eps)
    else:
        m += (1 - beta1) * (g - m)
        v += (1 - beta2) * (g ** 2 - v)
        p -= lr_t * m / (np.sqrt(v) + eps)


# ---------------------------------------------------------------- recurrent (rnn, lstm, gru)
# Sequences are time-major (T, N, D). torch_layout=False: the book's Wx (D, gH), Wh (H, gH) and
# gate orders (LSTM f, g, i, o; GRU z, r, n); True: torch.nn's weight_ih (gH, D), weight_hh
# (gH, H), LSTM i, f, g, o and GRU r, z, n (see csrc/cpu/rnn.h).

def _recurrent_arrays(layer, arrays):
    """Promote ``arrays`` (a dict, None entries kept) to one compute dtype, C-contiguous."""
    check_host(layer, *[a for a in arrays.values() if a is not None])
    dt = compute_dtype(layer, *arrays.values())
    return dt, {k: None if a is None else as_compute(a, dt) for k, a in arrays.items()}


def _check_sequence(layer, x, Wx, D_axis, h0=None, H=None, c0=None, C=None):
    """Clear errors for a time-major x against Wx and the initial states."""
    if x.ndim != 3:
        raise ValueError(f"{layer}: expected a 3-D (T, N, D) sequence, got shape {x.shape}")
    if x.shape[2] != Wx.shape[D_axis]:
        raise ValueError(f"{layer}: input has {x.shape[2]} features but the weights expect "
                         f"{Wx.shape[D_axis]} (x.shape={x.shape}, Wx.shape={Wx.shape})")
    N = x.shape[1]
    if h0 is not None and h0.shape != (N, H):
        raise ValueError(f"{layer}: h0 has shape {h0.shape} but ({N}, {H}) was expected "
                         f"for a batch of {N}")
    if c0 is not None and c0.shape != (N, C):
        raise ValueError(f"{layer}: c0 has shape {c0.shape} but ({N}, {C}) was expected "
                         f"for a batch of {N}")


def rnn_forward(x, h0, Wx, Wh, b, relu=False, torch_layout=False, layer="RNN"):
    """Elman RNN over a sequence: returns hs (T, N, H)."""
    _, a = _recurrent_arrays(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b))
    _check_sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"], a["Wh"].shape[1])
    return _C.rnn_forward(a["x"], a["h0"], a["Wx"], a["Wh"], a["b"], relu, torch_layout)


def rnn_backward(x, h0, Wx, Wh, hs, dhs, dhn, relu=False, torch_layout=False, layer="RNN"):
    """Returns (dx, dh0, dWx, dWh, db) given the gradients on hs and on the final state."""
    _, a = _recurrent_arrays(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, hs=hs, dhs=dhs, dhn=dhn))
    return _C.rnn_backward(a["x"], a["h0"], a["Wx"], a["Wh"], a["hs"], a["dhs"], a["dhn"], relu,
                           torch_layout)


def lstm_forward(x, h0, c0, Wx, Wh, b, Whr=None, torch_layout=False, layer="LSTM"):
    """LSTM over a sequence: returns (hs, cs, gates, hfull); hfull is None without Whr."""
    _, a = _recurrent_arrays(layer, dict(x=x, h0=h0, c0=c0, Wx=Wx, Wh=Wh, b=b, Whr=Whr))
    H = a["Wh"].shape[0 if torch_layout else 1] // 4
    P = H if Whr is None else a["Whr"].shape[0]
    _check_sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"], P, a["c0"], H)
    return _C.lstm_forward(a["x"], a["h0"], a["c0"], a["Wx"], a["Wh"], a["b"], a["Whr"],
                           torch_layout)


def lstm_backward(x, h0, c0, Wx, Wh, Whr, hs, cs, gates, hfull, dhs, dhn, dcn,
                  torch_layout=False, layer="LSTM"):
    """Returns (dx, dh0, dc0, dWx, dWh, db, dWhr); dWhr is None without Whr."""
    _, a = _recurrent_arrays(layer, dict(x=x, h0=h0, c0=c0, Wx=Wx, Wh=Wh, Whr=Whr, hs=hs, cs=cs,
                                          gates=gates, hfull=hfull, dhs=dhs, dhn=dhn, dcn=dcn))
    return _C.lstm_backward(a["x"], a["h0"], a["c0"], a["Wx"], a["Wh"], a["Whr"], a["hs"],
                            a["cs"], a["gates"], a["hfull"], a["dhs"], a["dhn"], a["dcn"],
                            torch_layout)


def gru_forward(x, h0, Wx, Wh, bx, bh=None, torch_layout=False, layer="GRU"):
    """GRU over a sequence: returns (hs, gates, aux) (aux is what backward needs)."""
    _, a = _recurrent_arrays(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, bx=bx, bh=bh))
    H = a["Wh"].shape[0 if torch_layout else 1] // 3
    _check_sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"], H)
    return _C.gru_forward(a["x"], a["h0"], a["Wx"], a["Wh"], a["bx"], a["bh"], torch_layout)


def gru_backward(x, h0, Wx, Wh, hs, gates, aux, dhs, dhn, torch_layout=False, layer="GRU"):
    """Returns (dx, dh0, dWx, dWh, dbx, dbh); dbh is None in the book's layout."""
    _, a = _recurrent_arrays(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, hs=hs, gates=gates, aux=aux,
                                          dhs=dhs, dhn=dhn))
    return _C.gru_backward(a["x"], a["h0"], a["Wx"], a["Wh"], a["hs"], a["gates"], a["aux"],
                           a["dhs"], a["dhn"], torch_layout)


# ---------------------------------------------------------------- embedding, attention (vol. 2)
# Word ids index the rows of an embedding matrix W (V, D). The ops take NumPy arrays to the
# kernels; device arrays (CuPy) run the same NumPy expressions on CuPy, as the book's code does
# with `import cupy as np` (np.add.at needs CuPy >= 12.1).

_INT64_MAX = np.iinfo(np.int64).max


def _word_ids(layer, idx):
    """idx (any shape) as C-contiguous int64; IndexError for ids that are not integers (as
    NumPy's indexing says) and for uint64 ids past int64 (out of bounds for any W)."""
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise IndexError(f"{layer}: word ids must be integers, got an array of dtype "
                         f"{idx.dtype} (idx.shape={idx.shape})")
    if idx.dtype == np.uint64 and idx.size and idx.max() > _INT64_MAX:
        raise IndexError(f"{layer}: index {idx.max()} is out of bounds for W")
    return np.asarray(idx, dtype=np.int64, order="C")  # 0-d stays 0-d


def _check_ids_host(layer, ids, V):
    """The kernels' bounds check, for the paths that index with NumPy."""
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise IndexError(f"{layer}: index {bad} is out of bounds for W with {V} rows (word ids "
                         f"must lie in [0, {V}))")


def _shape(a):
    return tuple(a.shape) if hasattr(a, "shape") else np.shape(a)


def _embedding_matrix(layer, W, name="W"):
    shape = _shape(W)
    if len(shape) != 2:
        raise ValueError(f"{layer}: {name} must be 2-D (V, D), got {name}.shape={shape}")
    return shape


def embedding_forward(W, idx, layer="Embedding"):
    """out = W[idx] for word ids idx of any integer shape: shape idx.shape + (D,), W's dtype.
    Ids outside [0, V) (negative ones included) raise IndexError."""
    _embedding_matrix(layer, W)
    if _on_device(W, idx):
        return W[idx]
    W = np.asarray(W)
    ids = _word_ids(layer, idx)
    if W.dtype not in _FLOATS:
        compute_dtype(layer, W)  # TypeError for complex, object, strings
        _check_ids_host(layer, ids, W.shape[0])
        return W[ids]
    out = _C.embedding_forward(as_compute(W, W.dtype), ids.reshape(-1), layer)
    return out.reshape(ids.shape + (W.shape[1],))


def _check_dout(layer, dout, expected):
    shape = _shape(dout)
    if shape != tuple(expected):
        raise ValueError(f"{layer}.backward: dout has shape {shape} but the forward output had "
                         f"shape {tuple(expected)}")


def _writes_in_place(a, dt):
    return (type(a) is np.ndarray and a.dtype == dt and a.flags.c_contiguous
            and a.flags.writeable)


def embedding_backward(dW, idx, dout, layer="Embedding"):
    """The book's Embedding.backward: ``dW[...] = 0; np.add.at(dW, idx, dout)``, in place
    (repeated ids add up, in the order NumPy adds them); returns dW. dout has shape
    idx.shape + (D,) and is cast to dW's dtype, as np.add.at does."""
    V, D = _embedding_matrix(layer + ".backward", dW, "dW")
    if _on_device(dW, idx, dout):
        _check_dout(layer, dout, _shape(idx) + (D,))
        dW[...] = 0
        np.add.at(dW, idx, dout)
        return dW
    ids = _word_ids(layer, idx)
    _check_dout(layer, dout, ids.shape + (D,))
    compute_dtype(layer, dW, dout)
    if isinstance(dW, np.ndarray) and dW.dtype in _FLOATS and _writes_in_place(dW, dW.dtype):
        _C.embedding_backward(dW, ids.reshape(-1), as_compute(dout, dW.dtype).reshape(-1, D),
                              layer)
        return dW
    _check_ids_host(layer, ids, V)
    dW[...] = 0
    np.add.at(dW, ids, dout)
    return dW


def _embedding_dot_args(layer, W, idx, h):
    V, D = _embedding_matrix(layer, W)
    h_shape, idx_shape = _shape(h), _shape(idx)
    if len(idx_shape) != 1 or h_shape != (idx_shape[0], D):
        raise ValueError(f"{layer}: expected idx of shape (N,) and h of shape (N, {D}) for W of "
                         f"shape {(V, D)}, got idx.shape={idx_shape}, h.shape={h_shape}")
    return V, D


def embedding_dot_forward(W, idx, h, layer="EmbeddingDot"):
    """Negative sampling's score: out (N,) = sum(W[idx] * h, axis=1) for ids idx (N,) and
    h (N, D), in NumPy's promotion of W and h. Nothing (N, D) is kept: the backward reads W."""
    _embedding_dot_args(layer, W, idx, h)
    if _on_device(W, idx, h):
        return (W[idx] * h).sum(axis=1)
    ids = _word_ids(layer, idx)
    dt = compute_dtype(layer, W, h)
    return _C.embedding_dot_forward(as_compute(W, dt), ids, as_compute(h, dt), layer)


def embedding_dot_backward(dW, idx, h, dout, W, layer="EmbeddingDot"):
    """The book's EmbeddingDot.backward for dout (N,): dW (its Embedding's grad, updated in
    place) = 0 then np.add.at(dW, idx, dout[:, None] * h); returns dh = dout[:, None] * W[idx]
    (W as it is now: the book keeps W[idx] from the forward, the same unless W is edited in
    place between forward and backward)."""
    V, D = _embedding_dot_args(layer + ".backward", W, idx, h)
    _embedding_matrix(layer + ".backward", dW, "dW")
    if _shape(dW) != (V, D):
        raise ValueError(f"{layer}.backward: dW.shape={_shape(dW)} differs from "
                         f"W.shape={(V, D)}")
    _check_dout(layer, dout, _shape(idx)[:1])
    if _on_device(dW, idx, h, dout, W):
        d = dout.reshape(-1, 1)
        dW[...] = 0
        np.add.at(dW, idx, d * h)
        return d * W[idx]
    ids = _word_ids(layer, idx)
    dt = compute_dtype(layer, W, h, dout)
    args = [as_compute(a, dt) for a in (h, dout)]
    if _writes_in_place(dW, dt):
        return _C.embedding_dot_backward(as_compute(W, dt), dW, ids, *args, layer)
    tmp = np.empty((V, D), dtype=dt)  # dW of another dtype or layout: written once after
    dh = _C.embedding_dot_backward(as_compute(W, dt), tmp, ids, *args, layer)
    dW[...] = tmp
    return dh


def _attention_args(layer, hs_enc, hs_dec):
    enc, dec = _shape(hs_enc), _shape(hs_dec)
    shapes = dict(hs_enc=enc, hs_dec=dec)
    if len(enc) != 3 or len(dec) != 3:
        raise _shape_error(layer, "hs_enc must be 3-D (N, Te, H) and hs_dec 3-D (N, Td, H)",
                           **shapes)
    if enc[0] != dec[0]:
        raise _shape_error(layer, f"hs_enc has a batch of {enc[0]} but hs_dec of {dec[0]}",
                           **shapes)
    if enc[2] != dec[2]:
        raise _shape_error(layer, f"hs_enc has hidden size {enc[2]} but hs_dec has {dec[2]}",
                           **shapes)
    return enc, dec


def _attention_xp(xp, hs_enc, hs_dec):
    """The same computation in NumPy-style array code (for device arrays)."""
    s = xp.matmul(hs_dec, hs_enc.transpose(0, 2, 1))
    if s.shape[2]:
        s = xp.exp(s - s.max(axis=2, keepdims=True))
        s /= s.sum(axis=2, keepdims=True)
    return xp.matmul(s, hs_enc), s


def attention_forward(hs_enc, hs_dec, layer="TimeAttention"):
    """The book's TimeAttention forward over every decoder step at once, for encoder states
    hs_enc (N, Te, H) and decoder states hs_dec (N, Td, H): returns (out (N, Td, H),
    a (N, Td, Te)) with a[:, t] = softmax over Te of sum(hs_enc * hs_dec[:, t, None], axis=2)
    (AttentionWeight) and out[:, t] = sum(hs_enc * a[:, t, :, None], axis=1) (WeightSum)."""
    _attention_args(layer, hs_enc, hs_dec)
    if _on_device(hs_enc, hs_dec):
        return _attention_xp(array_module(layer, hs_enc, hs_dec), hs_enc, hs_dec)
    dt = compute_dtype(layer, hs_enc, hs_dec)
    return _C.attention_forward(as_compute(hs_enc, dt), as_compute(hs_dec, dt))


def attention_backward(hs_enc, hs_dec, a, dout, layer="TimeAttention"):
    """(dhs_enc, dhs_dec) of attention_forward for dout (N, Td, H) and the forward's a: the
    book's per-step AttentionWeight and WeightSum backward, dhs_enc summed over the decoder
    steps as its TimeAttention does."""
    enc, dec = _attention_args(layer + ".backward", hs_enc, hs_dec)
    N, Te, _ = enc
    _check_dout(layer, dout, dec)
    a_shape = _shape(a)
    if a_shape != (N, dec[1], Te):
        raise ValueError(f"{layer}.backward: a has shape {a_shape} but the forward gave "
                         f"{(N, dec[1], Te)}")
    if _on_device(hs_enc, hs_dec, a, dout):
        xp = array_module(layer, hs_enc, hs_dec, a, dout)
        da = xp.matmul(dout, hs_enc.transpose(0, 2, 1))
        ds = a * (da - (a * da).sum(axis=2, keepdims=True))
        dhs_enc = xp.matmul(a.transpose(0, 2, 1), dout) + xp.matmul(ds.transpose(0, 2, 1),
                                                                     hs_dec)
        return dhs_enc, xp.matmul(ds, hs_enc)
    dt = compute_dtype(layer, hs_enc, hs_dec, a, dout)
    return _C.attention_backward(*(as_compute(x, dt) for x in (hs_enc, hs_dec, a, dout)))


# ---------------------------------------------------------------- CUDA dispatch
# With the CUDA build (FASTNN_CUDA=ON), these entry points send calls that involve an array
# exposing __cuda_array_interface__ (CuPy) to the function of the same name in fastnn.cuda;
# NumPy calls run the CPU code above unchanged. CPU-only builds skip this: check_host keeps
# raising its TypeError for device arrays.
_CUDA_OPS = (
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "tanh_forward",
    "tanh_backward", "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    "flatten_batch", "affine_forward", "affine_backward", "softmax",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "batchnorm_forward_train", "batchnorm_forward_infer", "batchnorm_backward", "check_param",
    "sgd_update", "momentum_update", "nesterov_update", "adagrad_update", "rmsprop_update",
    "adam_update",
)
_CUDA_OPS += ("rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
              "gru_backward")


def _on_device(*arrays):
    for a in arrays:  # a plain loop: this runs on every call of a dispatched op
        if hasattr(a, "__cuda_array_interface__"):
            return True
    return False


def _dispatching(name, host):
    def op(*args, **kwargs):
        if _on_device(*args, *kwargs.values()):
            from . import cuda
            return getattr(cuda, name)(*args, **kwargs)
        return host(*args, **kwargs)

    op.__name__, op.__qualname__, op.__doc__ = host.__name__, host.__qualname__, host.__doc__
    op.__wrapped__ = host  # inspect.signature shows the host signature
    return op


if _C.build_info()["cuda"]:
    for _name in _CUDA_OPS:
        globals()[_name] = _dispatching(_name, globals()[_name])
    del _name
