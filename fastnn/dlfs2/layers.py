"""The layers of the book's vol. 2 common/layers.py: every layer has ``params`` and ``grads``
lists (grads overwritten in place by backward, so an optimizer holding them sees new values).

Affine, Sigmoid, SoftmaxWithLoss and Dropout run fastnn's kernels (those of fastnn.layers);
Embedding is fastnn.time_layers.Embedding. ``from fastnn.dlfs2.layers import *`` also hands over
``np``, ``GPU``, ``softmax`` and ``cross_entropy_error`` as the book's module does.
"""

from .. import ops
from .. import layers as _vol1
from ..time_layers import Embedding
from .config import GPU  # noqa: F401
from .functions import cross_entropy_error, softmax
from .np import np

__all__ = ["np", "GPU", "softmax", "cross_entropy_error", "MatMul", "Affine", "Softmax",
           "SoftmaxWithLoss", "Sigmoid", "SigmoidWithLoss", "Dropout", "Embedding"]


def _forward_first(state, name):
    if state is None:
        raise RuntimeError(f"{name}.backward called before forward")


class MatMul:
    """out = x @ W (no bias)."""

    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.x = None

    def forward(self, x):
        W, = self.params
        self.x = x
        return np.dot(x, W)

    def backward(self, dout):
        _forward_first(self.x, "MatMul")
        W, = self.params
        self.grads[0][...] = np.dot(self.x.T, dout)
        return np.dot(dout, W.T)


class Affine:
    """out = x @ W + b for a batch of rows x (N, D)."""

    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        W, b = self.params
        self.x = x
        return ops.affine_forward(x, W, b, layer="Affine")

    def backward(self, dout):
        _forward_first(self.x, "Affine")
        W, _ = self.params
        dx, dW, db = ops.affine_backward(dout, self.x, W, layer="Affine")
        self.grads[0][...] = dW
        self.grads[1][...] = db
        return dx


class Softmax:
    """Row-wise softmax; backward is the softmax Jacobian applied to dout."""

    def __init__(self):
        self.params, self.grads = [], []
        self.out = None

    def forward(self, x):
        self.out = softmax(x)
        return self.out

    def backward(self, dout):
        _forward_first(self.out, "Softmax")
        dx = self.out * dout
        dx -= self.out * np.sum(dx, axis=1, keepdims=True)
        return dx


class SoftmaxWithLoss(_vol1.SoftmaxWithLoss):
    """Softmax + mean cross-entropy (-log(y[t] + 1e-7)); one-hot t is turned into labels."""

    def __init__(self):
        super().__init__()
        self.params, self.grads = [], []

    def forward(self, x, t):
        if t.size == x.size:  # one-hot, as the book: labels from here on
            t = t.argmax(axis=1)
        return super().forward(x, t)


class Sigmoid(_vol1.Sigmoid):
    def __init__(self):
        super().__init__()
        self.params, self.grads = [], []


class SigmoidWithLoss:
    """Sigmoid + binary cross-entropy: the mean over the batch of -log(p + 1e-7), p being y for
    label 1 and 1 - y for label 0. backward: (y - t) * dout / N."""

    def __init__(self):
        self.params, self.grads = [], []
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = 1 / (1 + np.exp(-x))
        self.loss = cross_entropy_error(np.c_[1 - self.y, self.y], self.t)
        return self.loss

    def backward(self, dout=1):
        _forward_first(self.y, "SigmoidWithLoss")
        return (self.y - self.t) * dout / self.t.shape[0]


class Dropout(_vol1.Dropout):
    """Training: keep where np.random.rand(*x.shape) > dropout_ratio (not rescaled);
    inference: x * (1 - dropout_ratio)."""

    def __init__(self, dropout_ratio=0.5):
        super().__init__(dropout_ratio)
        self.params, self.grads = [], []
