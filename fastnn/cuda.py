"""Optional CUDA backend: the kernels of ``csrc/cuda`` on CuPy arrays.

``fastnn._ops`` sends arrays exposing ``__cuda_array_interface__`` here when fastnn was built
with ``FASTNN_CUDA=ON``; results are CuPy arrays on the input's device, computed on CuPy's
current stream (no host round trips, except where noted: a loss with ``ignore_label`` and a
device-array ``dout`` of the loss are read back as one number). ``is_available()`` tells
whether that can work here and ``reason()`` why not.
"""

import contextlib
import ctypes
import functools
import glob
import inspect
import os

import numpy as np

from . import _C
from . import _ops

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


# ---------------------------------------------------------------- helpers

def _cupy(layer):
    why = reason()
    if why:
        raise TypeError(f"{layer}: got a GPU array but fastnn cannot use CUDA here: {why}")
    import cupy
    return cupy


class _Launch:
    """Device, stream and dtype of one kernel call on the arrays of one layer. Calls whose
    device is already the current one (the usual case) skip the device switches."""

    def __init__(self, layer, dtype, *arrays):
        cp = self.cp = _cupy(layer)
        first = next(a for a in arrays if hasattr(a, "__cuda_array_interface__"))
        self.device = (first.data.device_id if isinstance(first, cp.ndarray)
                       else cp.asarray(first).device.id)
        self.dtype = np.dtype(dtype)
        self.f64 = self.dtype == np.float64
        self.current = cp.cuda.runtime.getDevice() == self.device
        with self._on_device():
            self.stream = cp.cuda.get_current_stream().ptr

    def _on_device(self):
        return contextlib.nullcontext() if self.current else self.cp.cuda.Device(self.device)

    def args(self):
        return self.f64, self.device, self.stream

    def array(self, a, dtype=None):
        """``a`` as a C-contiguous CuPy array of the compute dtype on our device (``a`` itself
        when it already is one)."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        cp = self.cp
        if (isinstance(a, cp.ndarray) and a.dtype == dtype and a.flags.c_contiguous
                and a.data.device_id == self.device):
            return a
        with self._on_device():
            return cp.ascontiguousarray(cp.asarray(a, dtype=dtype))

    def empty(self, shape, dtype=None):
        with self._on_device():
            return self.cp.empty(tuple(map(int, shape)), dtype=dtype or self.dtype)

    def zeros(self, shape, dtype=None):
        with self._on_device():
            return self.cp.zeros(tuple(map(int, shape)), dtype=dtype or self.dtype)


def _p(a):
    return 0 if a is None else a.data.ptr


# ---------------------------------------------------------------- activations

def relu_forward(x, layer="Relu"):
    k = _Launch(layer, _ops.compute_dtype(layer, x), x)
    x = k.array(x)
    y, mask = k.empty(x.shape), k.empty(x.shape, np.bool_)
    _C.cuda_relu_forward(*k.args(), _p(x), _p(y), _p(mask), x.size)
    return y, mask


def relu_backward(dout, mask, layer="Relu"):
    """In place into dout when it is a C-contiguous array of the compute dtype, as the book."""
    k = _Launch(layer, _ops.compute_dtype(layer, dout), dout, mask)
    if tuple(dout.shape) != tuple(mask.shape):
        raise ValueError(f"{layer}.backward: dout has shape {tuple(dout.shape)} but the forward "
                         f"input had shape {tuple(mask.shape)}")
    in_place = (isinstance(dout, k.cp.ndarray) and dout.dtype == k.dtype
                and dout.flags.c_contiguous and dout.device.id == k.device)
    d = dout if in_place else k.array(dout).copy()
    m = k.array(mask, np.bool_)
    _C.cuda_relu_backward(*k.args(), _p(d), _p(m), _p(d), d.size)
    return d


def _unary_forward(op, x, layer):
    k = _Launch(layer, _ops.compute_dtype(layer, x), x)
    x = k.array(x)
    y = k.empty(x.shape)
    _C.cuda_unary_forward(op, *k.args(), _p(x), _p(y), x.size)
    return y


def _unary_backward(op, dout, y, layer):
    if tuple(dout.shape) != tuple(y.shape):
        raise ValueError(f"{layer}.backward: dout has shape {tuple(dout.shape)} but the forward "
                         f"output had shape {tuple(y.shape)}")
    k = _Launch(layer, _ops.compute_dtype(layer, dout, y), dout, y)
    dout, y = k.array(dout), k.array(y)
    dx = k.empty(y.shape)
    _C.cuda_unary_backward(op, *k.args(), _p(dout), _p(y), _p(dx), y.size)
    return dx


def sigmoid_forward(x, layer="Sigmoid"):
    return _unary_forward("sigmoid", x, layer)


def sigmoid_backward(dout, y, layer="Sigmoid"):
    return _unary_backward("sigmoid", dout, y, layer)


def tanh_forward(x, layer="Tanh"):
    return _unary_forward("tanh", x, layer)


def tanh_backward(dout, y, layer="Tanh"):
    return _unary_backward("tanh", dout, y, layer)


# ---------------------------------------------------------------- im2col, convolution, pooling

def _out_hw(H, W, FH, FW, stride, pad):
    return (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1


def im2col(x, FH, FW, stride=1, pad=0, layer="im2col"):
    FH, FW, stride, pad = _ops.check_window(layer, FH, FW, stride, pad)
    _ops._check_images(layer, x, FH, FW, pad)
    k = _Launch(layer, _ops.compute_dtype(layer, x), x)
    x = k.array(x)
    N, C, H, W = x.shape
    OH, OW = _out_hw(H, W, FH, FW, stride, pad)
    col = k.empty((N * OH * OW, C * FH * FW))
    _C.cuda_im2col(*k.args(), _p(x), _p(col), list(x.shape), FH, FW, stride, pad)
    return col


def col2im(col, input_shape, FH, FW, stride=1, pad=0, layer="col2im"):
    FH, FW, stride, pad = _ops.check_window(layer, FH, FW, stride, pad)
    N, C, H, W = _ops._check_shape(layer, "input_shape", input_shape)
    if FH > H + 2 * pad or FW > W + 2 * pad:
        raise ValueError(f"{layer}: window {FH}x{FW} is larger than the padded input "
                         f"{H + 2 * pad}x{W + 2 * pad} with pad={pad} (input_shape={(N, C, H, W)})")
    OH, OW = _out_hw(H, W, FH, FW, stride, pad)
    if tuple(col.shape) != (N * OH * OW, C * FH * FW):
        raise ValueError(f"{layer}: col has shape {tuple(col.shape)} but input_shape "
                         f"{(N, C, H, W)} with a {FH}x{FW} window, stride {stride}, pad {pad} "
                         f"needs {(N * OH * OW, C * FH * FW)}")
    k = _Launch(layer, _ops.compute_dtype(layer, col), col)
    col = k.array(col)
    x = k.empty((N, C, H, W))
    _C.cuda_col2im(*k.args(), _p(col), _p(x), [N, C, H, W], FH, FW, stride, pad)
    return x


def _groups_of(groups, x, W, b, dout=None):
    """(x, W, b, dout) of each group of a grouped convolution (channel and filter slices)."""
    Cg, F = x.shape[1] // groups, W.shape[0] // groups
    b = None if b is None else b.reshape(-1)
    for g in range(groups):
        fs = slice(g * F, (g + 1) * F)
        yield (x[:, g * Cg:(g + 1) * Cg], W[fs], None if b is None else b[fs],
               None if dout is None else dout[:, fs])


def _depthwise(x, groups):
    """Whether a (checked) convolution is depthwise, groups == C > 1: one direct kernel for all
    channels (csrc/cuda/conv.cu) instead of one launch per group."""
    return groups > 1 and groups == x.shape[1]


def conv2d_forward(x, W, b, stride=1, pad=0, layer="Convolution", groups=1):
    stride, pad, groups = _ops.check_conv_shapes(layer, x, W, b, stride, pad, groups)
    depthwise = _depthwise(x, groups)
    if groups > 1 and not depthwise:  # one ungrouped launch per group
        cp = _cupy(layer)
        return cp.concatenate([conv2d_forward(xg, Wg, bg, stride, pad, layer)
                               for xg, Wg, bg, _ in _groups_of(groups, x, W, b)], axis=1)
    k = _Launch(layer, _ops.compute_dtype(layer, x, W, b), x, W, b)
    x, W = k.array(x), k.array(W)
    b = None if b is None else k.array(b).reshape(-1)
    FN, _, FH, FW = W.shape
    N, _, H, Wd = x.shape
    out = k.empty((N, FN) + _out_hw(H, Wd, FH, FW, stride, pad))
    launch = _C.cuda_depthwise_forward if depthwise else _C.cuda_conv2d_forward
    launch(*k.args(), _p(x), _p(W), _p(b), _p(out), list(x.shape), FN, FH, FW, stride, pad)
    return out


def conv2d_backward(dout, x, W, b=None, stride=1, pad=0, layer="Convolution", need_dx=True,
                    groups=1):
    stride, pad, groups = _ops.check_conv_shapes(layer, x, W, b, stride, pad, groups)
    FN, _, FH, FW = W.shape
    N, _, H, Wd = x.shape
    expected = (N, FN) + _out_hw(H, Wd, FH, FW, stride, pad)
    if tuple(dout.shape) != expected:
        raise ValueError(f"{layer}.backward: dout has shape {tuple(dout.shape)} but the forward "
                         f"output had shape {expected}")
    depthwise = _depthwise(x, groups)
    if groups > 1 and not depthwise:  # one ungrouped launch per group
        cp = _cupy(layer)
        parts = [conv2d_backward(dg, xg, Wg, bg, stride, pad, layer, need_dx)
                 for xg, Wg, bg, dg in _groups_of(groups, x, W, b, dout)]
        dx = cp.concatenate([p[0] for p in parts], axis=1) if need_dx else None
        return (dx, cp.concatenate([p[1] for p in parts]),
                cp.concatenate([p[2] for p in parts]))
    k = _Launch(layer, _ops.compute_dtype(layer, dout, x, W, b), dout, x, W, b)
    dout, x, W = k.array(dout), k.array(x), k.array(W)
    dx = k.empty(x.shape) if need_dx else None
    dW, db = k.empty(W.shape), k.empty((FN,))
    launch = _C.cuda_depthwise_backward if depthwise else _C.cuda_conv2d_backward
    launch(*k.args(), _p(dout), _p(x), _p(W), _p(dx), _p(dW), _p(db), list(x.shape), FN, FH, FW,
           stride, pad)
    return dx, dW, db


def _pool_forward_checks(layer, x, pool_h, pool_w, stride, pad):
    FH, FW, stride, pad = _ops.check_window(layer, pool_h, pool_w, stride, pad)
    _ops._check_images(layer, x, FH, FW, pad)
    return FH, FW, stride, pad


def _pool_dout_checks(layer, dout, x_shape, pool_h, pool_w, stride, pad):
    FH, FW, stride, pad = _ops.check_window(layer, pool_h, pool_w, stride, pad)
    N, C, H, W = _ops._check_shape(layer, "x_shape", x_shape)
    expected = (N, C) + _out_hw(H, W, FH, FW, stride, pad)
    if tuple(dout.shape) != expected:
        raise ValueError(f"{layer}.backward: dout has shape {tuple(dout.shape)} but the forward "
                         f"output had shape {expected}")
    return [N, C, H, W], FH, FW, stride, pad


def maxpool2d_forward(x, pool_h, pool_w, stride=1, pad=0, layer="Pooling"):
    FH, FW, stride, pad = _pool_forward_checks(layer, x, pool_h, pool_w, stride, pad)
    k = _Launch(layer, _ops.compute_dtype(layer, x), x)
    x = k.array(x)
    N, C, H, W = x.shape
    shape = (N, C) + _out_hw(H, W, FH, FW, stride, pad)
    out, arg = k.empty(shape), k.empty(shape, np.int32)
    _C.cuda_maxpool2d_forward(*k.args(), _p(x), _p(out), _p(arg), list(x.shape), FH, FW, stride,
                              pad)
    return out, arg


def maxpool2d_backward(dout, arg, x_shape, pool_h, pool_w, stride=1, pad=0, layer="Pooling"):
    shape, FH, FW, stride, pad = _pool_dout_checks(layer, dout, x_shape, pool_h, pool_w, stride,
                                                   pad)
    if tuple(arg.shape) != tuple(dout.shape):
        raise ValueError(f"{layer}.backward: arg has shape {tuple(arg.shape)} but dout has shape "
                         f"{tuple(dout.shape)}")
    k = _Launch(layer, _ops.compute_dtype(layer, dout), dout, arg)
    dout, arg = k.array(dout), k.array(arg, np.int32)
    dx = k.empty(shape)
    _C.cuda_maxpool2d_backward(*k.args(), _p(dout), _p(arg), _p(dx), shape, FH, FW, stride, pad)
    return dx


def avgpool2d_forward(x, pool_h, pool_w, stride=1, pad=0, layer="AvgPooling"):
    FH, FW, stride, pad = _pool_forward_checks(layer, x, pool_h, pool_w, stride, pad)
    k = _Launch(layer, _ops.compute_dtype(layer, x), x)
    x = k.array(x)
    N, C, H, W = x.shape
    out = k.empty((N, C) + _out_hw(H, W, FH, FW, stride, pad))
    _C.cuda_avgpool2d_forward(*k.args(), _p(x), _p(out), list(x.shape), FH, FW, stride, pad)
    return out


def avgpool2d_backward(dout, x_shape, pool_h, pool_w, stride=1, pad=0, layer="AvgPooling"):
    shape, FH, FW, stride, pad = _pool_dout_checks(layer, dout, x_shape, pool_h, pool_w, stride,
                                                   pad)
    k = _Launch(layer, _ops.compute_dtype(layer, dout), dout)
    dout = k.array(dout)
    dx = k.empty(shape)
    _C.cuda_avgpool2d_backward(*k.args(), _p(dout), _p(dx), shape, FH, FW, stride, pad)
    return dx


# ---------------------------------------------------------------- affine, softmax, batchnorm

def flatten_batch(layer, x):
    if x.ndim == 0:
        raise ValueError(f"{layer}: x must have a batch axis, got a scalar")
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))


def affine_forward(x, W, b, layer="Affine"):
    x2 = flatten_batch(layer, x)
    if W.ndim != 2 or b.ndim != 1:
        raise _ops._shape_error(layer, "W must be 2-D (D, M) and b 1-D (M,)", W=W, b=b)
    if x2.shape[1] != W.shape[0]:
        raise _ops._shape_error(layer, f"x has {x2.shape[1]} features per sample but W expects "
                                f"{W.shape[0]}", x=x, W=W)
    if b.shape[0] != W.shape[1]:
        raise _ops._shape_error(layer, f"b has length {b.shape[0]} but W has {W.shape[1]} "
                                "columns", W=W, b=b)
    k = _Launch(layer, _ops.compute_dtype(layer, x2, W, b), x, W, b)
    x2, W, b = k.array(x2), k.array(W), k.array(b)
    N, D = x2.shape
    M = W.shape[1]
    out = k.empty((N, M))
    _C.cuda_affine_forward(*k.args(), _p(x2), _p(W), _p(b), _p(out), N, D, M)
    return out


def affine_backward(dout, x, W, layer="Affine", need_dx=True):
    x2 = flatten_batch(layer, x)
    if W.ndim != 2 or x2.shape[1] != W.shape[0]:
        raise _ops._shape_error(layer + ".backward", "x and W do not match", x=x, W=W)
    expected = (x2.shape[0], W.shape[1])
    if tuple(dout.shape) != expected:
        raise ValueError(f"{layer}.backward: dout has shape {tuple(dout.shape)} but the forward "
                         f"output had shape {expected}")
    k = _Launch(layer, _ops.compute_dtype(layer, dout, x2, W), dout, x, W)
    dout, x2, W = k.array(dout), k.array(x2), k.array(W)
    N, D = x2.shape
    M = W.shape[1]
    dx = k.empty((N, D)) if need_dx else None
    dW, db = k.empty((D, M)), k.empty((M,))
    _C.cuda_affine_backward(*k.args(), _p(dout), _p(x2), _p(W), _p(dx), _p(dW), _p(db), N, D, M)
    # The dtypes NumPy gives the book's expressions, as on the CPU.
    return (dx.reshape(x.shape).astype(_ops.compute_dtype(layer, dout, W), copy=False)
            if need_dx else None,
            dW.astype(_ops.compute_dtype(layer, x2, dout), copy=False),
            db.astype(_ops.compute_dtype(layer, dout), copy=False))


def softmax(x, layer="softmax"):
    if x.ndim == 0:
        raise ValueError(f"{layer}: x must have at least one axis, got a scalar")
    k = _Launch(layer, _ops.compute_dtype(layer, x), x)
    x = k.array(x)
    y = k.empty(x.shape)
    C = x.shape[-1]
    _C.cuda_softmax_forward(*k.args(), _p(x), _p(y), x.size // C if C else 0, C)
    return y


def _labels(k, layer, t, y_shape):
    """(int64 labels (N,) on the device, dense targets or None), as _ops._labels."""
    dt = np.dtype(t.dtype)
    if dt.kind not in "biuf":
        raise TypeError(f"{layer}: labels t of dtype {dt} are not supported")
    if tuple(t.shape) == tuple(y_shape) and t.ndim == 2:
        return k.array(k.cp.argmax(k.array(t, dt), axis=1), np.int64), t
    if dt.kind not in "iu":
        raise TypeError(f"{layer}: integer labels t must have an integer dtype, got {dt} "
                        f"(t.shape={tuple(t.shape)}; one-hot t must have y's shape {y_shape})")
    if t.ndim != 1 or t.shape[0] != y_shape[0]:
        raise ValueError(f"{layer}: got {t.size} labels for a batch of {y_shape[0]} with "
                         f"{y_shape[1]} classes (t.shape={tuple(t.shape)}, x.shape={y_shape}); "
                         f"t must have shape ({y_shape[0]},) or {y_shape}")
    return k.array(t, np.int64), None


def softmax_cross_entropy_forward(x, t, eps=1e-7, ignore_label=None, layer="SoftmaxWithLoss"):
    """(y, loss) as _ops.softmax_cross_entropy_forward; the loss is a 0-d CuPy array. A label
    outside [0, C) gives a NaN loss (checking it would need a host round trip)."""
    if x.ndim != 2:
        raise ValueError(f"{layer}: expected x of shape (N, C), got x.shape={tuple(x.shape)}")
    k = _Launch(layer, _ops.compute_dtype(layer, x), x, t)
    x = k.array(x)
    labels, _ = _labels(k, layer, t, tuple(x.shape))
    N, C = x.shape
    y, rows = k.empty((N, C)), k.empty((N,))
    _C.cuda_softmax_cross_entropy_forward(*k.args(), _p(x), _p(labels), _p(y), _p(rows), N, C,
                                          float(eps), ignore_label)
    with k._on_device():
        if not N:
            return y, k.cp.asarray(np.nan, dtype=k.dtype)
        if ignore_label is None:
            return y, rows.mean()  # one reduction kernel
        return y, (rows.sum() / (labels != ignore_label).sum()).astype(k.dtype, copy=False)


def softmax_cross_entropy_backward(y, t, dout=1, ignore_label=None, out=None,
                                   layer="SoftmaxWithLoss"):
    if y.ndim != 2:
        raise ValueError(f"{layer}.backward: expected y of shape (N, C), "
                         f"got y.shape={tuple(y.shape)}")
    d = dout
    if hasattr(d, "__cuda_array_interface__"):
        d = d.get()  # one number back to the host for the scale
    d = _ops._scalar_dout(layer, d)
    k = _Launch(layer, _ops.compute_dtype(layer, y), y, t)
    labels, dense = _labels(k, layer, t, tuple(y.shape))
    N, C = y.shape
    count = N if ignore_label is None else int((labels != ignore_label).sum())
    scale = d / count if count else np.nan
    if dense is not None and ignore_label is None:
        if out is not None:
            raise ValueError(f"{layer}.backward: out= needs integer labels, not one-hot t")
        k = _Launch(layer, _ops.compute_dtype(layer, y, dense), y, dense)
        y, dense = k.array(y), k.array(dense)
        dx = k.empty(y.shape)
        _C.cuda_softmax_cross_entropy_backward_dense(*k.args(), _p(y), _p(dense), _p(dx), y.size,
                                                     scale)
        return dx
    y = k.array(y)
    if out is not None and (not isinstance(out, k.cp.ndarray) or out.dtype != k.dtype
                            or tuple(out.shape) != tuple(y.shape)
                            or not out.flags.c_contiguous):
        raise ValueError(f"{layer}.backward: out must be a C-contiguous {k.dtype} CuPy array "
                         f"of shape {tuple(y.shape)}")
    dx = out if out is not None else k.empty(y.shape)
    _C.cuda_softmax_cross_entropy_backward(*k.args(), _p(y), _p(labels), _p(dx), N, C, scale,
                                           ignore_label)
    return dx


def _batchnorm_x(layer, x):
    if x.ndim not in (2, 4):
        raise ValueError(f"{layer}: x must be 2-D (N, D) or 4-D (N, C, H, W), "
                         f"got x.shape={tuple(x.shape)}")
    return flatten_batch(layer, x)


def _batchnorm_prepare(layer, x, gamma, beta, running_mean, running_var):
    """(launch, x2, gamma, beta, running_mean, running_var) on the device in the compute dtype;
    None running averages start as float64 zeros, as the book (and the CPU path)."""
    x2 = _batchnorm_x(layer, x)
    D = x2.shape[1]
    if running_mean is None:
        running_mean = np.zeros(D)
    if running_var is None:
        running_var = np.zeros(D)
    for name, p in dict(gamma=gamma, beta=beta, running_mean=running_mean,
                        running_var=running_var).items():
        if tuple(np.shape(p)) != (D,):
            raise ValueError(f"{layer}: {name}.shape={tuple(np.shape(p))} but x has {D} features "
                             f"per sample (x.shape={tuple(x.shape)}; 4-D x is normalised per "
                             f"C*H*W feature, as in the book)")
    k = _Launch(layer, _ops.compute_dtype(layer, x2, gamma, beta, running_mean, running_var),
                x, gamma, beta, running_mean, running_var)
    return k, x2, gamma, beta, running_mean, running_var


def batchnorm_forward_train(x, gamma, beta, running_mean=None, running_var=None, momentum=0.9,
                            eps=_ops.BATCHNORM_EPS, layer="BatchNormalization"):
    k, x2, gamma, beta, running_mean, running_var = _batchnorm_prepare(
        layer, x, gamma, beta, running_mean, running_var)
    N, D = x2.shape
    xd, g, b, rm, rv = (k.array(a) for a in (x2, gamma, beta, running_mean, running_var))
    out, xc, xn = k.empty((N, D)), k.empty((N, D)), k.empty((N, D))
    std, nrm, nrv = k.empty((D,)), k.empty((D,)), k.empty((D,))
    _C.cuda_batchnorm_forward_train(*k.args(), _p(xd), _p(g), _p(b), _p(rm), _p(rv), _p(out),
                                    _p(xc), _p(xn), _p(std), _p(nrm), _p(nrv), N, D,
                                    float(momentum), float(eps))
    # Result dtypes as on the CPU (the book's expressions under NumPy promotion).
    out = out.reshape(x.shape).astype(_ops.compute_dtype(layer, x2, gamma, beta), copy=False)
    xdt = _ops.compute_dtype(layer, x2)
    xc, xn, std = (a.astype(xdt, copy=False) for a in (xc, xn, std))
    nrm = nrm.astype(_ops.compute_dtype(layer, running_mean, x2), copy=False)
    nrv = nrv.astype(_ops.compute_dtype(layer, running_var, x2), copy=False)
    return out, xc, xn, std, nrm, nrv


def batchnorm_forward_infer(x, gamma, beta, running_mean=None, running_var=None,
                            eps=_ops.BATCHNORM_EPS, layer="BatchNormalization"):
    k, x2, gamma, beta, running_mean, running_var = _batchnorm_prepare(
        layer, x, gamma, beta, running_mean, running_var)
    N, D = x2.shape
    xd, g, b, rm, rv = (k.array(a) for a in (x2, gamma, beta, running_mean, running_var))
    out = k.empty((N, D))
    _C.cuda_batchnorm_forward_infer(*k.args(), _p(xd), _p(g), _p(b), _p(rm), _p(rv), _p(out), N,
                                    D, float(eps))
    return out.reshape(x.shape)


def batchnorm_backward(dout, gamma, xc, xn, std, layer="BatchNormalization"):
    if dout.ndim not in (2, 4) or dout.shape[0] != xc.shape[0] or \
            int(np.prod(dout.shape[1:], dtype=np.int64)) != xc.shape[1]:
        raise ValueError(f"{layer}.backward: dout has shape {tuple(dout.shape)} but the forward "
                         f"input was {tuple(xc.shape)} once flattened")
    d2 = flatten_batch(layer, dout)
    N, D = d2.shape
    if tuple(np.shape(gamma)) != (D,):
        raise ValueError(f"{layer}.backward: gamma.shape={tuple(np.shape(gamma))} but dout has "
                         f"{D} features per sample")
    k = _Launch(layer, _ops.compute_dtype(layer, d2, gamma, xc, xn, std), dout, gamma, xc, xn,
                std)
    d2, g, xc, xn, std = (k.array(a) for a in (d2, gamma, xc, xn, std))
    dx, dgamma, dbeta = k.empty((N, D)), k.empty((D,)), k.empty((D,))
    _C.cuda_batchnorm_backward(*k.args(), _p(d2), _p(g), _p(xc), _p(xn), _p(std), _p(dx),
                               _p(dgamma), _p(dbeta), N, D)
    return dx.reshape(dout.shape), dgamma, dbeta


# ---------------------------------------------------------------- optim

def check_param(opt, key, p, g):
    """A CuPy parameter (float32/float64, C-contiguous: updated in place) and its gradient in
    the parameter's dtype on the same device."""
    cp = _cupy(opt)
    if not isinstance(p, cp.ndarray):
        raise TypeError(f"{opt}: params[{key!r}] must be a CuPy array when its gradient is one, "
                        f"got {type(p).__name__}")
    if p.dtype not in _ops._FLOATS or not p.flags.c_contiguous:
        raise TypeError(f"{opt}: params[{key!r}] has dtype {p.dtype}; parameters are updated "
                        "in place and must be C-contiguous float32 or float64")
    if tuple(g.shape) != tuple(p.shape):
        raise ValueError(f"{opt}: grads[{key!r}] has shape {tuple(g.shape)} but params[{key!r}] "
                         f"has shape {tuple(p.shape)}")
    return _Launch(opt, p.dtype, p).array(g)


