"""The op front: every layer reaches its kernels through these functions.

Each op (1) picks the backend by where its arrays live: ``ops/cpu.py`` for NumPy arrays,
``ops/cuda.py`` for CuPy arrays (anything exposing ``__cuda_array_interface__``) when fastnn was
built with CUDA and can use it, else a TypeError naming the layer and the reason; (2) checks
shapes and arguments once, in the user's words, and picks the compute dtype by NumPy's
promotion (``ops/meta.py``); (3) calls the backend, which only computes. A few ops have CPU
kernels only (the builder's ReLU6, SiLU and channel norms): device arrays get a TypeError there.
"""

import numpy as np

from .. import _C
from .. import _device
from .._device import array_module, on_device
from . import cpu, meta
from . import cuda as _cuda
from .meta import BATCHNORM_EPS, compute_dtype

__all__ = [
    "BATCHNORM_EPS", "compute_dtype", "array_module", "check_window", "flatten_batch",
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "tanh_forward",
    "tanh_backward", "relu6_forward", "relu6_backward", "silu_forward", "silu_backward",
    "im2col", "col2im", "conv2d_forward", "conv2d_backward", "conv2d_relu_maxpool_forward",
    "conv2d_relu_maxpool_backward", "maxpool2d_forward",
    "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward", "affine_forward",
    "affine_backward", "softmax", "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward", "batchnorm_forward_train", "batchnorm_forward_infer",
    "batchnorm_backward", "channel_batchnorm_forward", "channel_batchnorm_backward",
    "channel_affine", "group_norm_forward", "group_norm_backward", "check_param", "sgd_update",
    "momentum_update", "nesterov_update", "adagrad_update", "rmsprop_update", "adam_update",
    "update_list", "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
    "gru_forward", "gru_backward", "embedding_forward", "embedding_backward",
    "embedding_dot_forward", "embedding_dot_backward", "attention_forward",
    "attention_backward",
]

_CUDA_BUILT = bool(_C.build_info()["cuda"])
check_window = meta.window


def _backend(layer, *arrays):
    """``cpu``, or the CUDA backend when any of ``arrays`` is a device array (TypeError naming
    the layer and the reason when CUDA cannot be used here)."""
    for a in arrays:  # a plain loop: this runs on every call
        if hasattr(a, "__cuda_array_interface__"):
            _device.cupy_for(layer)
            return _cuda
    return cpu


def _host_only(layer, *arrays):
    """TypeError for device arrays given to an op that has a CPU kernel only."""
    for a in arrays:
        if hasattr(a, "__cuda_array_interface__"):
            if _CUDA_BUILT:
                raise TypeError(f"{layer}: got a GPU array; this op runs on the CPU only (pass "
                                "NumPy arrays, e.g. cupy.asnumpy(x))")
            _device.cupy_for(layer)


def _arr(a):
    """A NumPy or device array as it is; anything else (lists, scalars) through np.asarray."""
    if type(a) is np.ndarray or hasattr(a, "__cuda_array_interface__"):
        return a
    return np.asarray(a)


def _opt(a):
    return None if a is None else _arr(a)


def flatten_batch(layer, x):
    """``x`` (N, ...) viewed as (N, D) with D the product of the other axes (the book's
    ``x.reshape(x.shape[0], -1)``, which also works for an empty batch here)."""
    x = _arr(x)
    return x.reshape(meta.batch_2d(layer, x))


# ---------------------------------------------------------------- activations

def relu_forward(x, layer="Relu"):
    """(max(x, 0), mask of x <= 0)."""
    be = _backend(layer, x)
    x = _arr(x)
    return be.relu_forward(x, compute_dtype(layer, x))


def relu_backward(dout, mask, layer="Relu"):
    """The book's Relu.backward: zero dout where x <= 0, in place when dout allows it."""
    be = _backend(layer, dout, mask)
    dout = _arr(dout)
    meta.same_shape(layer, dout, mask, "input")
    return be.relu_backward(dout, mask, compute_dtype(layer, dout))


def _unary_forward(name, x, layer, host_only=False):
    if host_only:
        _host_only(layer, x)
        be = cpu
    else:
        be = _backend(layer, x)
    x = _arr(x)
    return be.unary_forward(name, x, compute_dtype(layer, x))


