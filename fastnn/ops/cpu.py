"""The NumPy backend: arrays made C-contiguous in the compute dtype, then one ``_C`` kernel.

Called by the op front (``fastnn.ops``) after ``ops.meta`` checked the shapes and chose the
dtype ``dt``; nothing here checks again (the C++ bindings keep only the guards that protect
memory). Functions share names and parameters with ``ops/cuda.py``.
"""

import numpy as np

from .. import _C
from .meta import FLOATS, compute_dtype


def as_compute(a, dtype):
    """``a`` as a C-contiguous array of ``dtype``; no copy when it already is one."""
    return np.ascontiguousarray(a, dtype=dtype)


def _opt(a, dt):
    return None if a is None else as_compute(a, dt)


# ---------------------------------------------------------------- activations

def relu_forward(x, dt):
    return _C.relu_forward(as_compute(x, dt))


def relu_backward(dout, mask, dt):
    """Zero dout where the forward input was <= 0, in place when dout allows it."""
    in_place = (type(dout) is np.ndarray and dout.dtype == dt and dout.flags.c_contiguous
                and dout.flags.writeable)
    d = dout if in_place else as_compute(dout, dt)
    if not in_place and d is dout:
        d = d.copy()
    _C.relu_backward(d, mask, d)
    return d


def unary_forward(name, x, dt):
    return getattr(_C, f"{name}_forward")(as_compute(x, dt))


def unary_backward(name, dout, kept, dt, layer):
    """Backward of ``name`` from dout and what the forward kept (its output, or for SiLU its
    input)."""
    return getattr(_C, f"{name}_backward")(as_compute(dout, dt), as_compute(kept, dt), layer)


# ---------------------------------------------------------------- im2col, convolution, pooling

def im2col(x, FH, FW, stride, pad, dt):
    return _C.im2col(as_compute(x, dt), FH, FW, stride, pad)


def col2im(col, shape, FH, FW, stride, pad, dt):
    return _C.col2im(as_compute(col, dt), list(shape), FH, FW, stride, pad)


def _keeping_x(kernel, x, dt, keep):
    """kernel(x in dt, keep or None), keep receiving a copy of x: the kernel makes it in its
    pass over x when it can; otherwise NumPy does, after the kernel has read x (keep may
    overlap it)."""
    xc = as_compute(x, dt)
    fused = (keep is not None and xc is x and keep.flags.c_contiguous
             and not np.may_share_memory(keep, x))
    out = kernel(xc, keep if fused else None)
    if keep is not None and not fused:
        np.copyto(keep, x)
    return out


def conv2d_forward(x, W, b, stride, pad, groups, dt, keep=None):
    bc = None if b is None else as_compute(b, dt).reshape(-1)
    Wc = as_compute(W, dt)
    return _keeping_x(lambda xc, kp: _C.conv2d_forward(xc, Wc, bc, stride, pad, groups, kp),
                      x, dt, keep)


def conv2d_backward(dout, x, W, stride, pad, need_dx, groups, dt):
    return _C.conv2d_backward(as_compute(dout, dt), as_compute(x, dt), as_compute(W, dt), stride,
                              pad, need_dx, groups)


def conv2d_relu_maxpool_forward(x, W, b, stride, pad, window, dt, keep=None):
    bc = None if b is None else as_compute(b, dt).reshape(-1)
    Wc = as_compute(W, dt)
    return _keeping_x(
        lambda xc, kp: _C.conv2d_relu_maxpool_forward(xc, Wc, bc, stride, pad, *window, kp),
        x, dt, keep)


def conv2d_relu_maxpool_backward(dout, arg, out, x, W, stride, pad, window, need_dx, dt):
    return _C.conv2d_relu_maxpool_backward(
        as_compute(dout, dt), np.ascontiguousarray(arg, dtype=np.int32), as_compute(out, dt),
        as_compute(x, dt), as_compute(W, dt), stride, pad, *window, need_dx)