def _update(name, p, state, g, hyper):
    k = _Launch(name, p.dtype, p)
    for s in state:
        if not (isinstance(s, k.cp.ndarray) and s.dtype == p.dtype and s.shape == p.shape
                and s.flags.c_contiguous):
            raise TypeError(f"{name}: optimizer state must be C-contiguous CuPy arrays like the "
                            f"parameter ({p.dtype}, shape {tuple(p.shape)})")
    g = k.array(g)
    _C.cuda_optim_update(name, *k.args(), _p(p), [_p(s) for s in state], _p(g), p.size,
                         [float(h) for h in hyper])


def update_list(name, params, states, grads, hyper):
    """One optimizer step (``name`` as in _update) for CuPy parameters of one device and
    dtype, all in one launch (up to 32 parameters per launch): params[i] with its state arrays
    states[i] and gradient grads[i] (converted to the parameters' dtype on the device)."""
    p0 = params[0]
    k = _Launch(name, p0.dtype, p0)
    for p, state in zip(params, states):
        if not (isinstance(p, k.cp.ndarray) and p.dtype == k.dtype
                and p.data.device_id == k.device):
            raise TypeError(f"{name}: a parameter list shares one device and dtype "
                            f"({k.dtype}, device {k.device})")
        for s in state:
            if not (isinstance(s, k.cp.ndarray) and s.dtype == p.dtype and s.shape == p.shape
                    and s.flags.c_contiguous):
                raise TypeError(f"{name}: optimizer state must be C-contiguous CuPy arrays like "
                                f"the parameter ({p.dtype}, shape {tuple(p.shape)})")
    grads = [k.array(g) for g in grads]  # held until the launch is enqueued
    _C.cuda_optim_update_list(name, *k.args(), [_p(p) for p in params],
                              [[_p(s) for s in state] for state in states],
                              [_p(g) for g in grads], [p.size for p in params],
                              [float(h) for h in hyper])


