"""The builder's layers: each wraps fastnn kernels (fastnn.layers, fastnn.nn) with a shape rule.

A module holds ``params`` (name -> array, updated in place by the optimizer), ``grads`` (same
names, filled by ``backward``) and ``buffers`` (saved state that is not trained: batch-norm
running statistics). Shapes handed to ``out_shape`` are per sample (no batch axis).
Every matrix product runs in fastnn's Affine/Convolution kernels; the small pieces with no kernel
(LeakyReLU, Softmax, global mean, embedding gather, squeeze) are elementwise NumPy.
"""

import abc

import numpy as np

from .. import ops
from .. import layers as L


class ShapeError(ValueError):
    """A layer cannot take the shape its input has; the model adds the layer number."""


def _pair(v, what):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{what} must be an int or a pair, got {v}")
    return v


def _single(v, what):
    """One int from an int or a pair with equal entries (the kernels take one stride/pad)."""
    a, b = _pair(v, what)
    if a != b:
        raise ValueError(f"{what}={(a, b)}: fastnn's kernels take one value for both directions")
    return a


def _uniform(rng, bound, shape, dtype):
    rng = np.random.default_rng() if rng is None else rng
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _fmt(shape):
    return "(N, " + ", ".join(str(s) for s in shape) + ")" if shape else "(N,)"


class Module(abc.ABC):
    """A builder layer: forward(x, train) -> y, then backward(dout) -> dx filling ``grads``."""

    accepts_int = False     # True where the input is token indices (embedding)

    def __init__(self):
        self.params, self.grads, self.buffers = {}, {}, {}

    def out_shape(self, shape):
        return shape

    @abc.abstractmethod
    def forward(self, x, train):
        """The layer's output for input batch x (train: dropout/batch-norm behaviour)."""

    @abc.abstractmethod
    def backward(self, dout):
        """The gradient w.r.t. the last forward's input; parameter gradients go to ``grads``."""

    def load_buffers(self, buffers):
        self.buffers.update(buffers)


# ------------------------------------------------------------------ activations

class Activation(Module):
    def __init__(self, kernel):
        super().__init__()
        self.kernel = kernel

    def forward(self, x, train):
        return self.kernel.forward(x)

    def backward(self, dout):
        return self.kernel.backward(dout)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.slope = negative_slope

    def forward(self, x, train):
        self.neg = x < 0
        return np.where(self.neg, x * x.dtype.type(self.slope), x)

    def backward(self, dout):
        return np.where(self.neg, dout * dout.dtype.type(self.slope), dout)


class ReLU6(Module):
    """min(max(x, 0), 6), MobileNet's activation."""

    def forward(self, x, train):
        self.y = ops.relu6_forward(x)
        return self.y

    def backward(self, dout):
        return ops.relu6_backward(dout, self.y)


class Softmax(Module):
    """Softmax over the last axis (the class axis of (N, classes) outputs)."""

    def forward(self, x, train):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        self.y = e / e.sum(axis=-1, keepdims=True)
        return self.y

    def backward(self, dout):
        y = self.y
        return y * (dout - (dout * y).sum(axis=-1, keepdims=True))


def make_activation(name):
    key = name.lower()
    if key == "relu":
        return Activation(L.Relu())
    if key == "sigmoid":
        return Activation(L.Sigmoid())
    if key == "tanh":
        return Activation(L.Tanh())
    if key == "leakyrelu":
        return LeakyReLU()
    if key == "softmax":
        return Softmax()
    raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")


ACTIVATIONS = ("ReLU", "Softmax", "tanh", "sigmoid", "LeakyReLU")


# ------------------------------------------------------------------ dense and convolution

class Linear(Module):
    """Affine kernel; a 3-D/4-D input is flattened to (N, features) first."""

    def __init__(self, size, rng=None, dtype=np.float32):
        super().__init__()
        self.n_in, self.n_out = size
        bound = 1.0 / np.sqrt(self.n_in)
        self.params = {"W": _uniform(rng, bound, (self.n_in, self.n_out), dtype),
                       "b": _uniform(rng, bound, (self.n_out,), dtype)}
        self.kernel = L.Affine(self.params["W"], self.params["b"])

    def out_shape(self, shape):
        n = int(np.prod(shape)) if shape else 1
        if n != self.n_in:
            flat = f", flattened to {n}" if len(shape) > 1 else ""
            raise ShapeError(f"expects {self.n_in} input features (size=({self.n_in}, "
                             f"{self.n_out})) but its input has {n} (shape {_fmt(shape)}{flat})")
        return (self.n_out,)

    def forward(self, x, train):
        self.x_shape = x.shape
        out = self.kernel.forward(x.reshape(x.shape[0], -1))
        return out

    def backward(self, dout):
        dx = self.kernel.backward(dout)
        self.grads = {"W": self.kernel.dW, "b": self.kernel.db}
        return dx.reshape(self.x_shape)


