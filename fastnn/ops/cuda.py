"""The CuPy backend: the kernels of ``csrc/cuda`` on device arrays.

Called by the op front (``fastnn.ops``) after ``ops.meta`` checked the shapes and chose the
dtype ``dt``, and only once CUDA is usable (``fastnn.cuda.reason()`` is empty). Outputs are
CuPy arrays on the input's device, computed on CuPy's current stream (no host round trips,
except where noted: a loss with ``ignore_label`` is counted on the host). Functions share
names and parameters with ``ops/cpu.py``.
"""

import contextlib

import numpy as np

from .. import _C
from .. import _device


class _Launch:
    """Device, stream and dtype of one kernel call on the arrays of one layer. Calls whose
    device is already the current one (the usual case) skip the device switches."""

    def __init__(self, dtype, *arrays):
        cp = self.cp = _device.cupy_for("fastnn")
        first = next(a for a in arrays if hasattr(a, "__cuda_array_interface__"))
        self.device = (first.data.device_id if isinstance(first, cp.ndarray)
                       else cp.asarray(first).device.id)
        self.dtype = np.dtype(dtype)
        self.f64 = self.dtype == np.float64
        self.current = cp.cuda.runtime.getDevice() == self.device
        with self.on_device():
            self.stream = cp.cuda.get_current_stream().ptr

    def on_device(self):
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
        with self.on_device():
            return cp.ascontiguousarray(cp.asarray(a, dtype=dtype))

    def empty(self, shape, dtype=None):
        with self.on_device():
            return self.cp.empty(tuple(map(int, shape)), dtype=dtype or self.dtype)


def _p(a):
    return 0 if a is None else a.data.ptr


# ---------------------------------------------------------------- activations

def relu_forward(x, dt):
    k = _Launch(dt, x)
    x = k.array(x)
    y, mask = k.empty(x.shape), k.empty(x.shape, np.bool_)
    _C.cuda_relu_forward(*k.args(), _p(x), _p(y), _p(mask), x.size)
    return y, mask


def relu_backward(dout, mask, dt):
    """In place into dout when it is a C-contiguous array of the compute dtype, as the book."""
    k = _Launch(dt, dout, mask)
    in_place = (isinstance(dout, k.cp.ndarray) and dout.dtype == k.dtype
                and dout.flags.c_contiguous and dout.device.id == k.device)
    d = dout if in_place else k.array(dout).copy()
    m = k.array(mask, np.bool_)
    _C.cuda_relu_backward(*k.args(), _p(d), _p(m), _p(d), d.size)
    return d


def unary_forward(name, x, dt):
    k = _Launch(dt, x)
    x = k.array(x)
    y = k.empty(x.shape)
    _C.cuda_unary_forward(name, *k.args(), _p(x), _p(y), x.size)
    return y


def unary_backward(name, dout, kept, dt, layer):
    k = _Launch(dt, dout, kept)
    dout, kept = k.array(dout), k.array(kept)
    dx = k.empty(kept.shape)
    _C.cuda_unary_backward(name, *k.args(), _p(dout), _p(kept), _p(dx), kept.size)
    return dx


# ---------------------------------------------------------------- im2col, convolution, pooling