def sgd_update(p, g, lr):
    _update("sgd", p, [], g, [lr])


def momentum_update(p, v, g, lr, momentum):
    _update("momentum", p, [v], g, [lr, momentum])


def nesterov_update(p, v, g, lr, momentum):
    _update("nesterov", p, [v], g, [lr, momentum])


def adagrad_update(p, h, g, lr, eps):
    _update("adagrad", p, [h], g, [lr, eps])


def rmsprop_update(p, h, g, lr, decay_rate, eps):
    _update("rmsprop", p, [h], g, [lr, decay_rate, eps])


def adam_update(p, m, v, g, lr_t, beta1, beta2, eps):
    _update("adam", p, [m, v], g, [lr_t, beta1, beta2, eps])


# ---------------------------------------------------------------- recurrent (rnn, lstm, gru)
# The signatures, results and checks of _ops' recurrent section (time-major x (T, N, D); see
# csrc/cpu/rnn.h for the layouts). The shape checks that _ops leaves to its C++ binding are
# repeated here with the same messages, which name the kernel family (RNN, LSTM, GRU).

def _recurrent_launch(layer, arrays):
    """(launch, ``arrays`` as C-contiguous CuPy arrays of one compute dtype, None kept), as
    _ops._recurrent_arrays."""
    k = _Launch(layer, _ops.compute_dtype(layer, *arrays.values()), *arrays.values())
    return k, {n: None if a is None else k.array(a) for n, a in arrays.items()}


