"""The book's vol. 2 common/time_layers.py.

The recurrent and time layers are fastnn.time_layers' (one C++ call per sequence); the few the
book adds beyond its chapters (TimeSigmoidWithLoss, Simple_TimeSoftmaxWithLoss,
Simple_TimeAffine) are written here. ``from fastnn.dlfs2.time_layers import *`` hands over what
the book's module does: these layers, those of fastnn.dlfs2.layers, ``np``, ``GPU``,
``softmax`` and ``sigmoid``.
"""

from ..time_layers import (GRU, LSTM, RNN, TimeAffine, TimeBiLSTM, TimeDropout,  # noqa: F401
                           TimeEmbedding, TimeGRU, TimeLSTM, TimeRNN, TimeSoftmaxWithLoss)
from .functions import sigmoid, softmax  # noqa: F401
from .layers import *  # noqa: F401,F403
from .layers import Affine, SoftmaxWithLoss, __all__ as _layer_names
from .np import np

__all__ = _layer_names + [
    "sigmoid", "RNN", "TimeRNN", "LSTM", "TimeLSTM", "GRU", "TimeGRU", "TimeEmbedding",
    "TimeAffine", "TimeSoftmaxWithLoss", "TimeDropout", "TimeBiLSTM", "TimeSigmoidWithLoss",
    "Simple_TimeSoftmaxWithLoss", "Simple_TimeAffine"]


class TimeSigmoidWithLoss:
    """Sigmoid + binary cross-entropy at every step of xs (N, T) against labels ts (N, T): the
    mean over all N*T of -log(p + 1e-7), p being y for label 1 and 1 - y for label 0."""

    def __init__(self):
        self.params, self.grads = [], []
        self.xs_shape = None
        self.cache = None

    def forward(self, xs, ts):
        self.xs_shape = xs.shape
        ys = 1 / (1 + np.exp(-xs))
        picked = np.where(ts == 1, ys, 1 - ys)
        self.cache = (ys, ts)
        return -np.sum(np.log(picked + 1e-7)) / xs.size

    def backward(self, dout=1):
        if self.cache is None:
            raise RuntimeError("TimeSigmoidWithLoss.backward called before forward")
        ys, ts = self.cache
        return (ys - ts) * (dout / ys.size)


class Simple_TimeSoftmaxWithLoss:
    """TimeSoftmaxWithLoss written as one SoftmaxWithLoss per time step (the mean of their
    losses): slower, for reading."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, xs, ts):
        T = xs.shape[1]
        layers = [SoftmaxWithLoss() for _ in range(T)]
        loss = sum(layer.forward(xs[:, t, :], ts[:, t]) for t, layer in enumerate(layers)) / T
        self.cache = (layers, xs)
        return loss

    def backward(self, dout=1):
        if self.cache is None:
            raise RuntimeError("Simple_TimeSoftmaxWithLoss.backward called before forward")
        layers, xs = self.cache
        T = xs.shape[1]
        dxs = np.empty(xs.shape, dtype=xs.dtype)
        for t, layer in enumerate(layers):
            dxs[:, t, :] = layer.backward(dout / T)
        return dxs


class Simple_TimeAffine:
    """TimeAffine written as one Affine per time step: ``W``, ``b`` and the summed ``dW``,
    ``db`` as attributes. Slower, for reading."""

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.dW, self.db = None, None
        self.layers = None

    def forward(self, xs):
        N, T, _ = xs.shape
        self.layers = [Affine(self.W, self.b) for _ in range(T)]
        out = np.empty((N, T, self.W.shape[1]), dtype=np.result_type(xs, self.W))
        for t, layer in enumerate(self.layers):
            out[:, t, :] = layer.forward(xs[:, t, :])
        return out

    def backward(self, dout):
        if self.layers is None:
            raise RuntimeError("Simple_TimeAffine.backward called before forward")
        N, T, _ = dout.shape
        dxs = np.empty((N, T, self.W.shape[0]), dtype=np.result_type(dout, self.W))
        self.dW, self.db = 0, 0
        for t, layer in enumerate(self.layers):
            dxs[:, t, :] = layer.backward(dout[:, t, :])
            self.dW = self.dW + layer.grads[0]
            self.db = self.db + layer.grads[1]
        return dxs