def maxpool2d_forward(x, FH, FW, stride, pad, dt):
    return _C.maxpool2d_forward(as_compute(x, dt), FH, FW, stride, pad)


def maxpool2d_backward(dout, arg, shape, FH, FW, stride, pad, dt):
    return _C.maxpool2d_backward(as_compute(dout, dt), np.ascontiguousarray(arg, dtype=np.int32),
                                 list(shape), FH, FW, stride, pad)


def avgpool2d_forward(x, FH, FW, stride, pad, dt):
    return _C.avgpool2d_forward(as_compute(x, dt), FH, FW, stride, pad)


def avgpool2d_backward(dout, shape, FH, FW, stride, pad, dt):
    return _C.avgpool2d_backward(as_compute(dout, dt), list(shape), FH, FW, stride, pad)


# ---------------------------------------------------------------- affine, softmax, batchnorm

def _affine_weights(W, dt):
    """(array for the kernel, W_trans): a transposed view of a C-contiguous array (the book's
    tied weights, TimeAffine(embed_W.T, b)) goes as that array, read in place; anything else as
    a C-contiguous copy in dt when it is not one already."""
    if W.dtype == dt and not W.flags.c_contiguous and W.T.flags.c_contiguous and W.size:
        return W.T, True
    return as_compute(W, dt), False


def affine_forward(x2, W, b, dt):
    Wk, W_trans = _affine_weights(W, dt)
    return _C.affine_forward(as_compute(x2, dt), Wk, as_compute(b, dt), W_trans)


def affine_backward(dout, x2, W, need_dx, dt):
    """(dx (N, D) or None, dW, db) in dt."""
    Wk, W_trans = _affine_weights(W, dt)
    dx, dW, db = _C.affine_backward(as_compute(dout, dt), as_compute(x2, dt), Wk, need_dx,
                                    W_trans)
    if W_trans:
        dW = dW.T  # computed as dW^T (M, D): a view laid out like W
    return dx, dW, db


def softmax(x, dt):
    return _C.softmax_forward(as_compute(x, dt))


_INT64_MAX = np.iinfo(np.int64).max


def _labels(layer, t, dense, n_classes):
    """Class indices (int64, (N,)) of checked labels t (argmax of dense t)."""
    if dense:
        return np.ascontiguousarray(np.argmax(t, axis=1), dtype=np.int64)
    if t.dtype == np.uint64 and t.size and t.max() > _INT64_MAX:
        raise IndexError(f"{layer}: label {t.max()} is out of range for {n_classes} classes")
    # Exactly C-contiguous int64: pybind11 would otherwise pick an overload by converting x.
    return np.ascontiguousarray(t, dtype=np.int64)


def softmax_cross_entropy_forward(x, t, dense, eps, ignore_label, dt, layer):
    """(y, loss) with the loss a NumPy scalar of dt; NaN when no sample counts."""
    labels = _labels(layer, t, dense, x.shape[1])
    y, total, count = _C.softmax_cross_entropy_forward(as_compute(x, dt), labels, float(eps),
                                                       ignore_label, layer)
    return y, dt.type(total / count if count else np.nan)


def softmax_cross_entropy_backward(y, t, dense, dout, ignore_label, out, dt, layer):
    """dx = (y - t) * dout / count; dense t (without ignore_label) is used as it is, in dt."""
    labels = _labels(layer, t, dense, y.shape[1])
    count = (labels.shape[0] if ignore_label is None
             else int(np.count_nonzero(labels != ignore_label)))
    scale = dout / count if count else np.nan
    if dense and ignore_label is None:
        return _C.softmax_cross_entropy_backward_dense(as_compute(y, dt), as_compute(t, dt),
                                                       scale, layer)
    if out is not None and (type(out) is not np.ndarray or out.dtype != dt
                            or out.shape != y.shape or not out.flags.c_contiguous
                            or not out.flags.writeable):
        raise ValueError(f"{layer}.backward: out must be a writeable C-contiguous {dt} array "
                         f"of shape {y.shape}")
    return _C.softmax_cross_entropy_backward(as_compute(y, dt), labels, scale, ignore_label, out,
                                             layer)