def _expect(family, name, a, want):
    if a is not None and tuple(a.shape) != tuple(want):
        raise ValueError(f"{family}: {name} has shape {tuple(a.shape)} but {tuple(want)} was "
                         "expected")


def _weight_shape(torch_layout, K, G):
    return (G, K) if torch_layout else (K, G)


def _seq_shape(family, x):
    if x.ndim != 3:
        raise ValueError(f"{family}: x must be 3-D (T, N, D), got shape {tuple(x.shape)}")
    return tuple(int(d) for d in x.shape)


def _hidden_size(family, Wh, torch_layout, g):
    if Wh.ndim != 2:
        raise ValueError(f"{family}: Wh must be 2-D, got shape {tuple(Wh.shape)}")
    G = int(Wh.shape[0 if torch_layout else 1])
    if G % g != 0 or G <= 0:
        raise ValueError(f"{family}: Wh has shape {tuple(Wh.shape)}, whose gate dimension is not "
                         f"a positive multiple of {g}")
    return G // g


def rnn_forward(x, h0, Wx, Wh, b, relu=False, torch_layout=False, layer="RNN"):
    k, a = _recurrent_launch(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b))
    _ops._check_sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"],
                         a["Wh"].shape[1])
    T, N, D = _seq_shape("RNN", a["x"])
    H = _hidden_size("RNN", a["Wh"], torch_layout, 1)
    _expect("RNN", "Wx", a["Wx"], _weight_shape(torch_layout, D, H))
    _expect("RNN", "Wh", a["Wh"], _weight_shape(torch_layout, H, H))
    _expect("RNN", "b", a["b"], (H,))
    _expect("RNN", "h0", a["h0"], (N, H))
    hs = k.empty((T, N, H))
    _C.cuda_rnn_forward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["Wx"]), _p(a["Wh"]),
                        _p(a["b"]), _p(hs), T, N, D, H, bool(relu), bool(torch_layout))
    return hs