def _out_hw(H, W, FH, FW, stride, pad):
    return (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1


def im2col(x, FH, FW, stride, pad, dt):
    k = _Launch(dt, x)
    x = k.array(x)
    N, C, H, W = x.shape
    OH, OW = _out_hw(H, W, FH, FW, stride, pad)
    col = k.empty((N * OH * OW, C * FH * FW))
    _C.cuda_im2col(*k.args(), _p(x), _p(col), list(x.shape), FH, FW, stride, pad)
    return col


def col2im(col, shape, FH, FW, stride, pad, dt):
    k = _Launch(dt, col)
    col = k.array(col)
    x = k.empty(shape)
    _C.cuda_col2im(*k.args(), _p(col), _p(x), list(shape), FH, FW, stride, pad)
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


def conv2d_forward(x, W, b, stride, pad, groups, dt, keep=None):
    out = _conv2d_forward(x, W, b, stride, pad, groups, dt)
    if keep is not None:  # after the launches that read x (keep may overlap it), same stream
        cp = _device.cupy_for("fastnn")
        cp.copyto(keep, cp.asarray(x))
    return out


def _conv2d_forward(x, W, b, stride, pad, groups, dt):
    depthwise = _depthwise(x, groups)
    if groups > 1 and not depthwise:  # one ungrouped launch per group
        return _device.cupy_for("fastnn").concatenate(
            [_conv2d_forward(xg, Wg, bg, stride, pad, 1, dt)
             for xg, Wg, bg, _ in _groups_of(groups, x, W, b)], axis=1)
    k = _Launch(dt, x, W, b)
    x, W = k.array(x), k.array(W)
    b = None if b is None else k.array(b).reshape(-1)
    FN, _, FH, FW = W.shape
    N, _, H, Wd = x.shape
    out = k.empty((N, FN) + _out_hw(H, Wd, FH, FW, stride, pad))
    launch = _C.cuda_depthwise_forward if depthwise else _C.cuda_conv2d_forward
    launch(*k.args(), _p(x), _p(W), _p(b), _p(out), list(x.shape), FN, FH, FW, stride, pad)
    return out


def conv2d_backward(dout, x, W, stride, pad, need_dx, groups, dt):
    depthwise = _depthwise(x, groups)
    if groups > 1 and not depthwise:  # one ungrouped launch per group
        cp = _device.cupy_for("fastnn")
        parts = [conv2d_backward(dg, xg, Wg, stride, pad, need_dx, 1, dt)
                 for xg, Wg, _, dg in _groups_of(groups, x, W, None, dout)]
        dx = cp.concatenate([p[0] for p in parts], axis=1) if need_dx else None
        return (dx, cp.concatenate([p[1] for p in parts]),
                cp.concatenate([p[2] for p in parts]))
    k = _Launch(dt, dout, x, W)
    dout, x, W = k.array(dout), k.array(x), k.array(W)
    FN, _, FH, FW = W.shape
    dx = k.empty(x.shape) if need_dx else None
    dW, db = k.empty(W.shape), k.empty((FN,))
    launch = _C.cuda_depthwise_backward if depthwise else _C.cuda_conv2d_backward
    launch(*k.args(), _p(dout), _p(x), _p(W), _p(dx), _p(dW), _p(db), list(x.shape), FN, FH, FW,
           stride, pad)
    return dx, dW, db


def maxpool2d_forward(x, FH, FW, stride, pad, dt):
    k = _Launch(dt, x)
    x = k.array(x)
    N, C, H, W = x.shape
    shape = (N, C) + _out_hw(H, W, FH, FW, stride, pad)
    out, arg = k.empty(shape), k.empty(shape, np.int32)
    _C.cuda_maxpool2d_forward(*k.args(), _p(x), _p(out), _p(arg), list(x.shape), FH, FW, stride,
                              pad)
    return out, arg


def maxpool2d_backward(dout, arg, shape, FH, FW, stride, pad, dt):
    k = _Launch(dt, dout, arg)
    dout, arg = k.array(dout), k.array(arg, np.int32)
    dx = k.empty(shape)
    _C.cuda_maxpool2d_backward(*k.args(), _p(dout), _p(arg), _p(dx), list(shape), FH, FW, stride,
                               pad)
    return dx


def avgpool2d_forward(x, FH, FW, stride, pad, dt):
    k = _Launch(dt, x)
    x = k.array(x)
    N, C, H, W = x.shape
    out = k.empty((N, C) + _out_hw(H, W, FH, FW, stride, pad))
    _C.cuda_avgpool2d_forward(*k.args(), _p(x), _p(out), list(x.shape), FH, FW, stride, pad)
    return out


def avgpool2d_backward(dout, shape, FH, FW, stride, pad, dt):
    k = _Launch(dt, dout)
    dout = k.array(dout)
    dx = k.empty(shape)
    _C.cuda_avgpool2d_backward(*k.args(), _p(dout), _p(dx), list(shape), FH, FW, stride, pad)
    return dx


# ---------------------------------------------------------------- affine, softmax, batchnorm

def affine_forward(x2, W, b, dt):
    k = _Launch(dt, x2, W, b)
    x2, W, b = k.array(x2), k.array(W), k.array(b)
    N, D = x2.shape
    M = W.shape[1]
    out = k.empty((N, M))
    _C.cuda_affine_forward(*k.args(), _p(x2), _p(W), _p(b), _p(out), N, D, M)
    return out


def affine_backward(dout, x2, W, need_dx, dt):
    """(dx (N, D) or None, dW, db) in dt."""
    k = _Launch(dt, dout, x2, W)
    dout, x2, W = k.array(dout), k.array(x2), k.array(W)
    N, D = x2.shape
    M = W.shape[1]
    dx = k.empty((N, D)) if need_dx else None
    dW, db = k.empty((D, M)), k.empty((M,))
    _C.cuda_affine_backward(*k.args(), _p(dout), _p(x2), _p(W), _p(dx), _p(dW), _p(db), N, D, M)
    return dx, dW, db


def softmax(x, dt):
    k = _Launch(dt, x)
    x = k.array(x)
    y = k.empty(x.shape)
    C = x.shape[-1]
    _C.cuda_softmax_forward(*k.args(), _p(x), _p(y), x.size // C if C else 0, C)
    return y


def _labels(k, t, dense):
    """int64 labels (N,) on the device of checked t (argmax of dense t)."""
    if dense:
        return k.array(k.cp.argmax(k.array(t, t.dtype), axis=1), np.int64)
    return k.array(t, np.int64)


def softmax_cross_entropy_forward(x, t, dense, eps, ignore_label, dt, layer):
    """(y, loss) with the loss a 0-d CuPy array. A label outside [0, C) gives a NaN loss
    (checking it would need a host round trip)."""
    k = _Launch(dt, x, t)
    x = k.array(x)
    labels = _labels(k, t, dense)
    N, C = x.shape
    y, rows = k.empty((N, C)), k.empty((N,))
    _C.cuda_softmax_cross_entropy_forward(*k.args(), _p(x), _p(labels), _p(y), _p(rows), N, C,
                                          float(eps), ignore_label)
    with k.on_device():
        if not N:
            return y, k.cp.asarray(np.nan, dtype=k.dtype)
        if ignore_label is None:
            return y, rows.mean()  # one reduction kernel
        return y, (rows.sum() / (labels != ignore_label).sum()).astype(k.dtype, copy=False)


def softmax_cross_entropy_backward(y, t, dense, dout, ignore_label, out, dt, layer):
    """dx = (y - t) * dout / count; dense t (without ignore_label) is used as it is, in dt."""
    k = _Launch(dt, y, t)
    labels = _labels(k, t, dense)
    N, C = y.shape
    count = N if ignore_label is None else int((labels != ignore_label).sum())
    scale = dout / count if count else np.nan
    if dense and ignore_label is None:
        y, t = k.array(y), k.array(t)
        dx = k.empty(y.shape)
        _C.cuda_softmax_cross_entropy_backward_dense(*k.args(), _p(y), _p(t), _p(dx), y.size,
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


def batchnorm_forward_train(x2, gamma, beta, running_mean, running_var, momentum, eps, dt):
    """(out, xc, xn, std, running_mean, running_var), all (N, D) or (D,) in dt."""
    k = _Launch(dt, x2, gamma, beta, running_mean, running_var)
    N, D = x2.shape
    xd, g, b, rm, rv = (k.array(a) for a in (x2, gamma, beta, running_mean, running_var))
    out, xc, xn = k.empty((N, D)), k.empty((N, D)), k.empty((N, D))
    std, nrm, nrv = k.empty((D,)), k.empty((D,)), k.empty((D,))
    _C.cuda_batchnorm_forward_train(*k.args(), _p(xd), _p(g), _p(b), _p(rm), _p(rv), _p(out),
                                    _p(xc), _p(xn), _p(std), _p(nrm), _p(nrv), N, D,
                                    float(momentum), float(eps))
    return out, xc, xn, std, nrm, nrv


def batchnorm_forward_infer(x2, gamma, beta, running_mean, running_var, eps, dt):
    k = _Launch(dt, x2, gamma, beta, running_mean, running_var)
    N, D = x2.shape
    xd, g, b, rm, rv = (k.array(a) for a in (x2, gamma, beta, running_mean, running_var))
    out = k.empty((N, D))
    _C.cuda_batchnorm_forward_infer(*k.args(), _p(xd), _p(g), _p(b), _p(rm), _p(rv), _p(out), N,
                                    D, float(eps))
    return out


def batchnorm_backward(d2, gamma, xc, xn, std, dt):
    k = _Launch(dt, d2, gamma, xc, xn, std)
    N, D = d2.shape
    d2, g, xc, xn, std = (k.array(a) for a in (d2, gamma, xc, xn, std))
    dx, dgamma, dbeta = k.empty((N, D)), k.empty((D,)), k.empty((D,))
    _C.cuda_batchnorm_backward(*k.args(), _p(d2), _p(g), _p(xc), _p(xn), _p(std), _p(dx),
                               _p(dgamma), _p(dbeta), N, D)
    return dx, dgamma, dbeta


# ---------------------------------------------------------------- optim

def _check_state(name, p, state, k):
    for s in state:
        if not (isinstance(s, k.cp.ndarray) and s.dtype == p.dtype and s.shape == p.shape
                and s.flags.c_contiguous):
            raise TypeError(f"{name}: optimizer state must be C-contiguous CuPy arrays like the "
                            f"parameter ({p.dtype}, shape {tuple(p.shape)})")


def gradient(p, g):
    """The gradient as a C-contiguous array of the parameter's dtype on its device."""
    return _Launch(p.dtype, p).array(g)


def _update(name, p, state, g, hyper):
    k = _Launch(p.dtype, p)
    _check_state(name, p, state, k)
    g = k.array(g)
    _C.cuda_optim_update(name, *k.args(), _p(p), [_p(s) for s in state], _p(g), p.size,
                         [float(h) for h in hyper])


def update_list(name, params, states, grads, hyper):
    """One optimizer step (``name`` as in _update) for CuPy parameters of one device and
    dtype, all in one launch (up to 32 parameters per launch): params[i] with its state arrays
    states[i] and gradient grads[i] (converted to the parameters' dtype on the device)."""
    p0 = params[0]
    k = _Launch(p0.dtype, p0)
    for p, state in zip(params, states):
        if not (isinstance(p, k.cp.ndarray) and p.dtype == k.dtype
                and p.data.device_id == k.device):
            raise TypeError(f"{name}: a parameter list shares one device and dtype "
                            f"({k.dtype}, device {k.device})")
        _check_state(name, p, state, k)
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

def _recurrent(a, dt):
    """(launch, the dict ``a`` as C-contiguous CuPy arrays of dt, None entries kept)."""
    k = _Launch(dt, *a.values())
    return k, {n: None if v is None else k.array(v) for n, v in a.items()}


def rnn_forward(a, relu, torch_layout, dt, sizes):
    T, N, D, H = sizes
    k, a = _recurrent(a, dt)
    hs = k.empty((T, N, H))
    _C.cuda_rnn_forward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["Wx"]), _p(a["Wh"]),
                        _p(a["b"]), _p(hs), T, N, D, H, bool(relu), bool(torch_layout))
    return hs


def rnn_backward(a, relu, torch_layout, dt, sizes):
    T, N, D, H = sizes
    k, a = _recurrent(a, dt)
    dx, dh0 = k.empty((T, N, D)), k.empty((N, H))
    dWx, dWh, db = k.empty(a["Wx"].shape), k.empty(a["Wh"].shape), k.empty((H,))
    _C.cuda_rnn_backward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["Wx"]), _p(a["Wh"]),
                         _p(a["hs"]), _p(a["dhs"]), _p(a["dhn"]), _p(dx), _p(dh0), _p(dWx),
                         _p(dWh), _p(db), T, N, D, H, bool(relu), bool(torch_layout))
    return dx, dh0, dWx, dWh, db