def _unary_backward(name, dout, kept, layer, what="output", host_only=False):
    if host_only:
        _host_only(layer, dout, kept)
        be = cpu
    else:
        be = _backend(layer, dout, kept)
    dout = _arr(dout)
    meta.same_shape(layer, dout, kept, what)
    return be.unary_backward(name, dout, kept, compute_dtype(layer, dout, kept), layer)


def sigmoid_forward(x, layer="Sigmoid"):
    return _unary_forward("sigmoid", x, layer)


def sigmoid_backward(dout, y, layer="Sigmoid"):
    return _unary_backward("sigmoid", dout, y, layer)


def tanh_forward(x, layer="Tanh"):
    return _unary_forward("tanh", x, layer)


def tanh_backward(dout, y, layer="Tanh"):
    return _unary_backward("tanh", dout, y, layer)


def relu6_forward(x, layer="ReLU6"):
    """min(max(x, 0), 6) (MobileNet's activation); NaN passes through."""
    return _unary_forward("relu6", x, layer, host_only=True)


def relu6_backward(dout, y, layer="ReLU6"):
    """dout where the forward output y is strictly between 0 and 6, else 0."""
    return _unary_backward("relu6", dout, y, layer, host_only=True)


def silu_forward(x, layer="SiLU"):
    """x * sigmoid(x)."""
    return _unary_forward("silu", x, layer, host_only=True)


def silu_backward(dout, x, layer="SiLU"):
    """dout * s * (1 + x * (1 - s)), s = sigmoid(x), from the forward input x."""
    return _unary_backward("silu", dout, x, layer, "input", host_only=True)


# ---------------------------------------------------------------- im2col, convolution, pooling

def _over_images(name, x, FH, FW, stride, pad, layer):
    """Backend op ``name`` of a window sliding over the images x (im2col, pooling forward)."""
    be = _backend(layer, x)
    x = _arr(x)
    FH, FW, stride, pad = meta.image_window(layer, x, FH, FW, stride, pad)
    return getattr(be, name)(x, FH, FW, stride, pad, compute_dtype(layer, x))


def im2col(x, FH, FW, stride=1, pad=0, layer="im2col"):
    """x (N, C, H, W) -> col (N*OH*OW, C*FH*FW), the book's layout; padding reads as 0."""
    return _over_images("im2col", x, FH, FW, stride, pad, layer)


def col2im(col, input_shape, FH, FW, stride=1, pad=0, layer="col2im"):
    """col (N*OH*OW, C*FH*FW) -> (N, C, H, W), summing the entries that share a pixel."""
    be = _backend(layer, col)
    col = _arr(col)
    shape, FH, FW, stride, pad = meta.col2im(layer, col, input_shape, FH, FW, stride, pad)
    return be.col2im(col, shape, FH, FW, stride, pad, compute_dtype(layer, col))


def conv2d_forward(x, W, b, stride=1, pad=0, layer="Convolution", groups=1, keep=None):
    """out (N, FN, OH, OW) = convolution of x (N, C, H, W) with W (FN, C // groups, FH, FW), plus
    b (FN,). With groups > 1, filter group g (FN // groups filters) sees channel group g only;
    groups = C is a depthwise convolution.

    keep, an array of x's type, shape and dtype, receives a copy of x (what a layer keeps for
    its backward); the depthwise kernel makes it in its own pass over x.

    Computes in NumPy's promotion of x, W and b (float32 images with float64 weights: float64).
    """
    be = _backend(layer, x, W, b, keep)
    x, W, b = _arr(x), _arr(W), _opt(b)
    stride, pad, groups = meta.conv(layer, x, W, b, stride, pad, groups)
    meta.keep_buffer(layer, keep, x)
    return be.conv2d_forward(x, W, b, stride, pad, groups, compute_dtype(layer, x, W, b), keep)


def conv2d_backward(dout, x, W, b=None, stride=1, pad=0, layer="Convolution", need_dx=True,
                    groups=1):
    """(dx, dW, db) of conv2d_forward for dout (N, FN, OH, OW), in the promotion of all inputs;
    dx is None (not computed) when need_dx is false."""
    be = _backend(layer, x, W, b, dout)
    x, W, b, dout = _arr(x), _arr(W), _opt(b), _arr(dout)
    stride, pad, groups = meta.conv(layer, x, W, b, stride, pad, groups)
    meta.dout_shape(layer, dout, meta.conv_out(x, W, stride, pad))
    return be.conv2d_backward(dout, x, W, stride, pad, need_dx, groups,
                              compute_dtype(layer, dout, x, W, b))