def rnn_backward(x, h0, Wx, Wh, hs, dhs, dhn, relu=False, torch_layout=False, layer="RNN"):
    k, a = _recurrent_launch(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, hs=hs, dhs=dhs, dhn=dhn))
    T, N, D = _seq_shape("RNN", a["x"])
    H = _hidden_size("RNN", a["Wh"], torch_layout, 1)
    _expect("RNN", "Wx", a["Wx"], _weight_shape(torch_layout, D, H))
    _expect("RNN", "Wh", a["Wh"], _weight_shape(torch_layout, H, H))
    _expect("RNN", "h0", a["h0"], (N, H))
    _expect("RNN", "hs", a["hs"], (T, N, H))
    _expect("RNN", "dhs", a["dhs"], (T, N, H))
    _expect("RNN", "dhn", a["dhn"], (N, H))
    dx, dh0 = k.empty((T, N, D)), k.empty((N, H))
    dWx, dWh, db = k.empty(a["Wx"].shape), k.empty(a["Wh"].shape), k.empty((H,))
    _C.cuda_rnn_backward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["Wx"]), _p(a["Wh"]),
                         _p(a["hs"]), _p(a["dhs"]), _p(a["dhn"]), _p(dx), _p(dh0), _p(dWx),
                         _p(dWh), _p(db), T, N, D, H, bool(relu), bool(torch_layout))
    return dx, dh0, dWx, dWh, db


