"""Drop-in replacements for the layers of *Deep Learning from Scratch* vol. 1 (common/layers.py).

Same constructors, same forward/backward signatures, same public attributes after a call; the
work runs in fastnn's compiled kernels (fastnn._ops). Layers keep references to the caller's
W and b, so an optimizer's in-place update is seen by the next forward, as in the book.
"""

import numpy as np

from . import _ops

# ------------------------------------------------------------------ activations, affine, loss,
# ------------------------------------------------------------------ dropout, batch normalization


# ------------------------------------------------------------------ convolution and pooling

def _forward_first(layer, name):
    if layer.x is None:
        raise RuntimeError(f"{name}.backward called before forward")


class Convolution:
    """The book's Convolution: x (N, C, H, W), W (FN, C, FH, FW), b (FN,) -> (N, FN, OH, OW).

    Runs chunked im2col + GEMM kernels that never hold the whole batch's columns, so ``col``
    and ``col_W`` are computed on access (from the kept x and the current W) with the book's
    values. Results follow NumPy promotion of x, W and b; dW and db have that dtype.
    """

    def __init__(self, W, b, stride=1, pad=0):
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.x = None
        self.dW = None
        self.db = None

    def forward(self, x):
        out = _ops.conv2d_forward(x, self.W, self.b, self.stride, self.pad)
        self.x = x
        return out

    def backward(self, dout):
        _forward_first(self, "Convolution")
        dx, self.dW, self.db = _ops.conv2d_backward(dout, self.x, self.W, self.b, self.stride,
                                                    self.pad)
        return dx

    @property
    def col(self):
        """im2col of the last input, (N*OH*OW, C*FH*FW); None before the first forward."""
        if self.x is None:
            return None
        _, _, FH, FW = np.shape(self.W)
        return _ops.im2col(self.x, FH, FW, self.stride, self.pad, layer="Convolution")

    @property
    def col_W(self):
        """The filters as columns, (C*FH*FW, FN): a view of W when W is contiguous."""
        if self.x is None:
            return None
        return self.W.reshape(self.W.shape[0], -1).T


class Pooling:
    """The book's max Pooling, correct with pad > 0 (padding counts as -inf and enters the
    output size OH = (H + 2*pad - pool_h) // stride + 1).

    ``arg_max`` has the book's layout: shape (N*OH*OW*C,), ordered (n, oh, ow, c), each entry
    the position of the maximum inside its pool_h x pool_w window (first one on ties). NaN
    propagates like np.max: a window holding NaN outputs NaN, arg_max points at its first NaN.
    """

    def __init__(self, pool_h, pool_w, stride=1, pad=0):
        _ops.check_window("Pooling", pool_h, pool_w, stride, pad)
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad
        self.x = None
        self._arg = None  # argmax per output, (N, C, OH, OW) int32

    def forward(self, x):
        out, self._arg = _ops.maxpool2d_forward(x, self.pool_h, self.pool_w, self.stride,
                                                self.pad)
        self.x = x
        return out

    def backward(self, dout):
        _forward_first(self, "Pooling")
        return _ops.maxpool2d_backward(dout, self._arg, np.shape(self.x), self.pool_h,
                                       self.pool_w, self.stride, self.pad)

    @property
    def arg_max(self):
        if self._arg is None:
            return None
        return self._arg.transpose(0, 2, 3, 1).ravel().astype(np.intp)


class AvgPooling:
    """Average pooling (not in the book), same constructor and geometry as Pooling.

    Padding counts as zeros and every window is divided by pool_h*pool_w, padded cells
    included (PyTorch's count_include_pad=True).
    """

    def __init__(self, pool_h, pool_w, stride=1, pad=0):
        _ops.check_window("AvgPooling", pool_h, pool_w, stride, pad)
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad
        self.x = None

    def forward(self, x):
        out = _ops.avgpool2d_forward(x, self.pool_h, self.pool_w, self.stride, self.pad)
        self.x = x
        return out

    def backward(self, dout):
        _forward_first(self, "AvgPooling")
        return _ops.avgpool2d_backward(dout, np.shape(self.x), self.pool_h, self.pool_w,
                                       self.stride, self.pad)