def _conv_pool(layer, x, W, b, stride, pad, pool_h, pool_w, pool_stride):
    """Checked (stride, pad, (pool_h, pool_w, pool_stride)) of a convolution and the max
    pooling (no padding) of its output."""
    stride, pad, _ = meta.conv(layer, x, W, b, stride, pad, 1)
    FH, FW, pool_stride, _ = meta.window("Pooling", pool_h, pool_w, pool_stride, 0)
    _, _, OH, OW = meta.conv_out(x, W, stride, pad)
    if FH > OH or FW > OW:
        raise ValueError(f"Pooling: window {FH}x{FW} is larger than the convolution's output "
                         f"{OH}x{OW}")
    return stride, pad, (FH, FW, pool_stride)


def conv2d_relu_maxpool_forward(x, W, b, stride=1, pad=0, pool_h=2, pool_w=2, pool_stride=2,
                                layer="Convolution", keep=None):
    """(out, arg) of the book's Convolution -> Relu -> Pooling (pool pad 0) in one pass over
    each image, whose convolution output never leaves the cache: what
    ``maxpool2d_forward(relu_forward(conv2d_forward(x, W, b, stride, pad))[0], pool_h, pool_w,
    pool_stride)`` returns. keep as for conv2d_forward. CPU only."""
    _host_only(layer, x, W, b, keep)
    x, W, b = _arr(x), _arr(W), _opt(b)
    stride, pad, window = _conv_pool(layer, x, W, b, stride, pad, pool_h, pool_w, pool_stride)
    meta.keep_buffer(layer, keep, x)
    return cpu.conv2d_relu_maxpool_forward(x, W, b, stride, pad, window,
                                           compute_dtype(layer, x, W, b), keep)


def conv2d_relu_maxpool_backward(dout, arg, out, x, W, b=None, stride=1, pad=0, pool_h=2,
                                 pool_w=2, pool_stride=2, layer="Convolution", need_dx=True):
    """(dx, dW, db) of conv2d_relu_maxpool_forward from dout, the gradient of its out, and its
    arg and out (a window passes its gradient where out, the ReLU's maximum, is not 0); dx is
    None when need_dx is false. CPU only."""
    _host_only(layer, dout, arg, out, x, W, b)
    x, W, b, dout, arg, out = _arr(x), _arr(W), _opt(b), _arr(dout), _arr(arg), _arr(out)
    stride, pad, window = _conv_pool(layer, x, W, b, stride, pad, pool_h, pool_w, pool_stride)
    N, FN, OH, OW = meta.conv_out(x, W, stride, pad)
    FH, FW, S = window
    meta.dout_shape("Pooling", dout, (N, FN) + meta.out_hw(OH, OW, FH, FW, S, 0))
    meta.pool_arg("Pooling", arg, dout)
    if meta.shape_of(out) != meta.shape_of(dout):
        raise ValueError(f"Pooling.backward: out has shape {meta.shape_of(out)} but dout has "
                         f"shape {meta.shape_of(dout)}")
    return cpu.conv2d_relu_maxpool_backward(dout, arg, out, x, W, stride, pad, window, need_dx,
                                            compute_dtype(layer, dout, x, W, b))


def maxpool2d_forward(x, pool_h, pool_w, stride=1, pad=0, layer="Pooling"):
    """(out, arg): max over each window (padding counts as -inf, NaN propagates like np.max)
    and the window-local index fh*pool_w + fw of each maximum, both (N, C, OH, OW); arg is int32.
    """
    return _over_images("maxpool2d_forward", x, pool_h, pool_w, stride, pad, layer)


def maxpool2d_backward(dout, arg, x_shape, pool_h, pool_w, stride=1, pad=0, layer="Pooling"):
    """dx of shape x_shape: each dout routed to its window's argmax (overlaps add up)."""
    be = _backend(layer, dout, arg)
    dout, arg = _arr(dout), _arr(arg)
    shape, FH, FW, stride, pad = meta.pool_dout(layer, dout, x_shape, pool_h, pool_w, stride,
                                                pad)
    dt = compute_dtype(layer, dout)
    meta.pool_arg(layer, arg, dout)
    return be.maxpool2d_backward(dout, arg, shape, FH, FW, stride, pad, dt)


