"""Checks and result shapes of every op, in the user's words, for any array library.

Everything here reads only ``.shape``, ``.ndim`` and ``.dtype`` (and plain Python numbers), so
the same check runs once for NumPy and CuPy arrays before a backend computes. The backends
(``ops/cpu.py``, ``ops/cuda.py``) trust what these functions return.
"""

import operator

import numpy as np

FLOAT32, FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)
FLOATS = (FLOAT32, FLOAT64)

BATCHNORM_EPS = 10e-7  # the book's constant inside sqrt(var + 10e-7), i.e. 1e-6


# ---------------------------------------------------------------- dtypes

def compute_dtype(layer, *arrays):
    """The float dtype a kernel computes in, by NumPy's promotion of ``arrays`` (float32 with
    float64 gives float64; ints and bools become float64; complex, object and strings raise
    TypeError). None entries are skipped."""
    dtypes = []
    for a in arrays:
        if a is None:
            continue
        dt = np.asarray(a).dtype if not hasattr(a, "dtype") else np.dtype(a.dtype)
        if dt.kind not in "biuf":
            raise TypeError(f"{layer}: arrays of dtype {dt} are not supported "
                            "(use float32 or float64)")
        dtypes.append(dt)
    if len(dtypes) == 1 and dtypes[0].isnative:  # the common case, without result_type's cost
        dt = dtypes[0]
    else:  # result_type also gives big-endian data its native dtype
        dt = np.result_type(*dtypes) if dtypes else FLOAT64
    if dt == FLOAT32 or dt == FLOAT64:
        return dt
    if dt.kind == "f" and dt.itemsize < 4:
        return FLOAT32
    return FLOAT64


def shape_of(a):
    """``a``'s shape as a tuple (arrays, or anything np.shape understands)."""
    return tuple(a.shape) if hasattr(a, "shape") else np.shape(a)


def shape_error(layer, what, **arrays):
    """ValueError naming the layer, the problem and the shapes (arrays or shape tuples)."""
    shapes = ", ".join(f"{k}.shape={tuple(v.shape) if hasattr(v, 'shape') else tuple(v)}"
                       for k, v in arrays.items())
    return ValueError(f"{layer}: {what} ({shapes})")


def same_shape(layer, dout, ref, what):
    """dout must have the shape of the forward's input or output ``ref`` (``what`` says which)."""
    if shape_of(dout) != shape_of(ref):
        raise ValueError(f"{layer}.backward: dout has shape {shape_of(dout)} but the forward "
                         f"{what} had shape {shape_of(ref)}")


def dout_shape(layer, dout, expected):
    if shape_of(dout) != tuple(expected):
        raise ValueError(f"{layer}.backward: dout has shape {shape_of(dout)} but the forward "
                         f"output had shape {tuple(expected)}")


# ---------------------------------------------------------------- sliding windows
# Geometry of a sliding window (the book's names): x (N, C, H, W), window FH x FW (filter or
# pool), stride, pad; output OH = (H + 2*pad - FH) // stride + 1, likewise OW.

def as_int(layer, name, value):
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{layer}: {name} must be an integer, got {value!r}") from None


def window(layer, FH, FW, stride, pad):
    """Validated (FH, FW, stride, pad) as ints: window >= 1x1, stride >= 1, pad >= 0."""
    FH, FW = as_int(layer, "window height", FH), as_int(layer, "window width", FW)
    stride, pad = as_int(layer, "stride", stride), as_int(layer, "pad", pad)
    if FH < 1 or FW < 1:
        raise ValueError(f"{layer}: window size must be at least 1x1, got {FH}x{FW}")
    if stride < 1:
        raise ValueError(f"{layer}: stride must be >= 1, got {stride}")
    if pad < 0:
        raise ValueError(f"{layer}: pad must be >= 0, got {pad}")
    return FH, FW, stride, pad