def batchnorm_forward_train(x2, gamma, beta, running_mean, running_var, momentum, eps, dt):
    """(out, xc, xn, std, running_mean, running_var), all (N, D) or (D,) in dt."""
    return _C.batchnorm_forward_train(
        as_compute(x2, dt), as_compute(gamma, dt), as_compute(beta, dt),
        as_compute(running_mean, dt), as_compute(running_var, dt), float(momentum), float(eps))


def batchnorm_forward_infer(x2, gamma, beta, running_mean, running_var, eps, dt):
    return _C.batchnorm_forward_infer(as_compute(x2, dt), as_compute(gamma, dt),
                                      as_compute(beta, dt), as_compute(running_mean, dt),
                                      as_compute(running_var, dt), float(eps))


def batchnorm_backward(d2, gamma, xc, xn, std, dt):
    return _C.batchnorm_backward(as_compute(d2, dt), as_compute(gamma, dt), as_compute(xc, dt),
                                 as_compute(xn, dt), as_compute(std, dt))


def channel_batchnorm_forward(x3, gamma, beta, eps, dt):
    return _C.channel_batchnorm_forward(as_compute(x3, dt), as_compute(gamma, dt),
                                        as_compute(beta, dt), float(eps))


def channel_batchnorm_backward(d3, xn3, gamma, inv_std, dt):
    return _C.channel_batchnorm_backward(as_compute(d3, dt), as_compute(xn3, dt),
                                         as_compute(gamma, dt), as_compute(inv_std, dt))


def channel_affine(x3, scale, shift, dt):
    return _C.channel_affine(as_compute(x3, dt), as_compute(scale, dt), as_compute(shift, dt))


def group_norm_forward(x3, gamma, beta, groups, eps, dt):
    return _C.group_norm_forward(as_compute(x3, dt), as_compute(gamma, dt), as_compute(beta, dt),
                                 groups, float(eps))


def group_norm_backward(d3, xn3, gamma, inv_std, groups, dt):
    return _C.group_norm_backward(as_compute(d3, dt), as_compute(xn3, dt), as_compute(gamma, dt),
                                  as_compute(np.ravel(inv_std), dt), groups)


# ---------------------------------------------------------------- optim

def _fused_ok(p, *state):
    """True when ``p`` and its optimizer ``state`` can be updated in place by a fused kernel:
    C-contiguous writeable NumPy arrays of one float dtype (the kernels refuse anything else,
    which they could only update as a temporary copy)."""
    return all(type(a) is np.ndarray and a.dtype == p.dtype and a.flags.c_contiguous
               and a.flags.writeable for a in (p, *state)) and p.dtype in FLOATS


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

# ``sizes`` (T, N, D, H[, P]) from ops.meta are for the CUDA twins; the bindings read shapes.

def arrays(a, dt):
    """The dict ``a`` with every array C-contiguous in dt (None entries kept)."""
    return {k: _opt(v, dt) for k, v in a.items()}


def rnn_forward(a, relu, torch_layout, dt, sizes):
    a = arrays(a, dt)
    return _C.rnn_forward(a["x"], a["h0"], a["Wx"], a["Wh"], a["b"], relu, torch_layout)


def rnn_backward(a, relu, torch_layout, dt, sizes):
    a = arrays(a, dt)
    return _C.rnn_backward(a["x"], a["h0"], a["Wx"], a["Wh"], a["hs"], a["dhs"], a["dhn"], relu,
                           torch_layout)


def lstm_forward(a, torch_layout, dt, sizes):
    a = arrays(a, dt)
    return _C.lstm_forward(a["x"], a["h0"], a["c0"], a["Wx"], a["Wh"], a["b"], a["Whr"],
                           torch_layout)