def _p_whr(k, Whr):
    """(pointer, keep-alive) of a projection: a present Whr must not read as absent (null),
    which CuPy's pointer of an empty (P == 0) array would; the kernels never read it then."""
    if Whr is None:
        return 0, None
    if Whr.size:
        return _p(Whr), Whr
    stand_in = k.empty((1,))
    return _p(stand_in), stand_in


def lstm_forward(a, torch_layout, dt, sizes):
    T, N, D, H, P = sizes
    k, a = _recurrent(a, dt)
    hs, cs, gates = k.empty((T, N, P)), k.empty((T, N, H)), k.empty((T, N, 4 * H))
    hfull = None if a["Whr"] is None else k.empty((T, N, H))
    whr, _keep = _p_whr(k, a["Whr"])
    _C.cuda_lstm_forward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["c0"]), _p(a["Wx"]),
                         _p(a["Wh"]), _p(a["b"]), whr, _p(hs), _p(cs), _p(gates), _p(hfull),
                         T, N, D, H, P, bool(torch_layout))
    return hs, cs, gates, hfull


def lstm_backward(a, torch_layout, dt, sizes):
    T, N, D, H, P = sizes
    k, a = _recurrent(a, dt)
    dx, dh0, dc0 = k.empty((T, N, D)), k.empty((N, P)), k.empty((N, H))
    dWx, dWh, db = k.empty(a["Wx"].shape), k.empty(a["Wh"].shape), k.empty((4 * H,))
    dWhr = None if a["Whr"] is None else k.empty((P, H))
    whr, _keep = _p_whr(k, a["Whr"])
    _C.cuda_lstm_backward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["c0"]), _p(a["Wx"]),
                          _p(a["Wh"]), whr, _p(a["hs"]), _p(a["cs"]), _p(a["gates"]),
                          _p(a["hfull"]), _p(a["dhs"]), _p(a["dhn"]), _p(a["dcn"]), _p(dx),
                          _p(dh0), _p(dc0), _p(dWx), _p(dWh), _p(db), _p(dWhr), T, N, D, H, P,
                          bool(torch_layout))
    return dx, dh0, dc0, dWx, dWh, db, dWhr