def _lstm_sizes(Wh, Whr, torch_layout):
    """(H, P) from Wh and the optional projection Whr (P, H); P == H without it."""
    H = _hidden_size("LSTM", Wh, torch_layout, 4)
    P = H
    if Whr is not None:
        if not torch_layout:
            raise ValueError("LSTM: a projection (Whr) needs the torch layout")
        if Whr.ndim != 2 or Whr.shape[1] != H:
            raise ValueError(f"LSTM: Whr has shape {tuple(Whr.shape)} but (P, {H}) was expected")
        P = int(Whr.shape[0])
    return H, P


def _p_whr(k, Whr):
    """(pointer, keep-alive) of a projection: a present Whr must not read as absent (null),
    which CuPy's pointer of an empty (P == 0) array would; the kernels never read it then."""
    if Whr is None:
        return 0, None
    if Whr.size:
        return _p(Whr), Whr
    stand_in = k.empty((1,))
    return _p(stand_in), stand_in


def lstm_forward(x, h0, c0, Wx, Wh, b, Whr=None, torch_layout=False, layer="LSTM"):
    k, a = _recurrent_launch(layer, dict(x=x, h0=h0, c0=c0, Wx=Wx, Wh=Wh, b=b, Whr=Whr))
    H = a["Wh"].shape[0 if torch_layout else 1] // 4
    P = H if Whr is None else a["Whr"].shape[0]
    _ops._check_sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"], P,
                         a["c0"], H)
    T, N, D = _seq_shape("LSTM", a["x"])
    H, P = _lstm_sizes(a["Wh"], a["Whr"], torch_layout)
    _expect("LSTM", "Wx", a["Wx"], _weight_shape(torch_layout, D, 4 * H))
    _expect("LSTM", "Wh", a["Wh"], _weight_shape(torch_layout, P, 4 * H))
    _expect("LSTM", "b", a["b"], (4 * H,))
    _expect("LSTM", "h0", a["h0"], (N, P))
    _expect("LSTM", "c0", a["c0"], (N, H))
    hs, cs, gates = k.empty((T, N, P)), k.empty((T, N, H)), k.empty((T, N, 4 * H))
    hfull = None if Whr is None else k.empty((T, N, H))
    whr, _keep = _p_whr(k, a["Whr"])
    _C.cuda_lstm_forward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["c0"]), _p(a["Wx"]),
                         _p(a["Wh"]), _p(a["b"]), whr, _p(hs), _p(cs), _p(gates), _p(hfull),
                         T, N, D, H, P, bool(torch_layout))
    return hs, cs, gates, hfull