def _conv_out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


class Conv2d(Module):
    """Convolution kernel on (N, C, H, W); without bias where batch norm follows (res blocks);
    groups as PyTorch's (groups = channels: depthwise)."""

    def __init__(self, size, kernel_size, rng=None, dtype=np.float32, stride=1, padding=0,
                 bias=True, groups=1):
        super().__init__()
        self.c_in, self.c_out = size
        self.kh, self.kw = _pair(kernel_size, "kernel_size")
        self.stride = _single(stride, "stride")
        self.pad = _single(padding, "padding")
        self.groups = groups
        c_group = self.c_in // groups
        bound = 1.0 / np.sqrt(c_group * self.kh * self.kw)
        self.params["W"] = _uniform(rng, bound, (self.c_out, c_group, self.kh, self.kw), dtype)
        if bias:
            self.params["b"] = _uniform(rng, bound, (self.c_out,), dtype)
        self.no_bias = None if bias else np.zeros(self.c_out, dtype)

    def out_shape(self, shape):
        if len(shape) != 3:
            raise ShapeError(f"expects (N, {self.c_in}, H, W) input but gets {_fmt(shape)}")
        c, h, w = shape
        if c != self.c_in:
            raise ShapeError(f"expects {self.c_in} input channels (size=({self.c_in}, "
                             f"{self.c_out})) but its input has {c} (shape {_fmt(shape)})")
        oh = _conv_out(h, self.kh, self.stride, self.pad)
        ow = _conv_out(w, self.kw, self.stride, self.pad)
        if oh < 1 or ow < 1:
            raise ShapeError(f"kernel {self.kh}x{self.kw} does not fit a {h}x{w} input "
                             f"with padding {self.pad}")
        return (self.c_out, oh, ow)

    def forward(self, x, train):
        # The op front directly: the book's Convolution copies x for its aliasing rules, which
        # the builder's modules (never editing an input in place) do not need.
        self.x = x
        return ops.conv2d_forward(x, self.params["W"], self.params.get("b", self.no_bias),
                                   self.stride, self.pad, groups=self.groups)

    def backward(self, dout):
        if getattr(self, "x", None) is None:
            raise RuntimeError("Conv2d.backward called before forward")
        dx, dW, db = ops.conv2d_backward(dout, self.x, self.params["W"],
                                          self.params.get("b", self.no_bias), self.stride,
                                          self.pad, groups=self.groups)
        self.grads = {"W": dW}
        if "b" in self.params:
            self.grads["b"] = db
        return dx


class Conv1d(Module):
    """(N, C, L) convolution on the conv2d kernel with H = 1; padding is applied along L only."""

    def __init__(self, size, kernel_size, rng, dtype, stride=1, padding=0):
        super().__init__()
        self.c_in, self.c_out = size
        self.k = int(np.ravel(kernel_size)[0])
        self.stride = int(np.ravel(stride)[0])
        self.pad = int(np.ravel(padding)[0])
        bound = 1.0 / np.sqrt(self.c_in * self.k)
        self.params = {"W": _uniform(rng, bound, (self.c_out, self.c_in, 1, self.k), dtype),
                       "b": _uniform(rng, bound, (self.c_out,), dtype)}
        self.kernel = L.Convolution(self.params["W"], self.params["b"], self.stride, 0)

    def out_shape(self, shape):
        if len(shape) != 2:
            raise ShapeError(f"expects (N, {self.c_in}, L) input but gets {_fmt(shape)}")
        c, n = shape
        if c != self.c_in:
            raise ShapeError(f"expects {self.c_in} input channels (size=({self.c_in}, "
                             f"{self.c_out})) but its input has {c} (shape {_fmt(shape)})")
        out = _conv_out(n, self.k, self.stride, self.pad)
        if out < 1:
            raise ShapeError(f"kernel {self.k} does not fit a length-{n} input")
        return (self.c_out, out)

    def forward(self, x, train):
        self.n = x.shape[2]
        if self.pad:
            x = np.pad(x, [(0, 0), (0, 0), (self.pad, self.pad)])
        return self.kernel.forward(x[:, :, None, :])[:, :, 0, :]

    def backward(self, dout):
        dx = self.kernel.backward(dout[:, :, None, :])[:, :, 0, :]
        self.grads = {"W": self.kernel.dW, "b": self.kernel.db}
        return dx[:, :, self.pad:self.pad + self.n]