def gru_forward(a, torch_layout, dt, sizes):
    T, N, D, H = sizes
    k, a = _recurrent(a, dt)
    hs, gates, aux = k.empty((T, N, H)), k.empty((T, N, 3 * H)), k.empty((T, N, H))
    _C.cuda_gru_forward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["Wx"]), _p(a["Wh"]),
                        _p(a["bx"]), _p(a["bh"]), _p(hs), _p(gates), _p(aux), T, N, D, H,
                        bool(torch_layout))
    return hs, gates, aux


def gru_backward(a, torch_layout, dt, sizes):
    T, N, D, H = sizes
    k, a = _recurrent(a, dt)
    dx, dh0 = k.empty((T, N, D)), k.empty((N, H))
    dWx, dWh, dbx = k.empty(a["Wx"].shape), k.empty(a["Wh"].shape), k.empty((3 * H,))
    dbh = k.empty((3 * H,)) if torch_layout else None
    _C.cuda_gru_backward(*k.args(), _p(a["x"]), _p(a["h0"]), _p(a["Wx"]), _p(a["Wh"]),
                         _p(a["hs"]), _p(a["gates"]), _p(a["aux"]), _p(a["dhs"]), _p(a["dhn"]),
                         _p(dx), _p(dh0), _p(dWx), _p(dWh), _p(dbx), _p(dbh), T, N, D, H,
                         bool(torch_layout))
    return dx, dh0, dWx, dWh, dbx, dbh