def avgpool2d_forward(x, pool_h, pool_w, stride=1, pad=0, layer="AvgPooling"):
    """Mean of each window, padding counted as zeros (divisor always pool_h*pool_w)."""
    return _over_images("avgpool2d_forward", x, pool_h, pool_w, stride, pad, layer)


def avgpool2d_backward(dout, x_shape, pool_h, pool_w, stride=1, pad=0, layer="AvgPooling"):
    """dx of shape x_shape: each pixel gets dout / (pool_h*pool_w) from every window over it."""
    be = _backend(layer, dout)
    dout = _arr(dout)
    shape, FH, FW, stride, pad = meta.pool_dout(layer, dout, x_shape, pool_h, pool_w, stride,
                                                pad)
    return be.avgpool2d_backward(dout, shape, FH, FW, stride, pad, compute_dtype(layer, dout))


# ---------------------------------------------------------------- affine, softmax, batchnorm
# (dense layers: fastnn.layers Affine / SoftmaxWithLoss / BatchNormalization, and the vol. 2
# time layers that reshape to 2-D and call these)

def affine_forward(x, W, b, layer="Affine"):
    """out = x.reshape(N, -1) @ W + b, shape (N, M), in the promoted dtype of x, W, b."""
    be = _backend(layer, x, W, b)
    x2, W, b = flatten_batch(layer, x), _arr(W), _arr(b)
    dt = compute_dtype(layer, x2, W, b)
    meta.affine(layer, x, x2, W, b)
    return be.affine_forward(x2, W, b, dt)


def affine_backward(dout, x, W, layer="Affine", need_dx=True):
    """(dx, dW, db) of out = x.reshape(N, -1) @ W + b; dx has x's shape, or is None (not
    computed) when need_dx is false. Each result has the dtype NumPy gives the book's
    expression (dout @ W.T, x.T @ dout, dout.sum(axis=0))."""
    be = _backend(layer, dout, x, W)
    x = _arr(x)
    x2, W, dout = flatten_batch(layer, x), _arr(W), _arr(dout)
    dt = compute_dtype(layer, dout, x2, W)
    meta.affine_backward(layer, dout, x, x2, W)
    dx, dW, db = be.affine_backward(dout, x2, W, need_dx, dt)
    if dx is not None:
        dx = dx.reshape(x.shape).astype(compute_dtype(layer, dout, W), copy=False)
    return (dx,
            dW.astype(compute_dtype(layer, x2, dout), copy=False),
            db.astype(compute_dtype(layer, dout), copy=False))


def softmax(x, layer="softmax"):
    """Softmax over the last axis (max-subtracted), in x's float dtype."""
    be = _backend(layer, x)
    x = _arr(x)
    meta.softmax(layer, x)
    return be.softmax(x, compute_dtype(layer, x))


def softmax_cross_entropy_forward(x, t, eps=1e-7, ignore_label=None, layer="SoftmaxWithLoss"):
    """(y, loss) for logits x (N, C): y = softmax(x) and
    loss = -sum log(y[i, t_i] + eps) / (number of samples whose label is not ignore_label).
    t: integer labels (N,) or one-hot (N, C) (labels = argmax, as the book does). The book's
    vol. 1 uses eps=1e-7; vol. 2's TimeSoftmaxWithLoss uses eps=0 and ignore_label=-1.
    The loss is a scalar of y's dtype (0-d on a device); NaN when no sample counts (an empty
    batch). On a device, a label outside [0, C) gives a NaN loss (checking it would need a host
    round trip)."""
    be = _backend(layer, x, t)
    x, t = _arr(x), _arr(t)
    dt = compute_dtype(layer, x)
    meta.logits(layer, x)
    dense = meta.labels(layer, t, x.shape)
    return be.softmax_cross_entropy_forward(x, t, dense, eps, ignore_label, dt, layer)


