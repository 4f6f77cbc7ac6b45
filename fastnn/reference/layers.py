"""Reference layers in plain NumPy, with the behaviour of the book's common/layers.py."""

import numpy as np

from .util import im2col, col2im  # noqa: F401

# ------------------------------------------------------------------ activations, affine, loss,
# ------------------------------------------------------------------ dropout, batch normalization


# ------------------------------------------------------------------ convolution and pooling

from .util import conv_output_size, float_dtype  # noqa: E402


class Convolution:
    """2-D convolution of (N, C, H, W) images with filters W (FN, C, FH, FW) and bias b (FN,).

    forward unfolds x with im2col, so the convolution is one matrix product with the filters
    laid out as columns (col_W, of shape (C*FH*FW, FN)); backward runs the same products
    transposed and folds the column gradient back onto the image with col2im.
    """

    def __init__(self, W, b, stride=1, pad=0):
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.x = None
        self.col = None
        self.col_W = None
        self.dW = None
        self.db = None

    def forward(self, x):
        FN, C, FH, FW = self.W.shape
        N, _, H, W = x.shape
        out_h = conv_output_size(H, FH, self.stride, self.pad)
        out_w = conv_output_size(W, FW, self.stride, self.pad)
        self.x = x
        self.col = im2col(x, FH, FW, self.stride, self.pad)
        self.col_W = self.W.reshape(FN, -1).T
        out = self.col @ self.col_W + self.b          # rows (n, i, j), one column per filter
        return out.reshape(N, out_h, out_w, FN).transpose(0, 3, 1, 2)

    def backward(self, dout):
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
        self.db = dout.sum(axis=0)
        self.dW = (self.col.T @ dout).T.reshape(FN, C, FH, FW)
        dcol = dout @ self.col_W.T
        return col2im(dcol, self.x.shape, FH, FW, self.stride, self.pad)


class Pooling:
    """Max pooling over pool_h x pool_w windows moved by stride, channel by channel.

    Padding counts as -inf, so it is never the maximum of a window that holds a real pixel
    (the book pads with zeros and ignores pad in the output size; both are fixed here). The
    output has shape (N, C, out_h, out_w) with out_h = (H + 2*pad - pool_h) // stride + 1.
    arg_max, of shape (N*out_h*out_w*C,) ordered (n, i, j, c), holds the position of each
    window's maximum within the window (row-major, first one on ties). NaN propagates like
    np.max: a window with NaN outputs NaN and its arg_max points at the first NaN.
    """

    def __init__(self, pool_h, pool_w, stride=1, pad=0):
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

    def __init__(self, pool_h, pool_w, stride=1, pad=0):
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
