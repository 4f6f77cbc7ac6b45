"""Drop-ins for the time layers of *Deep Learning from Scratch* vol. 2 (common/time_layers.py).

Same constructors, attributes and shapes as the book: Wx (D, gH), Wh (H, gH), b (gH,), batch-major
sequences (N, T, D), ``params``/``grads`` lists whose grads are overwritten in place, ``stateful``,
``set_state``/``reset_state``. The whole time loop of TimeRNN/TimeLSTM/TimeGRU runs in one C++
call (fastnn.ops); the single-step RNN/LSTM/GRU run the same kernels on a sequence of length 1.

Embedding and TimeEmbedding gather rows and scatter-add their gradient in C++ kernels.
With CuPy parameters (or inputs) the recurrent layers, TimeAffine, TimeSoftmaxWithLoss and
TimeBiLSTM run the CUDA kernels and their outputs, states and grads stay CuPy arrays (grads are
made with ``np.zeros_like`` of the parameters, so CuPy parameters give CuPy grads).
"""

import numpy as np

from . import ops


class Embedding:
    """Rows of W picked by word ids (any integer shape): out = W[idx]. backward is the book's
    ``dW[...] = 0; np.add.at(dW, idx, dout)`` in one kernel (repeated ids add up). Ids outside
    [0, V) raise IndexError. With CuPy arrays the same NumPy expressions run on CuPy."""

    _layer = "Embedding"

    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx = None

    def _weights(self):
        return self.params[0]

    def forward(self, idx):
        out = ops.embedding_forward(self._weights(), idx, layer=self._layer)
        self.idx = idx
        return out

    def backward(self, dout):
        _forward_first(self.idx, self._layer)
        ops.embedding_backward(self.grads[0], self.idx, dout, layer=self._layer)
        return None


class TimeEmbedding(Embedding):
    """Embedding of a batch of sequences xs (N, T) -> (N, T, D), all steps at once."""

    _layer = "TimeEmbedding"

    def __init__(self, W):
        super().__init__(W)
        self.W = W

    def _weights(self):
        return self.W

    def forward(self, xs):
        return super().forward(xs)