def out_hw(H, W, FH, FW, stride, pad):
    return (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1


def images(layer, x, FH, FW, pad, **shapes):
    """x must be 4-D (N, C, H, W) and hold the FH x FW window once padded."""
    shapes = {"x": shape_of(x), **shapes}
    if x.ndim != 4:
        raise shape_error(layer, f"x must be 4-D (N, C, H, W), got {x.ndim}-D", **shapes)
    H, W = x.shape[2], x.shape[3]
    if FH > H + 2 * pad or FW > W + 2 * pad:
        raise shape_error(layer, f"window {FH}x{FW} is larger than the padded input "
                          f"{H + 2 * pad}x{W + 2 * pad} with pad={pad}", **shapes)


def image_shape(layer, what, shape):
    shape = tuple(int(d) for d in shape)
    if len(shape) != 4 or any(d < 0 for d in shape):
        raise ValueError(f"{layer}: {what} must be (N, C, H, W), got {shape}")
    return shape


def col2im(layer, col, input_shape, FH, FW, stride, pad):
    """((N, C, H, W), FH, FW, stride, pad) of col2im of col into input_shape."""
    FH, FW, stride, pad = window(layer, FH, FW, stride, pad)
    N, C, H, W = image_shape(layer, "input_shape", input_shape)
    if FH > H + 2 * pad or FW > W + 2 * pad:
        raise ValueError(f"{layer}: window {FH}x{FW} is larger than the padded input "
                         f"{H + 2 * pad}x{W + 2 * pad} with pad={pad} (input_shape={(N, C, H, W)})")
    OH, OW = out_hw(H, W, FH, FW, stride, pad)
    if shape_of(col) != (N * OH * OW, C * FH * FW):
        raise ValueError(f"{layer}: col has shape {shape_of(col)} but input_shape "
                         f"{(N, C, H, W)} with a {FH}x{FW} window, stride {stride}, pad {pad} "
                         f"needs {(N * OH * OW, C * FH * FW)}")
    return (N, C, H, W), FH, FW, stride, pad


def conv(layer, x, W, b, stride, pad, groups):
    """Validated (stride, pad, groups) of a convolution of x (N, C, H, W) with W
    (FN, C // groups, FH, FW) and b (FN,) or None."""
    shapes = {"x": shape_of(x), "W": shape_of(W)}
    if W.ndim != 4:
        raise shape_error(layer, f"W must be 4-D (FN, C, FH, FW), got {W.ndim}-D", **shapes)
    FN, C, FH, FW = W.shape
    _, _, stride, pad = window(layer, FH, FW, stride, pad)
    images(layer, x, FH, FW, pad, W=shape_of(W))
    groups = as_int(layer, "groups", groups)
    if groups < 1:
        raise ValueError(f"{layer}: groups must be >= 1, got {groups}")
    if FN % groups:
        raise shape_error(layer, f"FN={FN} filters do not split into groups={groups}", **shapes)
    if x.shape[1] != C * groups:
        per_group = f" per group x groups={groups}" if groups > 1 else ""
        raise shape_error(layer, f"x has {x.shape[1]} channels but W expects {C}{per_group}",
                          **shapes)
    if b is not None and (b.size != FN or b.ndim > 2 or (b.ndim == 2 and b.shape[0] != 1)):
        raise shape_error(layer, f"b must have FN={FN} elements, shape ({FN},)", b=shape_of(b),
                          **shapes)
    return stride, pad, groups


def keep_buffer(layer, keep, x):
    """keep, the array that receives a copy of x, must be a writeable array of x's kind (NumPy
    for a host x, a device array for a device one) with x's shape and dtype."""
    if keep is None:
        return
    device = hasattr(x, "__cuda_array_interface__")
    where = "a device array" if device else "a NumPy array"
    if not (hasattr(keep, "__cuda_array_interface__") if device
            else isinstance(keep, np.ndarray)):
        raise TypeError(f"{layer}: keep must be {where} of x's shape {shape_of(x)} and dtype "
                        f"{x.dtype}, got {type(keep).__name__}")
    if keep.shape != x.shape or keep.dtype != x.dtype:
        raise ValueError(f"{layer}: keep must be {where} of x's shape {shape_of(x)} and dtype "
                         f"{x.dtype}, got shape {shape_of(keep)} and dtype {keep.dtype}")
    if not getattr(keep.flags, "writeable", True):
        raise ValueError(f"{layer}: keep is read-only")


def conv_out(x, W, stride, pad):
    """(N, FN, OH, OW) of a checked convolution."""
    FN, _, FH, FW = W.shape
    N, _, H, Wd = x.shape
    return (N, FN) + out_hw(H, Wd, FH, FW, stride, pad)


def image_window(layer, x, FH, FW, stride, pad):
    """(FH, FW, stride, pad) of a window sliding over x (im2col, pooling)."""
    FH, FW, stride, pad = window(layer, FH, FW, stride, pad)
    images(layer, x, FH, FW, pad)
    return FH, FW, stride, pad


def pool_dout(layer, dout, x_shape, pool_h, pool_w, stride, pad):
    """((N, C, H, W), FH, FW, stride, pad) of a pooling's backward, dout checked."""
    FH, FW, stride, pad = window(layer, pool_h, pool_w, stride, pad)
    N, C, H, W = image_shape(layer, "x_shape", x_shape)
    dout_shape(layer, dout, (N, C) + out_hw(H, W, FH, FW, stride, pad))
    return (N, C, H, W), FH, FW, stride, pad


def pool_arg(layer, arg, dout):
    """The max pooling's argmax must have dout's shape."""
    if shape_of(arg) != shape_of(dout):
        raise ValueError(f"{layer}.backward: arg has shape {shape_of(arg)} but dout has shape "
                         f"{shape_of(dout)}")


# ---------------------------------------------------------------- affine, softmax, batchnorm

def batch_2d(layer, x):
    """(N, D) of x (N, ...) seen as the book's ``x.reshape(x.shape[0], -1)``."""
    if x.ndim == 0:
        raise ValueError(f"{layer}: x must have a batch axis, got a scalar")
    return x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64))