def softmax_cross_entropy_backward(y, t, dout=1, ignore_label=None, out=None,
                                   layer="SoftmaxWithLoss"):
    """dx = (y - t) * dout / count for the y of the forward (N, C): count = samples not ignored
    (N without ignore_label), rows with ignore_label get 0. t as in the forward; with dense t
    the difference uses t itself (dtype NumPy's promotion of y and t). out: an array of y's
    shape and dtype (y itself is allowed) to write dx into, for integer labels."""
    be = _backend(layer, y, t)
    y, t = _arr(y), _arr(t)
    meta.logits(layer, y, backward=True)
    if hasattr(dout, "__cuda_array_interface__"):
        dout = dout.get()  # one number back to the host for the scale
    d = meta.scalar_dout(layer, dout)
    dense = meta.labels(layer, t, y.shape)
    if dense and ignore_label is None:
        if out is not None:
            raise ValueError(f"{layer}.backward: out= needs integer labels, not one-hot t")
        dt = compute_dtype(layer, y, t)
    else:
        dt = compute_dtype(layer, y)
    return be.softmax_cross_entropy_backward(y, t, dense, d, ignore_label, out, dt, layer)


def _batchnorm_inputs(layer, x, gamma, beta, running_mean, running_var):
    """(backend, x, x as (N, D), running_mean, running_var, compute dtype), checked; None
    running averages become float64 zeros, as the book starts them."""
    be = _backend(layer, x, gamma, beta, running_mean, running_var)
    x = _arr(x)
    N, D = meta.batchnorm(layer, x)
    if running_mean is None:
        running_mean = np.zeros(D)
    if running_var is None:
        running_var = np.zeros(D)
    meta.batchnorm_params(layer, D, x.shape, gamma=gamma, beta=beta, running_mean=running_mean,
                          running_var=running_var)
    x2 = x.reshape(N, D)
    dt = compute_dtype(layer, x2, gamma, beta, running_mean, running_var)
    return be, x, x2, running_mean, running_var, dt


def batchnorm_forward_train(x, gamma, beta, running_mean=None, running_var=None, momentum=0.9,
                            eps=BATCHNORM_EPS, layer="BatchNormalization"):
    """Training forward over x (N, D) or (N, C, H, W) (flattened to (N, C*H*W) as the book
    does). Returns (out (x.shape), xc (N, D), xn (N, D), std (D,), running_mean, running_var)
    with the running averages as new arrays (None starts them at float64 zeros, as the book).
    An empty batch leaves the running averages unchanged."""
    be, x, x2, running_mean, running_var, dt = _batchnorm_inputs(layer, x, gamma, beta,
                                                                running_mean, running_var)
    out, xc, xn, std, rm, rv = be.batchnorm_forward_train(x2, gamma, beta, running_mean,
                                                          running_var, momentum, eps, dt)
    # Result dtypes of the book's expressions under NumPy promotion.
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
    be, x, x2, running_mean, running_var, dt = _batchnorm_inputs(layer, x, gamma, beta,
                                                                running_mean, running_var)
    out = be.batchnorm_forward_infer(x2, gamma, beta, running_mean, running_var, eps, dt)
    return out.reshape(x.shape)


def batchnorm_backward(dout, gamma, xc, xn, std, layer="BatchNormalization"):
    """(dx (dout.shape), dgamma (D,), dbeta (D,)) from the training forward's xc, xn, std;
    dout has the forward's output shape (flattened to (N, D) like x)."""
    be = _backend(layer, dout, gamma, xc, xn, std)
    dout = _arr(dout)
    N, D = meta.batchnorm_backward(layer, dout, gamma, xc)
    d2 = dout.reshape(N, D)
    dt = compute_dtype(layer, d2, gamma, xc, xn, std)
    dx, dgamma, dbeta = be.batchnorm_backward(d2, gamma, xc, xn, std, dt)
    return dx.reshape(dout.shape), dgamma, dbeta


# Per-channel normalization of x (N, C, ...) (CPU kernels only): channel axis 1, the axes after
# it flattened to S, so the kernels see (N, C, S).

def channel_batchnorm_forward(x, gamma, beta, eps, layer="BatchNorm"):
    """Batch norm per channel of x (N, C, ...) in training: statistics of channel c over the
    batch and the spatial axes. Returns (out (x.shape), xn (x.shape), mean (C,), var (C,),
    inv_std (C,)); var is biased, inv_std = 1 / sqrt(var + eps)."""
    _host_only(layer, x, gamma, beta)
    x = np.asarray(x)
    N, C, S = meta.channels(layer, x)
    meta.channel_params(layer, C, gamma=gamma, beta=beta)
    x3 = x.reshape(N, C, S)
    out, xn, mean, var, inv_std = cpu.channel_batchnorm_forward(
        x3, gamma, beta, eps, compute_dtype(layer, x3, gamma, beta))
    return out.reshape(x.shape), xn.reshape(x.shape), mean, var, inv_std