class Pool2d(Module):
    """Max or average pooling (PyTorch semantics: floor sizes, max pads with -inf, avg with 0).

    The padding and the cropping of rows/columns no window reaches happen here, so the kernel
    always sees an exactly tiled input with pad 0.
    """

    def __init__(self, mode, kernel_size, stride=None, padding=0):
        super().__init__()
        self.mode = mode
        self.kh, self.kw = _pair(kernel_size, "kernel_size")
        self.stride = _single(stride if stride is not None else (self.kh, self.kw), "stride")
        self.pad = _single(padding, "padding")
        if self.pad * 2 > min(self.kh, self.kw):
            raise ValueError(f"{mode}: padding={self.pad} must be at most half the kernel size")
        cls = L.Pooling if mode == "maxpool" else L.AvgPooling
        self.kernel = cls(self.kh, self.kw, stride=self.stride, pad=0)

    def out_shape(self, shape):
        if len(shape) != 3:
            raise ShapeError(f"expects (N, C, H, W) input but gets {_fmt(shape)}")
        c, h, w = shape
        oh = _conv_out(h, self.kh, self.stride, self.pad)
        ow = _conv_out(w, self.kw, self.stride, self.pad)
        if oh < 1 or ow < 1:
            raise ShapeError(f"window {self.kh}x{self.kw} does not fit a {h}x{w} input")
        return (c, oh, ow)

    def forward(self, x, train):
        self.x_shape = x.shape
        p = self.pad
        if p:
            fill = -np.inf if self.mode == "maxpool" else 0
            x = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)], constant_values=fill)
        _, oh, ow = self.out_shape(self.x_shape[1:])
        self.used = ((oh - 1) * self.stride + self.kh, (ow - 1) * self.stride + self.kw)
        self.padded = x.shape
        return self.kernel.forward(np.ascontiguousarray(x[:, :, :self.used[0], :self.used[1]]))

    def backward(self, dout):
        d = self.kernel.backward(dout)
        if d.shape != self.padded:
            full = np.zeros(self.padded, d.dtype)
            full[:, :, :self.used[0], :self.used[1]] = d
            d = full
        p = self.pad
        return d[:, :, p:p + self.x_shape[2], p:p + self.x_shape[3]] if p else d


class Dropout(Module):
    """PyTorch's dropout, as BaseNN's: in training the kept units are scaled by 1 / (1 - p), at
    inference the layer is the identity (the book's layer scales at inference instead)."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout: p must be in [0, 1], got {p}")
        self.kernel = L.Dropout(p)
        self.scale = 1.0 / (1.0 - p) if p < 1 else 0.0   # p = 1 drops everything

    def forward(self, x, train):
        if not train:
            return x
        out = self.kernel.forward(x, True)
        return out * out.dtype.type(self.scale)

    def backward(self, dout):
        d = self.kernel.backward(dout)
        return d * d.dtype.type(self.scale)


class BatchNorm(Module):
    """Per-channel batch norm of (N, C), (N, C, L) or (N, C, H, W): statistics of each channel
    over the batch (and L or H, W); running averages by the book's rule (momentum 0.9, biased
    variance) and its epsilon."""

    MOMENTUM = 0.9

    def __init__(self, size, dims=1, dtype=np.float32):
        super().__init__()
        self.c = int(np.ravel(size)[-1])
        self.dims = dims
        self.params = {"gamma": np.ones(self.c, dtype), "beta": np.zeros(self.c, dtype)}
        self.buffers = {"running_mean": np.zeros(self.c, dtype),
                        "running_var": np.ones(self.c, dtype)}

    def out_shape(self, shape):
        ok = len(shape) in ((1, 2) if self.dims == 1 else (3,))
        if not ok or shape[0] != self.c:
            want = (f"(N, {self.c}) or (N, {self.c}, L)" if self.dims == 1
                    else f"(N, {self.c}, H, W)")
            raise ShapeError(f"expects {want} input but gets {_fmt(shape)}")
        return shape

    def forward(self, x, train):
        gamma, beta = self.params["gamma"], self.params["beta"]
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        if not train:
            # scale * x + (beta - scale * mean), PyTorch's fused form: one pass over x.
            scale = gamma / np.sqrt(rv + rv.dtype.type(ops.BATCHNORM_EPS))
            return ops.channel_affine(x, scale, beta - scale * rm, layer="BatchNorm")
        self.flat = x.ndim == 2
        if self.flat:  # (N, C): the book's kernel, whose columns are these channels
            out, self.xc, self.xn, self.std, new_rm, new_rv = ops.batchnorm_forward_train(
                x, gamma, beta, rm, rv, self.MOMENTUM, layer="BatchNorm")
        else:
            out, self.xn, mean, var, self.inv_std = ops.channel_batchnorm_forward(
                x, gamma, beta, ops.BATCHNORM_EPS, layer="BatchNorm")
            m = self.MOMENTUM
            new_rm, new_rv = m * rm + (1 - m) * mean, m * rv + (1 - m) * var
        if x.size:  # an empty batch leaves the running averages as they were
            self.buffers["running_mean"] = new_rm.astype(rm.dtype, copy=False)
            self.buffers["running_var"] = new_rv.astype(rv.dtype, copy=False)
        return out

    def backward(self, dout):
        if getattr(self, "xn", None) is None:
            raise RuntimeError("BatchNorm.backward: call forward(x, train=True) first")
        gamma = self.params["gamma"]
        if self.flat:
            dx, dgamma, dbeta = ops.batchnorm_backward(dout, gamma, self.xc, self.xn, self.std,
                                                        layer="BatchNorm")
        else:
            dx, dgamma, dbeta = ops.channel_batchnorm_backward(dout, self.xn, gamma,
                                                                self.inv_std, layer="BatchNorm")
        self.grads = {"gamma": dgamma, "beta": dbeta}
        return dx


# ------------------------------------------------------------------ shape utilities

class Mean(Module):
    """Global average: over H, W of (N, C, H, W); over the sequence axis of (N, T, D)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def _axes(self, ndim):
        if self.dim is not None:
            dims = np.ravel(self.dim).tolist()
            return tuple(sorted(d % ndim for d in dims))
        return (2, 3) if ndim == 4 else (1,)

    def out_shape(self, shape):
        if len(shape) < 2:
            raise ShapeError(f"expects a 3-D or 4-D input but gets {_fmt(shape)}")
        axes = self._axes(len(shape) + 1)
        if 0 in axes:
            raise ShapeError("cannot average over the batch axis")
        return tuple(s for i, s in enumerate(shape, 1) if i not in axes)

    def forward(self, x, train):
        self.x_shape = x.shape
        self.axes = self._axes(x.ndim)
        return x.mean(axis=self.axes)

    def backward(self, dout):
        count = int(np.prod([self.x_shape[a] for a in self.axes]))
        d = np.expand_dims(dout, self.axes) / dout.dtype.type(count)
        return np.broadcast_to(d, self.x_shape).copy()