def affine(layer, x, x2, W, b):
    """Checks of out = x2 @ W + b for x seen as x2 (N, D)."""
    if W.ndim != 2 or b.ndim != 1:
        raise shape_error(layer, "W must be 2-D (D, M) and b 1-D (M,)", W=W, b=b)
    if x2.shape[1] != W.shape[0]:
        raise shape_error(layer, f"x has {x2.shape[1]} features per sample but W expects "
                          f"{W.shape[0]}", x=x, W=W)
    if b.shape[0] != W.shape[1]:
        raise shape_error(layer, f"b has length {b.shape[0]} but W has {W.shape[1]} columns",
                          W=W, b=b)


def affine_backward(layer, dout, x, x2, W):
    if W.ndim != 2 or x2.shape[1] != W.shape[0]:
        raise shape_error(layer + ".backward", "x and W do not match", x=x, W=W)
    dout_shape(layer, dout, (x2.shape[0], W.shape[1]))


def softmax(layer, x):
    if x.ndim == 0:
        raise ValueError(f"{layer}: x must have at least one axis, got a scalar")


def logits(layer, x, backward=False):
    if x.ndim != 2:
        if backward:
            raise ValueError(f"{layer}.backward: expected y of shape (N, C), "
                             f"got y.shape={shape_of(x)}")
        raise ValueError(f"{layer}: expected x of shape (N, C), got x.shape={shape_of(x)}")


def labels(layer, t, y_shape):
    """True when t is dense (one-hot or soft, y's shape: its labels are argmax(t, axis=1), as
    in the book), False for one integer label per sample."""
    dt = t.dtype
    if dt.kind not in "biuf":
        raise TypeError(f"{layer}: labels t of dtype {dt} are not supported")
    t_shape = tuple(t.shape)
    if t.ndim == 2 and t_shape == tuple(y_shape):
        return True
    if dt.kind not in "iu":
        raise TypeError(f"{layer}: integer labels t must have an integer dtype, got {dt} "
                        f"(t.shape={t_shape}; one-hot t must have y's shape {tuple(y_shape)})")
    if t.ndim != 1 or t.shape[0] != y_shape[0]:
        raise ValueError(f"{layer}: got {t.size} labels for a batch of {y_shape[0]} with "
                         f"{y_shape[1]} classes (t.shape={t_shape}, x.shape={tuple(y_shape)}); "
                         f"t must have shape ({y_shape[0]},) or {tuple(y_shape)}")
    return False


def scalar_dout(layer, dout):
    """The loss's dout (a host value) as a float."""
    if type(dout) is int or type(dout) is float:  # the usual 1 (or a scale), without NumPy
        return float(dout)
    d = np.asarray(dout)
    if d.dtype.kind not in "biuf":
        raise TypeError(f"{layer}.backward: dout of dtype {d.dtype} is not supported")
    if d.size != 1:
        raise ValueError(f"{layer}.backward: the loss is a scalar, so dout must be one number; "
                         f"got dout.shape={d.shape}")
    return float(d.reshape(()))


def batchnorm(layer, x):
    """(N, D) of the book's batch norm over x (N, D) or (N, C, H, W) (flattened to
    (N, C*H*W))."""
    if x.ndim not in (2, 4):
        raise ValueError(f"{layer}: x must be 2-D (N, D) or 4-D (N, C, H, W), "
                         f"got x.shape={shape_of(x)}")
    return batch_2d(layer, x)