# ---------------------------------------------------------------- embedding, attention (vol. 2)
# No kernels: the book's NumPy expressions on CuPy, as its code runs with `import cupy as np`
# (np.add.at needs CuPy >= 12.1). Embeddings need no CUDA build of fastnn, only CuPy.

def embedding_forward(W, idx, layer):
    return W[idx]


def embedding_backward(dW, idx, dout, layer):
    dW[...] = 0
    np.add.at(dW, idx, dout)  # NumPy hands the call to CuPy
    return dW


def embedding_dot_forward(W, idx, h, dt, layer):
    return (W[idx] * h).sum(axis=1)


def embedding_dot_backward(dW, idx, h, dout, W, dt, layer):
    d = dout.reshape(-1, 1)
    dW[...] = 0
    np.add.at(dW, idx, d * h)
    return d * W[idx]


def attention_forward(hs_enc, hs_dec, dt):
    cp = _device.cupy_for("TimeAttention")
    s = cp.matmul(hs_dec, hs_enc.transpose(0, 2, 1))
    if s.shape[2]:
        s = cp.exp(s - s.max(axis=2, keepdims=True))
        s /= s.sum(axis=2, keepdims=True)
    return cp.matmul(s, hs_enc), s


def attention_backward(hs_enc, hs_dec, a, dout, dt):
    cp = _device.cupy_for("TimeAttention")
    da = cp.matmul(dout, hs_enc.transpose(0, 2, 1))
    ds = a * (da - (a * da).sum(axis=2, keepdims=True))
    dhs_enc = cp.matmul(a.transpose(0, 2, 1), dout) + cp.matmul(ds.transpose(0, 2, 1), hs_dec)
    return dhs_enc, cp.matmul(ds, hs_enc)