class Unsqueeze(Module):
    """Keep the last time step of (N, T, D) as a length-1 sequence (N, 1, D)."""

    def out_shape(self, shape):
        if len(shape) != 2:
            raise ShapeError(f"expects an (N, T, D) sequence but gets {_fmt(shape)}")
        return (1, shape[1])

    def forward(self, x, train):
        self.x_shape = x.shape
        return x[:, -1:, :]

    def backward(self, dout):
        dx = np.zeros(self.x_shape, dout.dtype)
        dx[:, -1:, :] = dout
        return dx


class Squeeze(Module):
    """Drop the length-1 axis of (N, 1, D) (or any length-1 axis after the batch)."""

    def out_shape(self, shape):
        if 1 not in shape:
            raise ShapeError(f"has no length-1 axis to remove in {_fmt(shape)}")
        return tuple(s for s in shape if s != 1)

    def forward(self, x, train):
        self.x_shape = x.shape
        return x.reshape((x.shape[0],) + self.out_shape(x.shape[1:]))

    def backward(self, dout):
        return dout.reshape(self.x_shape)


class Embedding(Module):
    accepts_int = True

    def __init__(self, vocab_size, embedding_dim, rng, dtype):
        super().__init__()
        self.vocab, self.dim = int(vocab_size), int(embedding_dim)
        self.params = {"W": rng.standard_normal((self.vocab, self.dim)).astype(dtype)}

    def out_shape(self, shape):
        return tuple(shape) + (self.dim,)

    def forward(self, x, train):
        idx = np.asarray(x)
        if idx.dtype.kind not in "iu":
            if not np.all(idx == np.round(idx)):
                raise ValueError("embedding: inputs must be integer token indices")
            idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.vocab):
            raise IndexError(f"embedding: token index out of range [0, {self.vocab}) "
                             f"(min {idx.min()}, max {idx.max()})")
        self.idx = idx
        return self.params["W"][idx]

    def backward(self, dout):
        dW = np.zeros_like(self.params["W"])
        np.add.at(dW, self.idx.ravel(), dout.reshape(-1, self.dim))
        self.grads = {"W": dW}
        return None


class LSTM(Module):
    """fastnn.nn.LSTM (batch_first): (N, T, in) -> (N, T, hidden), every time step."""

    def __init__(self, size, dtype=np.float32, num_layers=1):
        super().__init__()
        from .. import nn as fnn

        self.n_in, self.hidden = size
        self.lstm = fnn.LSTM(self.n_in, self.hidden, num_layers=num_layers, batch_first=True,
                             dtype=dtype)
        self.params = {k: np.ascontiguousarray(v, dtype=dtype)
                       for k, v in self.lstm.state_dict().items()}
        self._sync()

    def _sync(self):
        """Make the LSTM compute with self.params (the arrays the optimizer updates)."""
        sd = self.lstm.state_dict()
        if any(sd[k] is not v for k, v in self.params.items()):
            self.lstm.load_state_dict(self.params)

    def out_shape(self, shape):
        if len(shape) != 2 or shape[1] != self.n_in:
            raise ShapeError(f"expects (N, T, {self.n_in}) input (size=({self.n_in}, "
                             f"{self.hidden})) but gets {_fmt(shape)}")
        return (shape[0], self.hidden)

    def forward(self, x, train):
        self._sync()
        out, _ = self.lstm(x)
        return out

    def backward(self, dout):
        dx = self.lstm.backward(dout)
        if isinstance(dx, tuple):
            dx = dx[0]
        self.grads = {k: np.asarray(v) for k, v in self.lstm.grads.items()}
        return dx