def lstm_backward(x, h0, c0, Wx, Wh, Whr, hs, cs, gates, hfull, dhs, dhn, dcn,
                  torch_layout=False, layer="LSTM"):
    k, a = _recurrent_launch(layer, dict(x=x, h0=h0, c0=c0, Wx=Wx, Wh=Wh, Whr=Whr, hs=hs, cs=cs,
                                         gates=gates, hfull=hfull, dhs=dhs, dhn=dhn, dcn=dcn))
    T, N, D = _seq_shape("LSTM", a["x"])
    H, P = _lstm_sizes(a["Wh"], a["Whr"], torch_layout)
    _expect("LSTM", "Wx", a["Wx"], _weight_shape(torch_layout, D, 4 * H))
    _expect("LSTM", "Wh", a["Wh"], _weight_shape(torch_layout, P, 4 * H))
    _expect("LSTM", "h0", a["h0"], (N, P))
    _expect("LSTM", "c0", a["c0"], (N, H))
    _expect("LSTM", "hs", a["hs"], (T, N, P))
    _expect("LSTM", "cs", a["cs"], (T, N, H))
    _expect("LSTM", "gates", a["gates"], (T, N, 4 * H))
    if (Whr is None) != (hfull is None):
        raise ValueError("LSTM: hfull must be given exactly with Whr")
    _expect("LSTM", "hfull", a["hfull"], (T, N, H))
    _expect("LSTM", "dhs", a["dhs"], (T, N, P))
    _expect("LSTM", "dhn", a["dhn"], (N, P))
    _expect("LSTM", "dcn", a["dcn"], (N, H))
    dx, dh0, dc0 = k.empty((T, N, D)), k.empty((N, P)), k.empty((N, H))
    dWx, dWh, db = k.empty(a["Wx"].shape), k.empty(a["Wh"].shape), k.empty((4 * H,))
    dWhr = None if Whr is None else k.empty((P, H))
    whr, _keep = _p_whr(k, a["Whr"])
    _C.cuda_lstm_backward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["c0"]), _p(a["Wx"]),
                          _p(a["Wh"]), whr, _p(a["hs"]), _p(a["cs"]), _p(a["gates"]),
                          _p(a["hfull"]), _p(a["dhs"]), _p(a["dhn"]), _p(a["dcn"]), _p(dx),
                          _p(dh0), _p(dc0), _p(dWx), _p(dWh), _p(db), _p(dWhr), T, N, D, H, P,
                          bool(torch_layout))
    return dx, dh0, dc0, dWx, dWh, db, dWhr