def batchnorm_params(layer, D, x_shape, **params):
    for name, p in params.items():
        if shape_of(p) != (D,):
            raise ValueError(f"{layer}: {name}.shape={shape_of(p)} but x has {D} features per "
                             f"sample (x.shape={x_shape}; 4-D x is normalised per C*H*W "
                             f"feature, as in the book)")


def batchnorm_backward(layer, dout, gamma, xc):
    """(N, D) of the batch norm backward's dout, checked against the forward's xc (N, D)."""
    xc_shape = shape_of(xc)
    if dout.ndim not in (2, 4) or dout.shape[0] != xc_shape[0] or \
            int(np.prod(dout.shape[1:], dtype=np.int64)) != xc_shape[1]:
        raise ValueError(f"{layer}.backward: dout has shape {shape_of(dout)} but the forward "
                         f"input was {xc_shape} once flattened")
    N, D = batch_2d(layer, dout)
    batchnorm_params(layer + ".backward", D, shape_of(dout), gamma=gamma)
    return N, D


# Per-channel normalization of x (N, C, ...): channel axis 1, the axes after it (H, W or a
# length L, or none) flattened to S, so the kernels see (N, C, S).

def channels(layer, x):
    """(N, C, S) of x (N, C, ...)."""
    if x.ndim < 2:
        raise ValueError(f"{layer}: x must be (N, C, ...) with channels on axis 1, got "
                         f"x.shape={shape_of(x)}")
    return x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64))


def channel_params(layer, C, **params):
    """Every named parameter must have shape (C,)."""
    for name, p in params.items():
        if shape_of(p) != (C,):
            raise ValueError(f"{layer}: {name}.shape={shape_of(p)} but x has {C} channels")


def norm_groups(layer, C, groups):
    groups = as_int(layer, "groups", groups)
    if groups < 1 or C % groups:
        raise ValueError(f"{layer}: {C} channels do not split into {groups} groups")
    return groups


# ---------------------------------------------------------------- optim

def param(opt, key, p, g, array_type, type_name, contiguous=False):
    """Checks of one (parameter, gradient) pair: p an ``array_type`` of float32/float64 (it is
    updated in place: writeable, and C-contiguous where ``contiguous``), g of p's shape."""
    if not isinstance(p, array_type):
        raise TypeError(f"{opt}: params[{key!r}] must be a {type_name}, got {type(p).__name__}")
    if p.dtype not in FLOATS or (contiguous and not p.flags.c_contiguous):
        layout = "C-contiguous " if contiguous else ""
        raise TypeError(f"{opt}: params[{key!r}] has dtype {p.dtype}; parameters are updated "
                        f"in place and must be {layout}float32 or float64")
    if not getattr(p.flags, "writeable", True):
        raise ValueError(f"{opt}: params[{key!r}] is read-only")
    g_dtype = np.dtype(g.dtype)
    if g_dtype.kind not in "biuf":
        raise TypeError(f"{opt}: grads[{key!r}] has dtype {g_dtype} (use float32 or float64)")
    if shape_of(g) != shape_of(p):
        raise ValueError(f"{opt}: grads[{key!r}] has shape {shape_of(g)} but params[{key!r}] "
                         f"has shape {shape_of(p)}")


# ---------------------------------------------------------------- recurrent (rnn, lstm, gru)
# Sequences are time-major (T, N, D). torch_layout=False: the book's Wx (D, gH), Wh (H, gH);
# True: torch.nn's weight_ih (gH, D), weight_hh (gH, H) (see csrc/cpu/rnn.h). The first check
# names the layer; the detailed ones name the kernel family (RNN, LSTM, GRU), as the C++
# bindings do.

def _sequence(layer, x, Wx, D_axis, h0=None, H=None, c0=None, C=None):
    """Clear errors for a time-major x against Wx and the initial states."""
    if x.ndim != 3:
        raise ValueError(f"{layer}: expected a 3-D (T, N, D) sequence, got shape {shape_of(x)}")
    if x.shape[2] != Wx.shape[D_axis]:
        raise ValueError(f"{layer}: input has {x.shape[2]} features but the weights expect "
                         f"{Wx.shape[D_axis]} (x.shape={shape_of(x)}, Wx.shape={shape_of(Wx)})")
    N = x.shape[1]
    if h0 is not None and H is not None and shape_of(h0) != (N, H):
        raise ValueError(f"{layer}: h0 has shape {shape_of(h0)} but ({N}, {H}) was expected "
                         f"for a batch of {N}")
    if c0 is not None and C is not None and shape_of(c0) != (N, C):
        raise ValueError(f"{layer}: c0 has shape {shape_of(c0)} but ({N}, {C}) was expected "
                         f"for a batch of {N}")