class LastStep(Module):
    """The last time step of a sequence: (N, T, D) -> (N, D)."""

    def out_shape(self, shape):
        if len(shape) != 2:
            raise ShapeError(f"expects an (N, T, D) sequence but gets {_fmt(shape)}")
        return (shape[1],)

    def forward(self, x, train):
        self.x_shape = x.shape
        return x[:, -1, :]

    def backward(self, dout):
        dx = np.zeros(self.x_shape, dout.dtype)
        dx[:, -1, :] = dout
        return dx


class Flatten(Module):
    """(N, ...) -> (N, features), BaseNN's reshape layer."""

    def out_shape(self, shape):
        return (int(np.prod(shape)),)

    def forward(self, x, train):
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.x_shape)


class EmLSTM(Module):
    """BaseNN's em_lstm, a word-level language model: token ids (N, T) -> embedding (ed) ->
    LSTM (hd, num_layers) -> a linear layer to the vocabulary at every step: (N, T, vocab)
    scores. ``step`` runs one token with a carried hidden state (text generation)."""

    accepts_int = True

    def __init__(self, vocab_size, size, num_layers=1, rng=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        ed, hd = size
        self.vocab, self.hidden, self.num_layers = int(vocab_size), int(hd), int(num_layers)
        self.embedding = Embedding(self.vocab, ed, rng, dtype)
        self.lstm = LSTM((ed, hd), dtype, num_layers=num_layers)
        bound = 1.0 / np.sqrt(hd)
        self.linear_params = {"W": _uniform(rng, bound, (hd, self.vocab), dtype),
                              "b": _uniform(rng, bound, (self.vocab,), dtype)}
        self.affine = L.Affine(self.linear_params["W"], self.linear_params["b"])
        self.params = {"embedding.W": self.embedding.params["W"],
                       **{f"lstm.{k}": v for k, v in self.lstm.params.items()},
                       "linear.W": self.linear_params["W"], "linear.b": self.linear_params["b"]}

    def out_shape(self, shape):
        if len(shape) != 1:
            raise ShapeError(f"expects (N, T) token ids but gets {_fmt(shape)}")
        return (shape[0], self.vocab)

    def forward(self, x, train):
        e = self.embedding.forward(x, train)
        h = self.lstm.forward(e, train)
        self.h_shape = h.shape
        out = self.affine.forward(h.reshape(-1, self.hidden))
        return out.reshape(h.shape[:2] + (self.vocab,))

    def backward(self, dout):
        dh = self.affine.backward(dout.reshape(-1, self.vocab)).reshape(self.h_shape)
        self.embedding.backward(self.lstm.backward(dh))
        self.grads = {"embedding.W": self.embedding.grads["W"],
                      **{f"lstm.{k}": v for k, v in self.lstm.grads.items()},
                      "linear.W": self.affine.dW, "linear.b": self.affine.db}
        return None

    def step(self, token, hidden=None):
        """(scores over the vocabulary (vocab,), (h, c)) after one token, starting from hidden
        ((h, c), each (num_layers, 1, hd); zeros when None)."""
        self.lstm._sync()
        e = self.embedding.params["W"][np.asarray([[token]])]
        if hidden is not None:
            hidden = tuple(np.asarray(a, dtype=e.dtype) for a in hidden)
        out, hidden = self.lstm.lstm(e, hidden)
        scores = out.reshape(1, -1) @ self.linear_params["W"] + self.linear_params["b"]
        return scores[0], hidden


def action_model(size, dtype):
    """BaseNN's action_model for pose sequences: an LSTM, its last time step, batch norm."""
    return Sequence([LSTM(size, dtype), LastStep(), BatchNorm(size[1], 1, dtype)])


# ------------------------------------------------------------------ the user's own modules

def _train_keyword(forward):
    """The keyword a foreign forward takes for training mode ('train_flg' as the book's layers,
    or 'train'), or None."""
    import inspect
    try:
        names = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return None
    return next((k for k in ("train_flg", "train") if k in names), None)


class Custom(Module):
    """A module the user wrote, passed to ``add``: a fastnn.basenn Module subclass (whose
    parameters are its own ``params`` or, when it has none, those of the Module attributes it
    holds, as ``attr.name``), or any object with the book's layer protocol: ``forward(x)``
    (given ``train_flg``/``train`` when it takes one) and ``backward(dout)``, with parameters in
    ``params``/``grads`` (dicts, or lists as vol. 2's layers) or as attributes ``W``, ``b`` with
    ``dW``, ``db`` (vol. 1's layers). A tuple returned by forward or backward (torch-style
    ``output, state``) contributes its first item. The optimizer updates the parameter arrays
    in place, so the object sees every step."""

    def __init__(self, obj, dtype=np.float32):
        super().__init__()
        if not (callable(getattr(obj, "forward", None)) and
                callable(getattr(obj, "backward", None))):
            has = [m for m in ("forward", "backward") if hasattr(obj, m)]
            raise TypeError(f"add: a module object needs forward and backward methods; "
                            f"{type(obj).__name__} has {', '.join(has) or 'neither'}")
        self.obj, self.dtype = obj, np.dtype(dtype)
        self.native = isinstance(obj, Module)
        self.train_arg = None if self.native else _train_keyword(obj.forward)
        self.params, self.buffers = self._gather("params"), self._gather("buffers")

    def _children(self):
        return [(k, v) for k, v in vars(self.obj).items() if isinstance(v, Module)]

    def _gather(self, which):
        o = self.obj
        if self.native:
            own, children = getattr(o, which), self._children()
            if own or not children:
                return dict(own)
            return {f"{k}.{n}": v for k, m in children for n, v in getattr(m, which).items()}
        if which == "buffers":
            return {}
        book = getattr(o, which, None)
        if isinstance(book, dict):
            return dict(book)
        if isinstance(book, (list, tuple)):
            return {str(i): v for i, v in enumerate(book)}
        names = ("W", "b") if which == "params" else ("dW", "db")
        return {n[-1]: getattr(o, n) for n in names if getattr(o, n, None) is not None}

    def load_buffers(self, buffers):
        if self.native and self.obj.buffers:
            self.obj.load_buffers(buffers)
        elif self.native:
            for k, m in self._children():
                own = {n[len(k) + 1:]: v for n, v in buffers.items() if n.startswith(k + ".")}
                if own:
                    m.load_buffers(own)
        self.buffers = self._gather("buffers")

    def out_shape(self, shape):
        if self.native and type(self.obj).out_shape is not Module.out_shape:
            return self.obj.out_shape(shape)
        # Not declared: one inference-mode forward of a zero sample, on a copy of the module so
        # that its state (a recurrent layer's carried h, cached inputs) stays as it was.
        import copy
        try:
            probe = Custom(copy.deepcopy(self.obj), self.dtype)
        except Exception:  # an object that cannot be copied: keep its attributes around the probe
            saved = dict(vars(self.obj))
            try:
                y = self.forward(np.zeros((1,) + tuple(shape), self.dtype), False)
            finally:
                vars(self.obj).clear()
                vars(self.obj).update(saved)
            return tuple(np.shape(y)[1:])
        y = probe.forward(np.zeros((1,) + tuple(shape), self.dtype), False)
        return tuple(np.shape(y)[1:])

    def forward(self, x, train):
        if self.native:
            y = self.obj.forward(x, train)
        elif self.train_arg:
            y = self.obj.forward(x, **{self.train_arg: train})
        else:
            y = self.obj.forward(x)
        if self.native:
            self.buffers = self._gather("buffers")
        return y[0] if isinstance(y, tuple) else y

    def backward(self, dout):
        dx = self.obj.backward(dout)
        if self.native:
            self.grads = self._gather("grads")
        else:
            grads = self._gather("grads")
            self.grads = {k: grads[k] for k in self.params if k in grads}
        return dx[0] if isinstance(dx, tuple) else dx


# ------------------------------------------------------------------ residual blocks

class Sequence(Module):
    """Modules in a row, with their params/grads/buffers under 'i.name' keys."""

    def __init__(self, modules):
        super().__init__()
        self.modules = modules
        self._collect()

    def _collect(self):
        self.params, self.buffers = {}, {}
        for i, m in enumerate(self.modules):
            for k, v in m.params.items():
                self.params[f"{i}.{k}"] = v
            for k, v in m.buffers.items():
                self.buffers[f"{i}.{k}"] = v

    def load_buffers(self, buffers):
        for i, m in enumerate(self.modules):
            pre = f"{i}."
            own = {k[len(pre):]: v for k, v in buffers.items() if k.startswith(pre)}
            if own:
                m.load_buffers(own)
        self._collect()

    def out_shape(self, shape):
        for m in self.modules:
            shape = m.out_shape(shape)
        return shape

    def forward(self, x, train):
        for m in self.modules:
            x = m.forward(x, train)
        for i, m in enumerate(self.modules):
            for k, v in m.buffers.items():
                self.buffers[f"{i}.{k}"] = v
        return x

    def backward(self, dout):
        for m in reversed(self.modules):
            dout = m.backward(dout)
        self.grads = {f"{i}.{k}": v for i, m in enumerate(self.modules) for k, v in m.grads.items()}
        return dout


class Residual(Module):
    """relu(main(x) + shortcut(x)); the shortcut is identity or a 1x1 conv + batch norm.
    Without relu (MobileNet's inverted residual): main(x) + shortcut(x)."""

    def __init__(self, main, shortcut, relu=True):
        super().__init__()
        self.main = main
        self.shortcut = shortcut
        self.relu = L.Relu() if relu else None
        self._collect()

    def _parts(self):
        return [("main", self.main)] + ([("short", self.shortcut)] if self.shortcut else [])

    def _collect(self):
        self.params = {f"{p}.{k}": v for p, m in self._parts() for k, v in m.params.items()}
        self.buffers = {f"{p}.{k}": v for p, m in self._parts() for k, v in m.buffers.items()}

    def load_buffers(self, buffers):
        for p, m in self._parts():
            m.load_buffers({k[len(p) + 1:]: v for k, v in buffers.items() if k.startswith(p + ".")})
        self._collect()

    def out_shape(self, shape):
        out = self.main.out_shape(shape)
        short = self.shortcut.out_shape(shape) if self.shortcut else tuple(shape)
        if short != out:
            raise ShapeError(f"residual branches disagree: {_fmt(out)} vs {_fmt(short)}")
        return out

    def forward(self, x, train):
        y = self.main.forward(x, train)
        s = self.shortcut.forward(x, train) if self.shortcut else x
        out = self.relu.forward(y + s) if self.relu else y + s
        self._collect()
        return out

    def backward(self, dout):
        d = self.relu.backward(dout) if self.relu else dout
        dx = self.main.backward(d)
        dx = dx + (self.shortcut.backward(d) if self.shortcut else d)
        self.grads = {f"{p}.{k}": v for p, m in self._parts() for k, v in m.grads.items()}
        return dx


def _projection(c_in, c_out, stride, rng, dtype):
    return Sequence([Conv2d((c_in, c_out), 1, rng, dtype, stride=stride, bias=False),
                     BatchNorm(c_out, 2, dtype)])


def basic_block(c_in, c_out, stride, rng, dtype):
    main = Sequence([Conv2d((c_in, c_out), 3, rng, dtype, stride=stride, padding=1, bias=False),
                     BatchNorm(c_out, 2, dtype), Activation(L.Relu()),
                     Conv2d((c_out, c_out), 3, rng, dtype, padding=1, bias=False),
                     BatchNorm(c_out, 2, dtype)])
    short = _projection(c_in, c_out, stride, rng, dtype) if stride != 1 or c_in != c_out else None
    return Residual(main, short)


def bottleneck_block(c_in, planes, stride, rng, dtype):
    c_out = 4 * planes
    main = Sequence([Conv2d((c_in, planes), 1, rng, dtype, bias=False),
                     BatchNorm(planes, 2, dtype), Activation(L.Relu()),
                     Conv2d((planes, planes), 3, rng, dtype, stride=stride, padding=1, bias=False),
                     BatchNorm(planes, 2, dtype), Activation(L.Relu()),
                     Conv2d((planes, c_out), 1, rng, dtype, bias=False),
                     BatchNorm(c_out, 2, dtype)])
    short = _projection(c_in, c_out, stride, rng, dtype) if stride != 1 or c_in != c_out else None
    return Residual(main, short)


def res_stage(block, size, num_blocks, stride, rng, dtype):
    """num_blocks blocks; the first takes size[0] channels and the stride, the rest stride 1."""
    c_in, c_out = size
    expansion = 4 if block is bottleneck_block else 1
    blocks = []
    for i in range(int(num_blocks)):
        blocks.append(block(c_in, c_out, stride if i == 0 else 1, rng, dtype))
        c_in = c_out * expansion
    return Sequence(blocks)


# ------------------------------------------------------------------ MobileNetV2

# (expansion t, output channels c, blocks n, first stride s) of MobileNetV2's inverted residual
# stages, between a 3x3 stride-2 convolution to 32 channels and a 1x1 one to 1280.
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
MOBILENET_V2_FEATURES = 1280


def _mobilenet_layers():
    """(kind, c_in, c_out, stride, expansion) of each of the 19 feature layers, in order."""
    out, c_in = [("conv", 3, 32, 2, None)], 32
    for t, c, n, s in MOBILENET_V2_STAGES:
        for i in range(n):
            out.append(("block", c_in, c, s if i == 0 else 1, t))
            c_in = c
    out.append(("conv", c_in, MOBILENET_V2_FEATURES, 1, None))
    return out


def mobilenet_v2_sizes(num_classes=None):
    """(parameters, buffer values) of mobilenet_v2(num_classes), without building it."""
    params = buffers = 0

    def conv_bn(c_in, c_out, k, groups=1):
        nonlocal params, buffers
        params += c_out * (c_in // groups) * k * k + 2 * c_out
        buffers += 2 * c_out

    for kind, c_in, c_out, _, t in _mobilenet_layers():
        if kind == "conv":
            conv_bn(c_in, c_out, 3 if c_in == 3 else 1)
            continue
        hidden = c_in * t
        if t != 1:
            conv_bn(c_in, hidden, 1)
        conv_bn(hidden, hidden, 3, groups=hidden)
        conv_bn(hidden, c_out, 1)
    if num_classes is not None:
        params += MOBILENET_V2_FEATURES * num_classes + num_classes
    return params, buffers


def mobilenet_v2(num_classes, rng, dtype):
    """MobileNetV2 (torchvision's layout): (N, 3, H, W) -> (N, 1280) features by global average
    pooling, then, when num_classes is given, dropout 0.2 and a linear classifier.

    ``torchvision_names`` pairs torchvision's state_dict prefixes with the modules they fill
    (see load_torchvision_weights)."""
    names = []

    def conv_bn(prefix, c_in, c_out, k, stride=1, groups=1, relu6=True):
        conv = Conv2d((c_in, c_out), k, rng, dtype, stride=stride, padding=(k - 1) // 2,
                      bias=False, groups=groups)
        bn = BatchNorm(c_out, 2, dtype)
        names.extend([(prefix[0], conv), (prefix[1], bn)])
        return [conv, bn] + ([ReLU6()] if relu6 else [])

    features = []
    for i, (kind, c_in, c_out, stride, t) in enumerate(_mobilenet_layers()):
        f = f"features.{i}"
        if kind == "conv":
            k = 3 if c_in == 3 else 1
            features.append(Sequence(conv_bn((f + ".0", f + ".1"), c_in, c_out, k, stride)))
            continue
        hidden, j, mods = c_in * t, 0, []
        if t != 1:
            mods += conv_bn((f"{f}.conv.0.0", f"{f}.conv.0.1"), c_in, hidden, 1)
            j = 1
        mods += conv_bn((f"{f}.conv.{j}.0", f"{f}.conv.{j}.1"), hidden, hidden, 3, stride,
                        groups=hidden)
        mods += conv_bn((f"{f}.conv.{j + 1}", f"{f}.conv.{j + 2}"), hidden, c_out, 1,
                        relu6=False)
        main = Sequence(mods)
        features.append(Residual(main, None, relu=False) if stride == 1 and c_in == c_out
                        else main)
    modules = [Sequence(features), Mean((2, 3))]
    if num_classes is not None:
        linear = Linear((MOBILENET_V2_FEATURES, num_classes), rng, dtype)
        names.append(("classifier.1", linear))
        modules += [Dropout(0.2), linear]
    net = Sequence(modules)
    net.torchvision_names = names
    return net


def load_torchvision_weights(net, state):
    """Copies a torchvision MobileNetV2 state_dict (name -> NumPy array) into ``net`` built by
    mobilenet_v2, in place. Batch norm's running variance is stored plus (1e-5 - the kernel's
    epsilon), so that inference gives torchvision's outputs with its epsilon of 1e-5."""
    missing = []

    def take(name, shape):
        if name not in state:
            missing.append(name)
            return None
        a = np.asarray(state[name])
        if a.shape != tuple(shape):
            raise ValueError(f"torchvision weights: {name} has shape {a.shape}, this network "
                             f"needs {tuple(shape)}")
        return a

    updates = []
    for prefix, m in net.torchvision_names:
        if isinstance(m, Conv2d):
            updates.append((m.params["W"], take(prefix + ".weight", m.params["W"].shape)))
        elif isinstance(m, Linear):
            W = take(prefix + ".weight", m.params["W"].shape[::-1])
            updates.append((m.params["W"], None if W is None else W.T))
            updates.append((m.params["b"], take(prefix + ".bias", m.params["b"].shape)))
        else:
            c = (m.c,)
            updates.append((m.params["gamma"], take(prefix + ".weight", c)))
            updates.append((m.params["beta"], take(prefix + ".bias", c)))
            mean, var = take(prefix + ".running_mean", c), take(prefix + ".running_var", c)
            if mean is not None and var is not None:
                dtype = m.params["gamma"].dtype
                m.load_buffers({"running_mean": mean.astype(dtype),
                                "running_var": (var + (1e-5 - ops.BATCHNORM_EPS)).astype(dtype)})
    if missing:
        raise ValueError(f"torchvision weights: {len(missing)} arrays missing, e.g. "
                         f"{', '.join(missing[:3])}")
    for target, value in updates:
        target[...] = value
    _recollect(net)


def _recollect(m):
    """Refreshes the params/buffers dicts of nested Sequence/Residual modules, innermost first."""
    for child in getattr(m, "modules", ()):
        _recollect(child)
    if isinstance(m, Residual):
        for _, child in m._parts():
            _recollect(child)
    if isinstance(m, (Sequence, Residual)):
        m._collect()