def lstm_backward(a, torch_layout, dt, sizes):
    a = arrays(a, dt)
    return _C.lstm_backward(a["x"], a["h0"], a["c0"], a["Wx"], a["Wh"], a["Whr"], a["hs"],
                            a["cs"], a["gates"], a["hfull"], a["dhs"], a["dhn"], a["dcn"],
                            torch_layout)


def gru_forward(a, torch_layout, dt, sizes):
    a = arrays(a, dt)
    return _C.gru_forward(a["x"], a["h0"], a["Wx"], a["Wh"], a["bx"], a["bh"], torch_layout)


def gru_backward(a, torch_layout, dt, sizes):
    a = arrays(a, dt)
    return _C.gru_backward(a["x"], a["h0"], a["Wx"], a["Wh"], a["hs"], a["gates"], a["aux"],
                           a["dhs"], a["dhn"], torch_layout)


# ---------------------------------------------------------------- embedding, attention (vol. 2)
# idx: word ids from word_ids (C-contiguous int64).

def word_ids(layer, idx):
    """idx (any shape) as C-contiguous int64; IndexError for ids that are not integers (as
    NumPy's indexing says) and for uint64 ids past int64 (out of bounds for any W)."""
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise IndexError(f"{layer}: word ids must be integers, got an array of dtype "
                         f"{idx.dtype} (idx.shape={idx.shape})")
    if idx.dtype == np.uint64 and idx.size and idx.max() > _INT64_MAX:
        raise IndexError(f"{layer}: index {idx.max()} is out of bounds for W")
    return np.asarray(idx, dtype=np.int64, order="C")  # 0-d stays 0-d


def _check_ids(layer, ids, V):
    """The kernels' bounds check, for the paths that index with NumPy."""
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise IndexError(f"{layer}: index {bad} is out of bounds for W with {V} rows (word ids "
                         f"must lie in [0, {V}))")


def _writes_in_place(a, dt):
    return (type(a) is np.ndarray and a.dtype == dt and a.flags.c_contiguous
            and a.flags.writeable)


def embedding_forward(W, idx, layer):
    W = np.asarray(W)
    if W.dtype not in FLOATS:
        compute_dtype(layer, W)  # TypeError for complex, object, strings
        _check_ids(layer, idx, W.shape[0])
        return W[idx]
    out = _C.embedding_forward(as_compute(W, W.dtype), idx.reshape(-1), layer)
    return out.reshape(idx.shape + (W.shape[1],))


def embedding_backward(dW, idx, dout, layer):
    V, D = dW.shape
    if isinstance(dW, np.ndarray) and dW.dtype in FLOATS and _writes_in_place(dW, dW.dtype):
        _C.embedding_backward(dW, idx.reshape(-1), as_compute(dout, dW.dtype).reshape(-1, D),
                              layer)
        return dW
    _check_ids(layer, idx, V)
    dW[...] = 0
    np.add.at(dW, idx, dout)
    return dW


def embedding_dot_forward(W, idx, h, dt, layer):
    return _C.embedding_dot_forward(as_compute(W, dt), idx, as_compute(h, dt), layer)


def embedding_dot_backward(dW, idx, h, dout, W, dt, layer):
    args = [as_compute(a, dt) for a in (h, dout)]
    if _writes_in_place(dW, dt):
        return _C.embedding_dot_backward(as_compute(W, dt), dW, idx, *args, layer)
    tmp = np.empty(dW.shape, dtype=dt)  # dW of another dtype or layout: written once after
    dh = _C.embedding_dot_backward(as_compute(W, dt), tmp, idx, *args, layer)
    dW[...] = tmp
    return dh


def attention_forward(hs_enc, hs_dec, dt):
    return _C.attention_forward(as_compute(hs_enc, dt), as_compute(hs_dec, dt))


def attention_backward(hs_enc, hs_dec, a, dout, dt):
    return _C.attention_backward(*(as_compute(x, dt) for x in (hs_enc, hs_dec, a, dout)))