def channel_batchnorm_backward(dout, xn, gamma, inv_std, layer="BatchNorm"):
    """(dx, dgamma, dbeta) of channel_batchnorm_forward from its xn and inv_std."""
    _host_only(layer, dout)
    dout = np.asarray(dout)
    meta.same_shape(layer, dout, xn, "output")
    shape = meta.channels(layer, dout)
    d3 = dout.reshape(shape)
    dx, dgamma, dbeta = cpu.channel_batchnorm_backward(
        d3, np.reshape(xn, shape), gamma, inv_std, compute_dtype(layer, d3, xn, gamma))
    return dx.reshape(dout.shape), dgamma, dbeta


def channel_affine(x, scale, shift, layer="BatchNorm"):
    """scale[c] * x + shift[c] over channel axis 1 of x (N, C, ...)."""
    _host_only(layer, x, scale, shift)
    x = np.asarray(x)
    N, C, S = meta.channels(layer, x)
    meta.channel_params(layer, C, scale=scale, shift=shift)
    x3 = x.reshape(N, C, S)
    out = cpu.channel_affine(x3, scale, shift, compute_dtype(layer, x3, scale, shift))
    return out.reshape(x.shape)


def group_norm_forward(x, gamma, beta, groups, eps=1e-5, layer="GroupNorm"):
    """Group norm of x (N, C, ...): per sample, statistics over each group of C / groups
    consecutive channels and the spatial axes (biased variance), then gamma[c] * xn + beta[c].
    Returns (out (x.shape), xn (x.shape), inv_std (N, groups))."""
    _host_only(layer, x, gamma, beta)
    x = np.asarray(x)
    N, C, S = meta.channels(layer, x)
    groups = meta.norm_groups(layer, C, groups)
    meta.channel_params(layer, C, gamma=gamma, beta=beta)
    x3 = x.reshape(N, C, S)
    out, xn, inv_std = cpu.group_norm_forward(x3, gamma, beta, groups, eps,
                                              compute_dtype(layer, x3, gamma, beta))
    return out.reshape(x.shape), xn.reshape(x.shape), inv_std.reshape(N, groups)


def group_norm_backward(dout, xn, gamma, inv_std, groups, layer="GroupNorm"):
    """(dx, dgamma, dbeta) of group_norm_forward from its xn and inv_std."""
    _host_only(layer, dout)
    dout = np.asarray(dout)
    meta.same_shape(layer, dout, xn, "output")
    shape = meta.channels(layer, dout)
    groups = meta.norm_groups(layer, shape[1], groups)
    d3 = dout.reshape(shape)
    dx, dgamma, dbeta = cpu.group_norm_backward(d3, np.reshape(xn, shape), gamma, inv_std,
                                                groups, compute_dtype(layer, d3, xn, gamma))
    return dx.reshape(dout.shape), dgamma, dbeta


# ---------------------------------------------------------------- optim

def check_param(opt, key, p, g):
    """Validate one (parameter, gradient) pair; return the gradient in the parameter's dtype
    (on the parameter's device)."""
    if on_device(p) or on_device(g):
        cp = _device.cupy_for(opt)
        meta.param(opt, key, p, g, cp.ndarray, "CuPy array when its gradient is one",
                   contiguous=True)
        return _cuda.gradient(p, g)
    g = np.asarray(g)
    meta.param(opt, key, p, g, np.ndarray, "NumPy array")
    return g.astype(p.dtype, copy=False)


# The updates take parameters and gradients checked by check_param (so a gradient lives where
# its parameter does); p and its state are updated in place.

def _updating(p):
    return _cuda if _CUDA_BUILT and on_device(p) else cpu


def sgd_update(p, g, lr):
    _updating(p).sgd_update(p, g, lr)


def momentum_update(p, v, g, lr, momentum):
    _updating(p).momentum_update(p, v, g, lr, momentum)


def nesterov_update(p, v, g, lr, momentum):
    _updating(p).nesterov_update(p, v, g, lr, momentum)


def adagrad_update(p, h, g, lr, eps):
    _updating(p).adagrad_update(p, h, g, lr, eps)


def rmsprop_update(p, h, g, lr, decay_rate, eps):
    _updating(p).rmsprop_update(p, h, g, lr, decay_rate, eps)


