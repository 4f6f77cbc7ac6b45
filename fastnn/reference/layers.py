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

from .util import conv_output_size, float_dtype  # noqa: E402


class Convolution:
    """2-D convolution of (N, C, H, W) images with filters W (FN, C, FH, FW) and bias b (FN,).

    forward unfolds x with im2col, so the convolution is one matrix product with the filters
    laid out as columns (col_W, of shape (C*FH*FW, FN)); backward runs the same products
    transposed and folds the column gradient back onto the image with col2im.

    With groups > 1, W is (FN, C // groups, FH, FW) and each group of FN // groups filters
    convolves its own group of C // groups channels: the same products, one group at a time.
    """

    def __init__(self, W, b, stride=1, pad=0, groups=1):
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.groups = groups
        self.x = None
        self.col = None
        self.col_W = None
        self.dW = None
        self.db = None

    def _group_slices(self):
        """(channels, filters) slices of each group."""
        G = self.groups
        Cg, F = self.x.shape[1] // G, self.W.shape[0] // G
        return [(slice(g * Cg, (g + 1) * Cg), slice(g * F, (g + 1) * F)) for g in range(G)]

    def forward(self, x):
        FN, C, FH, FW = self.W.shape
        N, _, H, W = x.shape
        out_h = conv_output_size(H, FH, self.stride, self.pad)
        out_w = conv_output_size(W, FW, self.stride, self.pad)
        self.x = x
        if self.groups == 1:
            self.col = im2col(x, FH, FW, self.stride, self.pad)
            self.col_W = self.W.reshape(FN, -1).T
            out = self.col @ self.col_W + self.b      # rows (n, i, j), one column per filter
        else:
            self.col = [im2col(x[:, cs], FH, FW, self.stride, self.pad)
                        for cs, _ in self._group_slices()]
            self.col_W = [self.W[fs].reshape(FN // self.groups, -1).T
                          for _, fs in self._group_slices()]
            out = np.concatenate([c @ w for c, w in zip(self.col, self.col_W)], axis=1) + self.b
        return out.reshape(N, out_h, out_w, FN).transpose(0, 3, 1, 2)

    def backward(self, dout):
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
        self.db = dout.sum(axis=0)
        if self.groups == 1:
            self.dW = (self.col.T @ dout).T.reshape(FN, C, FH, FW)
            dcol = dout @ self.col_W.T
            return col2im(dcol, self.x.shape, FH, FW, self.stride, self.pad)
        dx = np.zeros(self.x.shape, dtype=np.result_type(dout, self.W))
        dW = []
        for (cs, fs), col, col_W in zip(self._group_slices(), self.col, self.col_W):
            d = dout[:, fs]
            dW.append((col.T @ d).T.reshape(-1, C, FH, FW))
            dx[:, cs] = col2im(d @ col_W.T, dx[:, cs].shape, FH, FW, self.stride, self.pad)
        self.dW = np.concatenate(dW)
        return dx


class Pooling:
    """Max pooling over pool_h x pool_w windows moved by stride, channel by channel.

    Padding counts as -inf, so it is never the maximum of a window that holds a real pixel
    (the book pads with zeros and ignores pad in the output size; both are fixed here). The
    output has shape (N, C, out_h, out_w) with out_h = (H + 2*pad - pool_h) // stride + 1.
    arg_max, of shape (N*out_h*out_w*C,) ordered (n, i, j, c), holds the position of each
    window's maximum within the window (row-major, first one on ties). NaN propagates like
    np.max: a window with NaN outputs NaN and its arg_max points at the first NaN.
    """

    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad
        self.x = None
        self.arg_max = None

    def _windows(self, x):
        """Rows of pool_h*pool_w values, ordered (n, i, j, c), of the -inf padded x."""
        p = self.pad
        x = np.asarray(x)
        padded = np.pad(x.astype(float_dtype(x)), [(0, 0), (0, 0), (p, p), (p, p)],
                        constant_values=-np.inf)
        col = im2col(padded, self.pool_h, self.pool_w, self.stride, 0)
        return col.reshape(-1, self.pool_h * self.pool_w)

    def forward(self, x):
        N, C, H, W = x.shape
        out_h = conv_output_size(H, self.pool_h, self.stride, self.pad)
        out_w = conv_output_size(W, self.pool_w, self.stride, self.pad)
        windows = self._windows(x)
        self.x = x
        self.arg_max = np.argmax(windows, axis=1)
        out = np.max(windows, axis=1)
        return out.reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)

    def backward(self, dout):
        N, C, H, W = self.x.shape
        p = self.pad
        size = self.pool_h * self.pool_w
        grad = dout.transpose(0, 2, 3, 1).ravel()
        dwindows = np.zeros((grad.size, size), dtype=float_dtype(grad))
        dwindows[np.arange(grad.size), self.arg_max.ravel()] = grad
        dcol = dwindows.reshape(-1, C * size)
        dpadded = col2im(dcol, (N, C, H + 2 * p, W + 2 * p), self.pool_h, self.pool_w,
                         self.stride, 0)
        return dpadded[:, :, p:p + H, p:p + W]


class AvgPooling:
    """Average pooling over pool_h x pool_w windows moved by stride, channel by channel.

    Not in the book; same constructor and geometry as Pooling. Padding counts as zeros and
    every window is divided by pool_h*pool_w (PyTorch's count_include_pad=True).
    """

    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad
        self.x = None

    def forward(self, x):
        N, C, H, W = x.shape
        out_h = conv_output_size(H, self.pool_h, self.stride, self.pad)
        out_w = conv_output_size(W, self.pool_w, self.stride, self.pad)
        col = im2col(x, self.pool_h, self.pool_w, self.stride, self.pad)
        self.x = x
        out = col.reshape(-1, self.pool_h * self.pool_w).mean(axis=1)
        return out.reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)

    def backward(self, dout):
        N, C, H, W = self.x.shape
        size = self.pool_h * self.pool_w
        grad = dout.transpose(0, 2, 3, 1).reshape(-1, 1) / size
        dcol = np.repeat(grad, size, axis=1).reshape(-1, C * size)
        return col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)
