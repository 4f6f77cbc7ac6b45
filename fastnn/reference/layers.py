"""Reference layers in plain NumPy, with the behaviour of the book's common/layers.py."""

import numpy as np

from .util import im2col, col2im  # noqa: F401

# ------------------------------------------------------------------ activations, affine, loss,
# ------------------------------------------------------------------ dropout, batch normalization

from .functional import sigmoid, softmax, cross_entropy_error  # noqa: E402


class Relu:
    """max(0, x); backward zeroes dout where x <= 0, writing into dout and returning it."""

    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout[self.mask] = 0
        return dout


class Sigmoid:
    def __init__(self):
        self.out = None

    def forward(self, x):
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


class Tanh:
    def __init__(self):
        self.out = None

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out ** 2)


def _flat(x):
    """(N, ...) as (N, D); unlike reshape(N, -1) this also works for N == 0."""
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))


class Affine:
    """out = x.reshape(N, -1) @ W + b. Keeps the caller's W and b (not copies)."""

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x):
        self.original_x_shape = x.shape
        self.x = _flat(x)
        return self.x @ self.W + self.b

    def backward(self, dout):
        dx = dout @ self.W.T
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dx.reshape(self.original_x_shape)


class SoftmaxWithLoss:
    """Softmax followed by the cross-entropy loss (mean over the batch, with the book's +1e-7).

    t: integer labels (N,) or one-hot (N, C). backward returns (y - t) * dout / N; the book's
    vol. 1 layer ignores dout (it is always 1 there), vol. 2's multiplies by it, as here.
    A 1-D x is one sample: its gradient is (y - t) * dout (a batch of one)."""

    def __init__(self):
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, t)
        return self.loss

    def backward(self, dout=1):
        t = np.asarray(self.t)
        if t.shape == self.y.shape:  # one-hot (or soft) targets
            target = t
        else:
            target = np.zeros_like(self.y)
            if self.y.ndim == 1:
                target[t.item()] = 1
            else:
                target[np.arange(len(t)), t] = 1
        n = len(self.y) if self.y.ndim == 2 else 1
        return (self.y - target) * dout / n


class Dropout:
    """Training zeroes each element with probability dropout_ratio (mask drawn from NumPy's
    global np.random); inference scales by (1 - dropout_ratio) instead."""

    def __init__(self, dropout_ratio=0.5):
        self.dropout_ratio = dropout_ratio
        self.mask = None

    def forward(self, x, train_flg=True):
        if not train_flg:
            return x * (1.0 - self.dropout_ratio)
        self.mask = np.random.rand(*x.shape) > self.dropout_ratio
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class BatchNormalization:
    """Batch normalization over the batch axis. 4-D input (N, C, H, W) is flattened to
    (N, C*H*W), so every C*H*W position has its own statistics (the book's behaviour).
    eps is the book's 10e-7 (= 1e-6). An empty batch leaves the running averages as they were."""

    eps = 10e-7

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.input_shape = None
        self.running_mean = running_mean
        self.running_var = running_var
        self.batch_size = None
        self.xc = None
        self.xn = None
        self.std = None
        self.dgamma = None
        self.dbeta = None

    def forward(self, x, train_flg=True):
        self.input_shape = x.shape
        x = _flat(x)
        D = x.shape[1]
        if self.running_mean is None:
            self.running_mean = np.zeros(D)
        if self.running_var is None:
            self.running_var = np.zeros(D)
        if train_flg:
            xn = self._normalize_batch(x)
        else:
            xn = (x - self.running_mean) / np.sqrt(self.running_var + self.eps)
        out = self.gamma * xn + self.beta
        return out.reshape(self.input_shape)

    def _normalize_batch(self, x):
        n = x.shape[0]
        mu = x.mean(axis=0) if n else np.full(x.shape[1], np.nan, x.dtype)
        xc = x - mu
        var = (xc ** 2).mean(axis=0) if n else mu
        self.batch_size = n
        self.xc = xc
        self.std = np.sqrt(var + self.eps)
        self.xn = xc / self.std
        if n:
            m = self.momentum
            self.running_mean = m * self.running_mean + (1 - m) * mu
            self.running_var = m * self.running_var + (1 - m) * var
        return self.xn

    def backward(self, dout):
        dout = _flat(dout)
        n = self.batch_size
        self.dbeta = dout.sum(axis=0)
        self.dgamma = (self.xn * dout).sum(axis=0)
        dxn = self.gamma * dout
        # xn = xc / std with std = sqrt(var + eps), var = mean(xc^2), xc = x - mean(x).
        dxc = dxn / self.std
        dstd = -(dxn * self.xc / self.std ** 2).sum(axis=0)
        dvar = 0.5 * dstd / self.std
        dxc = dxc + (2.0 / max(n, 1)) * self.xc * dvar
        dmu = dxc.sum(axis=0)
        dx = dxc - dmu / max(n, 1)
        return dx.reshape(self.input_shape)


# ------------------------------------------------------------------ convolution and pooling