def adam_update(p, m, v, g, lr_t, beta1, beta2, eps):
    _updating(p).adam_update(p, m, v, g, lr_t, beta1, beta2, eps)


def update_list(name, params, states, grads, hyper):
    """One optimizer step ``name`` ('sgd', 'momentum', ..., 'adam') for CuPy parameters of one
    device and dtype, in one launch: params[i] with its state arrays states[i] and gradient
    grads[i]."""
    _device.cupy_for(name)
    _cuda.update_list(name, params, states, grads, hyper)


# ---------------------------------------------------------------- recurrent (rnn, lstm, gru)
# Sequences are time-major (T, N, D). torch_layout=False: the book's Wx (D, gH), Wh (H, gH) and
# gate orders (LSTM f, g, i, o; GRU z, r, n); True: torch.nn's weight_ih (gH, D), weight_hh
# (gH, H), LSTM i, f, g, o and GRU r, z, n (see csrc/cpu/rnn.h).

def _recurrent(layer, arrays):
    """(backend, ``arrays`` (a dict, None entries kept) as arrays, compute dtype)."""
    be = _backend(layer, *[a for a in arrays.values() if a is not None])
    arrays = {k: _opt(a) for k, a in arrays.items()}
    return be, arrays, compute_dtype(layer, *arrays.values())


def rnn_forward(x, h0, Wx, Wh, b, relu=False, torch_layout=False, layer="RNN"):
    """Elman RNN over a sequence: returns hs (T, N, H)."""
    be, a, dt = _recurrent(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b))
    sizes = meta.rnn(layer, a, torch_layout)
    return be.rnn_forward(a, relu, torch_layout, dt, sizes)


def rnn_backward(x, h0, Wx, Wh, hs, dhs, dhn, relu=False, torch_layout=False, layer="RNN"):
    """Returns (dx, dh0, dWx, dWh, db) given the gradients on hs and on the final state."""
    be, a, dt = _recurrent(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, hs=hs, dhs=dhs, dhn=dhn))
    sizes = meta.rnn(layer, a, torch_layout, backward=True)
    return be.rnn_backward(a, relu, torch_layout, dt, sizes)


def lstm_forward(x, h0, c0, Wx, Wh, b, Whr=None, torch_layout=False, layer="LSTM"):
    """LSTM over a sequence: returns (hs, cs, gates, hfull); hfull is None without Whr."""
    be, a, dt = _recurrent(layer, dict(x=x, h0=h0, c0=c0, Wx=Wx, Wh=Wh, b=b, Whr=Whr))
    sizes = meta.lstm(layer, a, torch_layout)
    return be.lstm_forward(a, torch_layout, dt, sizes)


def lstm_backward(x, h0, c0, Wx, Wh, Whr, hs, cs, gates, hfull, dhs, dhn, dcn,
                  torch_layout=False, layer="LSTM"):
    """Returns (dx, dh0, dc0, dWx, dWh, db, dWhr); dWhr is None without Whr."""
    be, a, dt = _recurrent(layer, dict(x=x, h0=h0, c0=c0, Wx=Wx, Wh=Wh, Whr=Whr, hs=hs, cs=cs,
                                       gates=gates, hfull=hfull, dhs=dhs, dhn=dhn, dcn=dcn))
    sizes = meta.lstm(layer, a, torch_layout, backward=True)
    return be.lstm_backward(a, torch_layout, dt, sizes)


def gru_forward(x, h0, Wx, Wh, bx, bh=None, torch_layout=False, layer="GRU"):
    """GRU over a sequence: returns (hs, gates, aux) (aux is what backward needs)."""
    be, a, dt = _recurrent(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, bx=bx, bh=bh))
    sizes = meta.gru(layer, a, torch_layout)
    return be.gru_forward(a, torch_layout, dt, sizes)


def gru_backward(x, h0, Wx, Wh, hs, gates, aux, dhs, dhn, torch_layout=False, layer="GRU"):
    """Returns (dx, dh0, dWx, dWh, dbx, dbh); dbh is None in the book's layout."""
    be, a, dt = _recurrent(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, hs=hs, gates=gates, aux=aux,
                                       dhs=dhs, dhn=dhn))
    sizes = meta.gru(layer, a, torch_layout, backward=True)
    return be.gru_backward(a, torch_layout, dt, sizes)


# ---------------------------------------------------------------- embedding, attention (vol. 2)
# Word ids index the rows of an embedding matrix W (V, D). Device arrays run the book's NumPy
# expressions on CuPy (ops/cuda.py), which needs CuPy but no CUDA build of fastnn.

