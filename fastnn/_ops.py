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
    dt, a = _recurrent_arrays(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b))
    _check_sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"], a["Wh"].shape[1])
    return _C.rnn_forward(a["x"], a["h0"], a["Wx"], a["Wh"], a["b"], relu, torch_layout)


def rnn_backward(x, h0, Wx, Wh, hs, dhs, dhn, relu=False, torch_layout=False, layer="RNN"):
    """Returns (dx, dh0, dWx, dWh, db) given the gradients on hs and on the final state."""
    dt, a = _recurrent_arrays(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, hs=hs, dhs=dhs, dhn=dhn))
    return _C.rnn_backward(a["x"], a["h0"], a["Wx"], a["Wh"], a["hs"], a["dhs"], a["dhn"], relu,
                           torch_layout)


def lstm_forward(x, h0, c0, Wx, Wh, b, Whr=None, torch_layout=False, layer="LSTM"):
    """LSTM over a sequence: returns (hs, cs, gates, hfull); hfull is None without Whr."""
    dt, a = _recurrent_arrays(layer, dict(x=x, h0=h0, c0=c0, Wx=Wx, Wh=Wh, b=b, Whr=Whr))
    H = a["Wh"].shape[0 if torch_layout else 1] // 4
    P = H if Whr is None else a["Whr"].shape[0]
    _check_sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"], P, a["c0"], H)
    return _C.lstm_forward(a["x"], a["h0"], a["c0"], a["Wx"], a["Wh"], a["b"], a["Whr"],
                           torch_layout)


def lstm_backward(x, h0, c0, Wx, Wh, Whr, hs, cs, gates, hfull, dhs, dhn, dcn,
                  torch_layout=False, layer="LSTM"):
    """Returns (dx, dh0, dc0, dWx, dWh, db, dWhr); dWhr is None without Whr."""
    dt, a = _recurrent_arrays(layer, dict(x=x, h0=h0, c0=c0, Wx=Wx, Wh=Wh, Whr=Whr, hs=hs, cs=cs,
                                          gates=gates, hfull=hfull, dhs=dhs, dhn=dhn, dcn=dcn))
    return _C.lstm_backward(a["x"], a["h0"], a["c0"], a["Wx"], a["Wh"], a["Whr"], a["hs"],
                            a["cs"], a["gates"], a["hfull"], a["dhs"], a["dhn"], a["dcn"],
                            torch_layout)


def gru_forward(x, h0, Wx, Wh, bx, bh=None, torch_layout=False, layer="GRU"):
    """GRU over a sequence: returns (hs, gates, aux) (aux is what backward needs)."""
    dt, a = _recurrent_arrays(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, bx=bx, bh=bh))
    H = a["Wh"].shape[0 if torch_layout else 1] // 3
    _check_sequence(layer, a["x"], a["Wx"], 1 if torch_layout else 0, a["h0"], H)
    return _C.gru_forward(a["x"], a["h0"], a["Wx"], a["Wh"], a["bx"], a["bh"], torch_layout)


def gru_backward(x, h0, Wx, Wh, hs, gates, aux, dhs, dhn, torch_layout=False, layer="GRU"):
    """Returns (dx, dh0, dWx, dWh, dbx, dbh); dbh is None in the book's layout."""
    dt, a = _recurrent_arrays(layer, dict(x=x, h0=h0, Wx=Wx, Wh=Wh, hs=hs, gates=gates, aux=aux,
                                          dhs=dhs, dhn=dhn))
    return _C.gru_backward(a["x"], a["h0"], a["Wx"], a["Wh"], a["hs"], a["gates"], a["aux"],
                           a["dhs"], a["dhn"], torch_layout)
