"""torch.nn.RNN / LSTM / GRU with NumPy arrays in and out, running fastnn's C++ kernels.

Same constructor, parameter names and shapes (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...),
gate orders (LSTM i, f, g, o; GRU r, z, n), call signature and return values as PyTorch, so a
PyTorch ``state_dict`` loads unchanged and gives the same outputs. Training without autograd:
``backward(d_output, d_hn)`` returns the gradient w.r.t. the input and fills ``grads`` (same keys
as ``state_dict()``) and ``d_h0`` (LSTM: also ``d_c0``).

On the GPU: ``.cuda()`` (or ``.to("cuda")``) moves the parameters to CuPy arrays, ``.cpu()``
back; ``load_state_dict`` keeps a CuPy value on the device. With CuPy parameters or input the
CUDA kernels run and outputs, states and grads are CuPy arrays (a NumPy input or state is
copied to the device first).
"""

import math
from collections import OrderedDict

import numpy as np

from .. import _device, ops

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _to_numpy(a):
    """NumPy view of ``a``; CPU torch tensors (even ones requiring grad) are accepted."""
    if hasattr(a, "detach"):
        a = a.detach()
    if hasattr(a, "cpu") and not isinstance(a, np.ndarray):
        a = a.cpu()
    return np.asarray(a)


def _to_array(xp, a):
    """``a`` as an array of ``xp`` (numpy or cupy): device arrays as they are (cupy.asarray makes
    no copy), anything else through _to_numpy (then copied to the device when xp is cupy)."""
    return xp.asarray(a if _device.on_device(a) else _to_numpy(a))