class TimeDropout:
    """Inverted dropout (a mask multiply, no kernel), the mask drawn where xs lives: np.random
    for NumPy input as the book, cupy.random (seeded by cupy.random.seed) for CuPy input."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = dropout_ratio
        self.mask = None
        self.train_flg = True

    def forward(self, xs):
        if not self.train_flg:
            return xs
        xp = ops.array_module("TimeDropout", xs)
        keep = xp.random.rand(*xs.shape) > self.dropout_ratio
        self.mask = keep.astype(np.float32) * (1.0 / (1.0 - self.dropout_ratio))
        return xs * self.mask

    def backward(self, dout):
        _forward_first(self.mask, "TimeDropout")
        return dout * self.mask


def _time_major(xp, xs):
    return xp.ascontiguousarray(xp.swapaxes(xp.asarray(xs), 0, 1))


# What the recurrent layers keep, as the book's do: its TimeRNN/TimeLSTM/TimeGRU fill a new hs
# (N, T, H) from per-step caches, so hs can be edited in place without touching backward; the
# steps cache views of xs, so an in-place edit of xs before backward is seen there. The kernels
# work time-major: hs comes back as a new C-contiguous (N, T, H) array, and xs is kept as given
# and transposed again in backward (one copy of N*T*D numbers).
def _batch_major(xp, hs):
    return xp.swapaxes(hs, 0, 1).copy()


def _forward_first(state, name):
    """RuntimeError for a backward with no forward state (the docs' promise for every layer)."""
    if state is None:
        raise RuntimeError(f"{name}.backward called before forward")


def _check_batch_major(layer, xs):
    shape = tuple(xs.shape) if hasattr(xs, "shape") else np.shape(xs)
    if len(shape) != 3:
        raise ValueError(f"{layer}: expected a 3-D (N, T, D) sequence, got shape {shape}")


class _StepLayer:
    """The book's single-step layers: params [Wx, Wh, b], grads made like them (CuPy
    parameters give CuPy grads) and overwritten in place by backward."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def _set_grads(self, *grads):
        for g, d in zip(self.grads, grads):
            g[...] = d


class RNN(_StepLayer):
    """One tanh RNN step: h_next = tanh(h_prev @ Wh + x @ Wx + b)."""

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        x1 = ops.array_module("RNN", x, h_prev, *self.params).asarray(x)[np.newaxis]
        hs = ops.rnn_forward(x1, h_prev, Wx, Wh, b, layer="RNN")
        self.cache = (x1, h_prev, hs)
        return hs[0]

    def backward(self, dh_next):
        _forward_first(self.cache, "RNN")
        Wx, Wh, b = self.params
        x1, h_prev, hs = self.cache
        dx, dh_prev, dWx, dWh, db = ops.rnn_backward(x1, h_prev, Wx, Wh, hs, None, dh_next,
                                                      layer="RNN")
        self._set_grads(dWx, dWh, db)
        return dx[0], dh_prev


class LSTM(_StepLayer):
    """One LSTM step (gates f, g, i, o in Wx/Wh/b's 4H blocks): returns (h_next, c_next)."""

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        x1 = ops.array_module("LSTM", x, h_prev, c_prev, *self.params).asarray(x)[np.newaxis]
        hs, cs, gates, _ = ops.lstm_forward(x1, h_prev, c_prev, Wx, Wh, b, layer="LSTM")
        self.cache = (x1, h_prev, c_prev, hs, cs, gates)
        return hs[0], cs[0]

    def backward(self, dh_next, dc_next):
        _forward_first(self.cache, "LSTM")
        Wx, Wh, b = self.params
        x1, h_prev, c_prev, hs, cs, gates = self.cache
        dx, dh_prev, dc_prev, dWx, dWh, db, _ = ops.lstm_backward(
            x1, h_prev, c_prev, Wx, Wh, None, hs, cs, gates, None, None, dh_next, dc_next,
            layer="LSTM")
        self._set_grads(dWx, dWh, db)
        return dx[0], dh_prev, dc_prev


class GRU(_StepLayer):
    """One GRU step (blocks z, r, h~): h_next = (1 - z) * h_prev + z * h~."""

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        x1 = ops.array_module("GRU", x, h_prev, *self.params).asarray(x)[np.newaxis]
        hs, gates, aux = ops.gru_forward(x1, h_prev, Wx, Wh, b, layer="GRU")
        self.cache = (x1, h_prev, hs, gates, aux)
        return hs[0]

    def backward(self, dh_next):
        _forward_first(self.cache, "GRU")
        Wx, Wh, b = self.params
        x1, h_prev, hs, gates, aux = self.cache
        dx, dh_prev, dWx, dWh, db, _ = ops.gru_backward(x1, h_prev, Wx, Wh, hs, gates, aux,
                                                         None, dh_next, layer="GRU")
        self._set_grads(dWx, dWh, db)
        return dx[0], dh_prev


class TimeRNN:
    """T tanh RNN steps over xs (N, T, D) -> hs (N, T, H), in one kernel call."""

    _layer = "TimeRNN"

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.h, self.dh = None, None
        self.stateful = stateful
        self._cache = None

    def _h0(self):
        return self.h if self.stateful else None

    def _xp(self, *arrays):
        """numpy or cupy, by where the parameters and ``arrays`` live."""
        return ops.array_module(self._layer, *arrays, *self.params)

    def forward(self, xs):
        _check_batch_major(self._layer, xs)
        Wx, Wh, b = self.params
        xp = self._xp(xs, self.h)
        h0 = self._h0()
        hs = ops.rnn_forward(_time_major(xp, xs), h0, Wx, Wh, b, layer=self._layer)
        self._cache = (xs, h0, hs)
        self.h = hs[-1].copy() if len(hs) else self.h
        return _batch_major(xp, hs)

    def backward(self, dhs):
        _forward_first(self._cache, self._layer)
        Wx, Wh, b = self.params
        xs, h0, hs = self._cache
        xp = self._xp(dhs, xs)
        dx, self.dh, *grads = ops.rnn_backward(_time_major(xp, xs), h0, Wx, Wh, hs,
                                                _time_major(xp, dhs), None, layer=self._layer)
        for g, new in zip(self.grads, grads):
            g[...] = new
        return xp.swapaxes(dx, 0, 1)

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None


class TimeGRU(TimeRNN):
    """T GRU steps over xs (N, T, D) -> hs (N, T, H), in one kernel call."""

    _layer = "TimeGRU"

    def forward(self, xs):
        _check_batch_major(self._layer, xs)
        Wx, Wh, b = self.params
        xp = self._xp(xs, self.h)
        h0 = self._h0()
        hs, gates, aux = ops.gru_forward(_time_major(xp, xs), h0, Wx, Wh, b, layer=self._layer)
        self._cache = (xs, h0, hs, gates, aux)
        self.h = hs[-1].copy() if len(hs) else self.h
        return _batch_major(xp, hs)

    def backward(self, dhs):
        _forward_first(self._cache, self._layer)
        Wx, Wh, b = self.params
        xs, h0, hs, gates, aux = self._cache
        xp = self._xp(dhs, xs)
        dx, self.dh, dWx, dWh, db, _ = ops.gru_backward(_time_major(xp, xs), h0, Wx, Wh, hs,
                                                         gates, aux, _time_major(xp, dhs), None,
                                                         layer=self._layer)
        for g, new in zip(self.grads, (dWx, dWh, db)):
            g[...] = new
        return xp.swapaxes(dx, 0, 1)


class TimeLSTM:
    """T LSTM steps over xs (N, T, D) -> hs (N, T, H), in one kernel call."""

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.h, self.c = None, None
        self.dh = None
        self.stateful = stateful
        self._cache = None

    def forward(self, xs):
        _check_batch_major("TimeLSTM", xs)
        Wx, Wh, b = self.params
        xp = ops.array_module("TimeLSTM", xs, self.h, self.c, *self.params)
        h0, c0 = (self.h, self.c) if self.stateful else (None, None)
        hs, cs, gates, _ = ops.lstm_forward(_time_major(xp, xs), h0, c0, Wx, Wh, b,
                                             layer="TimeLSTM")
        self._cache = (xs, h0, c0, hs, cs, gates)
        if len(hs):
            self.h, self.c = hs[-1].copy(), cs[-1].copy()
        return _batch_major(xp, hs)

    def backward(self, dhs):
        _forward_first(self._cache, "TimeLSTM")
        Wx, Wh, b = self.params
        xs, h0, c0, hs, cs, gates = self._cache
        xp = ops.array_module("TimeLSTM", dhs, xs, *self.params)
        dx, self.dh, _, dWx, dWh, db, _ = ops.lstm_backward(
            _time_major(xp, xs), h0, c0, Wx, Wh, None, hs, cs, gates, None, _time_major(xp, dhs),
            None, None, layer="TimeLSTM")
        for g, new in zip(self.grads, (dWx, dWh, db)):
            g[...] = new
        return xp.swapaxes(dx, 0, 1)

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None


class TimeAffine:
    """x (N, T, D) @ W (D, M) + b at every time step, as one matrix product (BLAS kernel)."""

    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        N, T, D = x.shape
        W, b = self.params
        self.x = x
        out = ops.affine_forward(x.reshape(N * T, D), W, b, layer="TimeAffine")
        return out.reshape(N, T, -1)

    def backward(self, dout):
        _forward_first(self.x, "TimeAffine")
        N, T, D = self.x.shape
        W, b = self.params
        dx, dW, db = ops.affine_backward(dout.reshape(N * T, -1), self.x.reshape(N * T, D), W,
                                          layer="TimeAffine")
        self.grads[0][...] = dW
        self.grads[1][...] = db
        return dx.reshape(N, T, D)


class TimeSoftmaxWithLoss:
    """Mean softmax cross-entropy over every (n, t) whose label is not ignore_label (-1)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None
        self.ignore_label = -1

    def forward(self, xs, ts):
        N, T, V = xs.shape
        if ts.ndim == 3:  # one-hot labels
            ts = ts.argmax(axis=2)
        ts = ts.reshape(N * T)
        ys, loss = ops.softmax_cross_entropy_forward(
            xs.reshape(N * T, V), ts, eps=0.0, ignore_label=self.ignore_label,
            layer="TimeSoftmaxWithLoss")
        self.cache = (ts, ys, (N, T, V))
        return loss

    def backward(self, dout=1):
        _forward_first(self.cache, "TimeSoftmaxWithLoss")
        ts, ys, (N, T, V) = self.cache
        dx = ops.softmax_cross_entropy_backward(ys, ts, dout, ignore_label=self.ignore_label,
                                                 layer="TimeSoftmaxWithLoss")
        return dx.reshape(N, T, V)


class TimeBiLSTM:
    """Two TimeLSTMs, the second reading the sequence backwards; outputs (N, T, 2H)."""

    def __init__(self, Wx1, Wh1, b1, Wx2, Wh2, b2, stateful=False):
        self.forward_lstm = TimeLSTM(Wx1, Wh1, b1, stateful)
        self.backward_lstm = TimeLSTM(Wx2, Wh2, b2, stateful)
        self.params = self.forward_lstm.params + self.backward_lstm.params
        self.grads = self.forward_lstm.grads + self.backward_lstm.grads

    def forward(self, xs):
        out_f = self.forward_lstm.forward(xs)
        out_b = self.backward_lstm.forward(xs[:, ::-1])[:, ::-1]
        xp = ops.array_module("TimeBiLSTM", out_f, out_b)
        return xp.concatenate((out_f, out_b), axis=2)

    def backward(self, dhs):
        _forward_first(self.forward_lstm._cache, "TimeBiLSTM")
        H = dhs.shape[2] // 2
        dxs = self.forward_lstm.backward(dhs[:, :, :H])
        dxs = dxs + self.backward_lstm.backward(dhs[:, :, H:][:, ::-1])[:, ::-1]
        return dxs