def _expect(family, name, a, want):
    if a is not None and shape_of(a) != tuple(want):
        raise ValueError(f"{family}: {name} has shape {shape_of(a)} but {tuple(want)} was "
                         "expected")


def _weight_shape(torch_layout, K, G):
    return (G, K) if torch_layout else (K, G)


def _seq_shape(family, x):
    if x.ndim != 3:
        raise ValueError(f"{family}: x must be 3-D (T, N, D), got shape {shape_of(x)}")
    return tuple(int(d) for d in x.shape)


def _hidden_size(family, Wh, torch_layout, g):
    if Wh.ndim != 2:
        raise ValueError(f"{family}: Wh must be 2-D, got shape {shape_of(Wh)}")
    G = int(Wh.shape[0 if torch_layout else 1])
    if G % g != 0 or G <= 0:
        raise ValueError(f"{family}: Wh has shape {shape_of(Wh)}, whose gate dimension is not "
                         f"a positive multiple of {g}")
    return G // g


def rnn(layer, a, torch_layout, backward=False):
    """(T, N, D, H) of an Elman RNN's arrays ``a`` (a dict)."""
    if not backward:
        _sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"],
                  a["Wh"].shape[1] if a["Wh"].ndim == 2 else None)
    T, N, D = _seq_shape("RNN", a["x"])
    H = _hidden_size("RNN", a["Wh"], torch_layout, 1)
    _expect("RNN", "Wx", a["Wx"], _weight_shape(torch_layout, D, H))
    _expect("RNN", "Wh", a["Wh"], _weight_shape(torch_layout, H, H))
    if not backward:
        _expect("RNN", "b", a["b"], (H,))
    _expect("RNN", "h0", a["h0"], (N, H))
    if backward:
        _expect("RNN", "hs", a["hs"], (T, N, H))
        _expect("RNN", "dhs", a["dhs"], (T, N, H))
        _expect("RNN", "dhn", a["dhn"], (N, H))
    return T, N, D, H


def _lstm_sizes(Wh, Whr, torch_layout):
    """(H, P) from Wh and the optional projection Whr (P, H); P == H without it."""
    H = _hidden_size("LSTM", Wh, torch_layout, 4)
    P = H
    if Whr is not None:
        if not torch_layout:
            raise ValueError("LSTM: a projection (Whr) needs the torch layout")
        if Whr.ndim != 2 or Whr.shape[1] != H:
            raise ValueError(f"LSTM: Whr has shape {shape_of(Whr)} but (P, {H}) was expected")
        P = int(Whr.shape[0])
    return H, P


def lstm(layer, a, torch_layout, backward=False):
    """(T, N, D, H, P) of an LSTM's arrays ``a`` (a dict; P is the projection's size, H
    without one)."""
    if not backward and a["Wh"].ndim == 2 and (a["Whr"] is None or a["Whr"].ndim == 2):
        H = a["Wh"].shape[0 if torch_layout else 1] // 4
        P = H if a["Whr"] is None else a["Whr"].shape[0]
        _sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"], P, a["c0"], H)
    T, N, D = _seq_shape("LSTM", a["x"])
    H, P = _lstm_sizes(a["Wh"], a["Whr"], torch_layout)
    _expect("LSTM", "Wx", a["Wx"], _weight_shape(torch_layout, D, 4 * H))
    _expect("LSTM", "Wh", a["Wh"], _weight_shape(torch_layout, P, 4 * H))
    if not backward:
        _expect("LSTM", "b", a["b"], (4 * H,))
    _expect("LSTM", "h0", a["h0"], (N, P))
    _expect("LSTM", "c0", a["c0"], (N, H))
    if backward:
        _expect("LSTM", "hs", a["hs"], (T, N, P))
        _expect("LSTM", "cs", a["cs"], (T, N, H))
        _expect("LSTM", "gates", a["gates"], (T, N, 4 * H))
        if (a["Whr"] is None) != (a["hfull"] is None):
            raise ValueError("LSTM: hfull must be given exactly with Whr")
        _expect("LSTM", "hfull", a["hfull"], (T, N, H))
        _expect("LSTM", "dhs", a["dhs"], (T, N, P))
        _expect("LSTM", "dhn", a["dhn"], (N, P))
        _expect("LSTM", "dcn", a["dcn"], (N, H))
    return T, N, D, H, P