def _gru_checks(a, torch_layout):
    """(T, N, D, H) after the checks common to both GRU passes."""
    T, N, D = _seq_shape("GRU", a["x"])
    H = _hidden_size("GRU", a["Wh"], torch_layout, 3)
    _expect("GRU", "Wx", a["Wx"], _weight_shape(torch_layout, D, 3 * H))
    _expect("GRU", "Wh", a["Wh"], _weight_shape(torch_layout, H, 3 * H))
    return T, N, D, H


def gru_forward(x, h0, Wx, Wh, bx, bh=None, torch_layout=False, layer="GRU"):
    k, a = _recurrent_launch(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, bx=bx, bh=bh))
    H = a["Wh"].shape[0 if torch_layout else 1] // 3
    _ops._check_sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"], H)
    T, N, D, H = _gru_checks(a, torch_layout)
    _expect("GRU", "bx", a["bx"], (3 * H,))
    _expect("GRU", "bh", a["bh"], (3 * H,))
    if not torch_layout and bh is not None:
        raise ValueError("GRU: the book's GRU has a single bias")
    _expect("GRU", "h0", a["h0"], (N, H))
    hs, gates, aux = k.empty((T, N, H)), k.empty((T, N, 3 * H)), k.empty((T, N, H))
    _C.cuda_gru_forward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["Wx"]), _p(a["Wh"]),
                        _p(a["bx"]), _p(a["bh"]), _p(hs), _p(gates), _p(aux), T, N, D, H,
                        bool(torch_layout))
    return hs, gates, aux


def gru_backward(x, h0, Wx, Wh, hs, gates, aux, dhs, dhn, torch_layout=False, layer="GRU"):
    k, a = _recurrent_launch(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, hs=hs, gates=gates, aux=aux,
                                         dhs=dhs, dhn=dhn))
    T, N, D, H = _gru_checks(a, torch_layout)
    _expect("GRU", "h0", a["h0"], (N, H))
    _expect("GRU", "hs", a["hs"], (T, N, H))
    _expect("GRU", "gates", a["gates"], (T, N, 3 * H))
    _expect("GRU", "aux", a["aux"], (T, N, H))
    _expect("GRU", "dhs", a["dhs"], (T, N, H))
    _expect("GRU", "dhn", a["dhn"], (N, H))
    dx, dh0 = k.empty((T, N, D)), k.empty((N, H))
    dWx, dWh, dbx = k.empty(a["Wx"].shape), k.empty(a["Wh"].shape), k.empty((3 * H,))
    dbh = k.empty((3 * H,)) if torch_layout else None
    _C.cuda_gru_backward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["Wx"]), _p(a["Wh"]),
                         _p(a["hs"]), _p(a["gates"]), _p(a["aux"]), _p(a["dhs"]), _p(a["dhn"]),
                         _p(dx), _p(dh0), _p(dWx), _p(dWh), _p(dbx), _p(dbh), T, N, D, H,
                         bool(torch_layout))
    return dx, dh0, dWx, dWh, dbx, dbh


# ---------------------------------------------------------------- availability first

def _requiring_cuda(fn):
    """fn, raising the TypeError of _cupy (naming the layer) before anything else when CUDA
    cannot be used here, so a device array never meets a host-only check."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def op(*args, **kwargs):
        why = reason()
        if why:
            bound = sig.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            who = bound.arguments.get("layer") or bound.arguments.get("opt") or fn.__name__
            raise TypeError(f"{who}: got a GPU array but fastnn cannot use CUDA here: {why}")
        return fn(*args, **kwargs)

    return op


for _name in _ops._CUDA_OPS:
    globals()[_name] = _requiring_cuda(globals()[_name])
del _name