def _any_on_device(*arrays):
    return any(on_device(a) for a in arrays)


def embedding_forward(W, idx, layer="Embedding"):
    """out = W[idx] for word ids idx of any integer shape: shape idx.shape + (D,), W's dtype.
    Ids outside [0, V) (negative ones included) raise IndexError."""
    meta.embedding_matrix(layer, W)
    if _any_on_device(W, idx):
        return _cuda.embedding_forward(W, idx, layer)
    return cpu.embedding_forward(W, cpu.word_ids(layer, idx), layer)


def embedding_backward(dW, idx, dout, layer="Embedding"):
    """The book's Embedding.backward: ``dW[...] = 0; np.add.at(dW, idx, dout)``, in place
    (repeated ids add up, in the order NumPy adds them); returns dW. dout has shape
    idx.shape + (D,) and is cast to dW's dtype, as np.add.at does."""
    _, D = meta.embedding_matrix(layer + ".backward", dW, "dW")
    if _any_on_device(dW, idx, dout):
        meta.dout_shape(layer, dout, meta.shape_of(idx) + (D,))
        return _cuda.embedding_backward(dW, idx, dout, layer)
    ids = cpu.word_ids(layer, idx)
    meta.dout_shape(layer, dout, ids.shape + (D,))
    compute_dtype(layer, dW, dout)
    return cpu.embedding_backward(dW, ids, dout, layer)


def embedding_dot_forward(W, idx, h, layer="EmbeddingDot"):
    """Negative sampling's score: out (N,) = sum(W[idx] * h, axis=1) for ids idx (N,) and
    h (N, D), in NumPy's promotion of W and h. Nothing (N, D) is kept: the backward reads W."""
    meta.embedding_dot(layer, W, idx, h)
    if _any_on_device(W, idx, h):
        return _cuda.embedding_dot_forward(W, idx, h, None, layer)
    ids = cpu.word_ids(layer, idx)
    return cpu.embedding_dot_forward(W, ids, h, compute_dtype(layer, W, h), layer)


def embedding_dot_backward(dW, idx, h, dout, W, layer="EmbeddingDot"):
    """The book's EmbeddingDot.backward for dout (N,): dW (its Embedding's grad, updated in
    place) = 0 then np.add.at(dW, idx, dout[:, None] * h); returns dh = dout[:, None] * W[idx]
    (W as it is now: the book keeps W[idx] from the forward, the same unless W is edited in
    place between forward and backward)."""
    meta.embedding_dot_backward(layer, dW, idx, h, dout, W)
    if _any_on_device(dW, idx, h, dout, W):
        return _cuda.embedding_dot_backward(dW, idx, h, dout, W, None, layer)
    ids = cpu.word_ids(layer, idx)
    return cpu.embedding_dot_backward(dW, ids, h, dout, W, compute_dtype(layer, W, h, dout),
                                      layer)


def attention_forward(hs_enc, hs_dec, layer="TimeAttention"):
    """The book's TimeAttention forward over every decoder step at once, for encoder states
    hs_enc (N, Te, H) and decoder states hs_dec (N, Td, H): returns (out (N, Td, H),
    a (N, Td, Te)) with a[:, t] = softmax over Te of sum(hs_enc * hs_dec[:, t, None], axis=2)
    (AttentionWeight) and out[:, t] = sum(hs_enc * a[:, t, :, None], axis=1) (WeightSum)."""
    meta.attention(layer, hs_enc, hs_dec)
    be = _backend(layer, hs_enc, hs_dec)
    return be.attention_forward(hs_enc, hs_dec, compute_dtype(layer, hs_enc, hs_dec))


def attention_backward(hs_enc, hs_dec, a, dout, layer="TimeAttention"):
    """(dhs_enc, dhs_dec) of attention_forward for dout (N, Td, H) and the forward's a: the
    book's per-step AttentionWeight and WeightSum backward, dhs_enc summed over the decoder
    steps as its TimeAttention does."""
    meta.attention_backward(layer, hs_enc, hs_dec, a, dout)
    be = _backend(layer, hs_enc, hs_dec, a, dout)
    return be.attention_backward(hs_enc, hs_dec, a, dout,
                                 compute_dtype(layer, hs_enc, hs_dec, a, dout))