def gru(layer, a, torch_layout, backward=False):
    """(T, N, D, H) of a GRU's arrays ``a`` (a dict)."""
    if not backward and a["Wh"].ndim == 2:
        H = a["Wh"].shape[0 if torch_layout else 1] // 3
        _sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"], H)
    T, N, D = _seq_shape("GRU", a["x"])
    H = _hidden_size("GRU", a["Wh"], torch_layout, 3)
    _expect("GRU", "Wx", a["Wx"], _weight_shape(torch_layout, D, 3 * H))
    _expect("GRU", "Wh", a["Wh"], _weight_shape(torch_layout, H, 3 * H))
    if not backward:
        _expect("GRU", "bx", a["bx"], (3 * H,))
        _expect("GRU", "bh", a["bh"], (3 * H,))
        if not torch_layout and a["bh"] is not None:
            raise ValueError("GRU: the book's GRU has a single bias")
    _expect("GRU", "h0", a["h0"], (N, H))
    if backward:
        _expect("GRU", "hs", a["hs"], (T, N, H))
        _expect("GRU", "gates", a["gates"], (T, N, 3 * H))
        _expect("GRU", "aux", a["aux"], (T, N, H))
        _expect("GRU", "dhs", a["dhs"], (T, N, H))
        _expect("GRU", "dhn", a["dhn"], (N, H))
    return T, N, D, H


# ---------------------------------------------------------------- embedding, attention (vol. 2)

def embedding_matrix(layer, W, name="W"):
    shape = shape_of(W)
    if len(shape) != 2:
        raise ValueError(f"{layer}: {name} must be 2-D (V, D), got {name}.shape={shape}")
    return shape


def embedding_dot(layer, W, idx, h):
    """(V, D) of negative sampling's W, checked against idx (N,) and h (N, D)."""
    V, D = embedding_matrix(layer, W)
    h_shape, idx_shape = shape_of(h), shape_of(idx)
    if len(idx_shape) != 1 or h_shape != (idx_shape[0], D):
        raise ValueError(f"{layer}: expected idx of shape (N,) and h of shape (N, {D}) for W of "
                         f"shape {(V, D)}, got idx.shape={idx_shape}, h.shape={h_shape}")
    return V, D


def embedding_dot_backward(layer, dW, idx, h, dout, W):
    V, D = embedding_dot(layer + ".backward", W, idx, h)
    embedding_matrix(layer + ".backward", dW, "dW")
    if shape_of(dW) != (V, D):
        raise ValueError(f"{layer}.backward: dW.shape={shape_of(dW)} differs from "
                         f"W.shape={(V, D)}")
    dout_shape(layer, dout, shape_of(idx)[:1])
    return V, D


def attention(layer, hs_enc, hs_dec):
    """(shape of hs_enc (N, Te, H), shape of hs_dec (N, Td, H))."""
    enc, dec = shape_of(hs_enc), shape_of(hs_dec)
    shapes = dict(hs_enc=enc, hs_dec=dec)
    if len(enc) != 3 or len(dec) != 3:
        raise shape_error(layer, "hs_enc must be 3-D (N, Te, H) and hs_dec 3-D (N, Td, H)",
                          **shapes)
    if enc[0] != dec[0]:
        raise shape_error(layer, f"hs_enc has a batch of {enc[0]} but hs_dec of {dec[0]}",
                          **shapes)
    if enc[2] != dec[2]:
        raise shape_error(layer, f"hs_enc has hidden size {enc[2]} but hs_dec has {dec[2]}",
                          **shapes)
    return enc, dec


def attention_backward(layer, hs_enc, hs_dec, a, dout):
    enc, dec = attention(layer + ".backward", hs_enc, hs_dec)
    N, Te, _ = enc
    dout_shape(layer, dout, dec)
    if shape_of(a) != (N, dec[1], Te):
        raise ValueError(f"{layer}.backward: a has shape {shape_of(a)} but the forward gave "
                         f"{(N, dec[1], Te)}")