class _RNNBase:
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
                 dtype=np.float32):
        name = type(self).__name__
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"{name}: hidden_size must be a positive int, got {hidden_size!r}")
        if not isinstance(input_size, int) or input_size <= 0:
            raise ValueError(f"{name}: input_size must be a positive int, got {input_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"{name}: num_layers must be a positive int, got {num_layers!r}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError(f"{name}: proj_size must be in [0, hidden_size), got {proj_size}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"{name}: dtype must be float32 or float64, got {dtype}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.training = True
        self.grads = None
        self.d_h0 = None
        self._cache = None
        self._rng = np.random.default_rng()

        G = _GATES[mode] * hidden_size
        H_out = proj_size or hidden_size
        k = 1.0 / math.sqrt(hidden_size)
        self._params = OrderedDict()
        for layer in range(num_layers):
            D = input_size if layer == 0 else H_out * self.num_directions
            for sfx in self._suffixes(layer):
                shapes = [("weight_ih", (G, D)), ("weight_hh", (G, H_out))]
                if bias:
                    shapes += [("bias_ih", (G,)), ("bias_hh", (G,))]
                if proj_size:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for pname, shape in shapes:
                    self._params[pname + sfx] = np.random.uniform(-k, k, shape).astype(dtype)

    # ---- parameters

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer):
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def __getattr__(self, name):
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def parameters(self):
        return list(self._params.values())

    def named_parameters(self):
        return list(self._params.items())

    def state_dict(self):
        """The parameter arrays themselves (like torch, updating them in place updates us)."""
        return OrderedDict(self._params)

    def load_state_dict(self, state_dict, strict=True):
        """Copy values (NumPy arrays, CPU torch tensors, ...) into the parameters in place. A
        CuPy value is copied into a CuPy parameter, or replaces a NumPy one by a CuPy copy in
        the parameter's dtype (the module moves to the device with its state)."""
        name = type(self).__name__
        missing = [k for k in self._params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in self._params]
        if strict and (missing or unexpected):
            raise KeyError(f"{name}.load_state_dict: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for key, value in state_dict.items():
            if key not in self._params:
                continue
            p = self._params[key]
            xp = ops.array_module(name, p, value)
            value = _to_array(xp, value)
            if tuple(value.shape) != tuple(p.shape):
                raise ValueError(f"{name}.load_state_dict: {key} has shape {tuple(value.shape)} "
                                 f"but the module expects {tuple(p.shape)}")
            if xp is np or _device.on_device(p):
                p[...] = value
            else:
                self._params[key] = value.astype(p.dtype, copy=True)

    def to(self, dtype):
        """Convert every parameter to float32 or float64 (new arrays); ``"cuda"`` (or
        ``"cuda:1"``) and ``"cpu"`` move them instead, as ``cuda()`` and ``cpu()``."""
        if isinstance(dtype, str) and dtype.split(":")[0] in ("cuda", "cpu"):
            kind, _, index = dtype.partition(":")
            return self.cuda(int(index) if index else None) if kind == "cuda" else self.cpu()
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"{type(self).__name__}: dtype must be float32 or float64, "
                            f"got {dtype}")
        for k, p in self._params.items():
            self._params[k] = p.astype(dtype)
        return self

    def cuda(self, device=None):
        """Move every parameter to the GPU (CuPy arrays on device number ``device``, default the
        current one); the kernels then run there. RuntimeError naming the reason when CUDA
        cannot be used here, as ``Network.to``."""
        return self._move("cuda" if device is None else f"cuda:{int(device)}", "cuda")

    def cpu(self):
        """Move every parameter back to NumPy arrays."""
        return self._move("cpu", "cpu")

    def _move(self, device, method):
        move = _device.mover(device, f"{type(self).__name__}.{method}")
        for k, p in self._params.items():
            self._params[k] = move(p)
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def __repr__(self):
        s = f"{type(self).__name__}({self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s + ")"

    # ---- forward

    def _xp(self, *arrays):
        """numpy or cupy: where the parameters and ``arrays`` (None, tuples of arrays) live."""
        flat = [b for a in arrays for b in (a if isinstance(a, (tuple, list)) else (a,))]
        return ops.array_module(type(self).__name__, *flat, *self._params.values())

    def _check_state(self, xp, what, h, batched, N, size):
        name = type(self).__name__
        L = self.num_layers * self.num_directions
        want = (L, N, size) if batched else (L, size)
        h = _to_array(xp, h)
        if tuple(h.shape) != want:
            raise ValueError(f"{name}: expected {what} of shape {want}, got {tuple(h.shape)}")
        return h if batched else h[:, np.newaxis, :]

    def _prepare(self, x, hx):
        """x as time-major (T, N, D); the initial states as (L * dirs, N, size) or None."""
        name = type(self).__name__
        xp = self._xp(x, hx)
        x = _to_array(xp, x)
        user_shape = tuple(x.shape)
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a 2-D (unbatched) or 3-D input, got shape "
                             f"{x.shape}")
        batched = x.ndim == 3
        if not batched:
            x = x[:, np.newaxis, :]
        elif self.batch_first:
            x = xp.swapaxes(x, 0, 1)
        if x.shape[2] != self.input_size:
            raise ValueError(f"{name}: input has {x.shape[2]} features but input_size is "
                             f"{self.input_size} (input shape {user_shape})")
        if x.shape[0] == 0:
            raise ValueError(f"{name}: the sequence length must be at least 1")
        dtype = ops.compute_dtype(name, x, *self._params.values())
        x = xp.ascontiguousarray(x, dtype=dtype)
        N = x.shape[1]
        H_out = self.proj_size or self.hidden_size
        h0 = c0 = None
        if hx is not None:
            if self.mode == "LSTM":
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise ValueError(f"{name}: hx must be a tuple (h0, c0)")
                h0 = self._check_state(xp, "h0", hx[0], batched, N, H_out)
                c0 = self._check_state(xp, "c0", hx[1], batched, N, self.hidden_size)
            else:
                h0 = self._check_state(xp, "h0", hx, batched, N, H_out)
        ops.compute_dtype(name, h0, c0)  # TypeError for complex/object states
        return x, h0, c0, batched, dtype, xp

    def _run_direction(self, x, h0, c0, sfx):
        """One layer in one direction on time-major x; returns (hs, h_n, c_n, cache)."""
        p = self._params
        W_ih, W_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
        b_ih, b_hh = (p["bias_ih" + sfx], p["bias_hh" + sfx]) if self.bias else (None, None)
        name = type(self).__name__
        if self.mode == "LSTM":
            b = b_ih + b_hh if self.bias else None
            W_hr = p.get("weight_hr" + sfx)
            hs, cs, gates, hfull = ops.lstm_forward(x, h0, c0, W_ih, W_hh, b, W_hr,
                                                     torch_layout=True, layer=name)
            return hs, hs[-1], cs[-1], (x, h0, c0, hs, cs, gates, hfull)
        if self.mode == "GRU":
            hs, gates, aux = ops.gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh, torch_layout=True,
                                              layer=name)
            return hs, hs[-1], None, (x, h0, hs, gates, aux)
        b = b_ih + b_hh if self.bias else None
        hs = ops.rnn_forward(x, h0, W_ih, W_hh, b, relu=self.mode == "RNN_RELU",
                              torch_layout=True, layer=name)
        return hs, hs[-1], None, (x, h0, hs)

    def __call__(self, x, hx=None):
        return self.forward(x, hx)

    def forward(self, x, hx=None):
        x, h0_all, c0_all, batched, dtype, xp = self._prepare(x, hx)
        dirs = self.num_directions
        h_n, c_n, caches, masks = [], [], [], []
        inp = x
        for layer in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(self._suffixes(layer)):
                i = layer * dirs + d
                h0 = None if h0_all is None else h0_all[i]
                c0 = None if c0_all is None else c0_all[i]
                xi = inp if d == 0 else xp.ascontiguousarray(inp[::-1])
                hs, hn, cn, cache = self._run_direction(xi, h0, c0, sfx)
                outs.append(hs if d == 0 else hs[::-1])
                h_n.append(hn)
                c_n.append(cn)
                caches.append(cache)
            out = outs[0] if dirs == 1 else xp.concatenate(outs, axis=2)
            mask = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                # Drawn on the host (the same draws as on the CPU), then moved to out's device.
                keep = self._rng.random(out.shape) >= self.dropout
                mask = xp.asarray(keep.astype(out.dtype) / (1.0 - self.dropout)) \
                    if self.dropout < 1 else xp.zeros_like(out)
                out = out * mask
            masks.append(mask)
            inp = out
        self._cache = (caches, masks, batched, x.shape, dtype)
        output = inp
        h_n = xp.stack(h_n)
        if batched:
            if self.batch_first:
                output = xp.swapaxes(output, 0, 1)
        else:
            output, h_n = output[:, 0, :], h_n[:, 0, :]
        if dirs == 1:  # the last layer's hs, which its backward reads: hand out a copy
            output = output.copy()
        if self.mode == "LSTM":
            c_n = xp.stack(c_n)
            return output, (h_n, c_n if batched else c_n[:, 0, :])
        return output, h_n

    # ---- backward

    def _prepare_grad(self, xp, what, g, shape, batched, dtype):
        name = type(self).__name__
        if g is None:
            return None
        g = _to_array(xp, g)
        user_shape = shape if batched else (shape[0], shape[2])
        if tuple(g.shape) != user_shape:
            raise ValueError(f"{name}.backward: {what} has shape {tuple(g.shape)} but "
                             f"{user_shape} was expected")
        return xp.asarray(g if batched else g[:, np.newaxis, :], dtype=dtype)

    def backward(self, d_output, d_hn=None, d_cn=None):
        """Gradient w.r.t. the last call's input; fills ``grads`` and ``d_h0`` (and ``d_c0``)."""
        name = type(self).__name__
        if self._cache is None:
            raise RuntimeError(f"{name}.backward called before a forward pass")
        caches, masks, batched, (T, N, _), dtype = self._cache
        dirs = self.num_directions
        H_out = self.proj_size or self.hidden_size
        L = self.num_layers * dirs
        xp = self._xp(d_output, d_hn, d_cn, caches[0][0])
        d_out = _to_array(xp, d_output)
        out_shape = (T, N, dirs * H_out)
        if batched and self.batch_first:
            want = (N, T, dirs * H_out)
            if tuple(d_out.shape) != want:
                raise ValueError(f"{name}.backward: d_output has shape {tuple(d_out.shape)} but "
                                 f"{want} was expected")
            d_out = xp.swapaxes(d_out, 0, 1)
        else:
            d_out = self._prepare_grad(xp, "d_output", d_out, out_shape, batched, dtype)
        d_out = xp.asarray(d_out, dtype=dtype)
        d_hn = self._prepare_grad(xp, "d_hn", d_hn, (L, N, H_out), batched, dtype)
        if self.mode == "LSTM":
            d_cn = self._prepare_grad(xp, "d_cn", d_cn, (L, N, self.hidden_size), batched,
                                      dtype)
        elif d_cn is not None:
            raise ValueError(f"{name}.backward: d_cn is only for LSTM")

        grads = OrderedDict()
        d_h0 = [None] * L
        d_c0 = [None] * L
        for layer in reversed(range(self.num_layers)):
            if masks[layer] is not None:
                d_out = d_out * masks[layer]
            d_in = None
            for d, sfx in enumerate(self._suffixes(layer)):
                i = layer * dirs + d
                dhs = d_out[:, :, d * H_out:(d + 1) * H_out]
                if d == 1:
                    dhs = dhs[::-1]
                dhs = xp.ascontiguousarray(dhs)
                dhn = None if d_hn is None else d_hn[i]
                dcn = None if d_cn is None else d_cn[i]
                dx, d_h0[i], d_c0[i], g = self._backward_direction(caches[i], dhs, dhn, dcn, sfx)
                grads.update(g)
                if d == 1:
                    dx = dx[::-1]
                d_in = dx if d_in is None else d_in + dx
            d_out = d_in

        self.grads = OrderedDict((k, grads[k].astype(p.dtype, copy=False))
                                 for k, p in self._params.items())
        self.d_h0 = xp.stack(d_h0)
        if self.mode == "LSTM":
            self.d_c0 = xp.stack(d_c0)
        d_input = d_out
        if not batched:
            self.d_h0 = self.d_h0[:, 0, :]
            if self.mode == "LSTM":
                self.d_c0 = self.d_c0[:, 0, :]
            return d_input[:, 0, :]
        return xp.swapaxes(d_input, 0, 1) if self.batch_first else d_input

    def _backward_direction(self, cache, dhs, dhn, dcn, sfx):
        p = self._params
        name = type(self).__name__
        W_ih, W_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
        g = OrderedDict()
        dc0 = None
        if self.mode == "LSTM":
            x, h0, c0, hs, cs, gates, hfull = cache
            W_hr = p.get("weight_hr" + sfx)
            dx, dh0, dc0, dW_ih, dW_hh, db, dW_hr = ops.lstm_backward(
                x, h0, c0, W_ih, W_hh, W_hr, hs, cs, gates, hfull, dhs, dhn, dcn,
                torch_layout=True, layer=name)
            db_ih = db_hh = db
        elif self.mode == "GRU":
            x, h0, hs, gates, aux = cache
            dx, dh0, dW_ih, dW_hh, db_ih, db_hh = ops.gru_backward(
                x, h0, W_ih, W_hh, hs, gates, aux, dhs, dhn, torch_layout=True, layer=name)
        else:
            x, h0, hs = cache
            dx, dh0, dW_ih, dW_hh, db = ops.rnn_backward(
                x, h0, W_ih, W_hh, hs, dhs, dhn, relu=self.mode == "RNN_RELU",
                torch_layout=True, layer=name)
            db_ih = db_hh = db
        g["weight_ih" + sfx] = dW_ih
        g["weight_hh" + sfx] = dW_hh
        if self.bias:
            g["bias_ih" + sfx] = db_ih
            g["bias_hh" + sfx] = db_hh.copy() if db_hh is db_ih else db_hh
        if self.proj_size:
            g["weight_hr" + sfx] = dW_hr
        return dx, dh0, dc0, g


class RNN(_RNNBase):
    """Elman RNN, h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r} (use 'tanh' or 'relu')")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)


class LSTM(_RNNBase):
    """LSTM with PyTorch's gate order i, f, g, o and optional projection (proj_size)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, dtype=np.float32):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, dtype=dtype)
        self.d_c0 = None


class GRU(_RNNBase):
    """GRU with PyTorch's gates r, z, n: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype)
