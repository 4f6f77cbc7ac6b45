"""Reference layers in plain NumPy for the builder's (fastnn.basenn) networks that the book does
not have: ReLU6 and per-channel batch norm (MobileNetV2), SiLU and group norm (the diffusion
U-Net). Inputs are (N, C, ...) with channels on axis 1."""

import numpy as np


class ReLU6:
    """min(max(x, 0), 6); the gradient passes where 0 < x < 6."""

    def forward(self, x):
        self.mask = (x > 0) & (x < 6)
        return np.clip(x, 0, 6)

    def backward(self, dout):
        return np.where(self.mask, dout, 0).astype(dout.dtype, copy=False)


class SiLU:
    """x * sigmoid(x)."""

    def forward(self, x):
        self.x = x
        self.s = 1.0 / (1.0 + np.exp(-x))
        return x * self.s

    def backward(self, dout):
        s = self.s
        return dout * (s * (1 + self.x * (1 - s)))


def _channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


class ChannelBatchNorm:
    """Batch norm per channel (BatchNorm1d/2d): in training, the mean and biased variance of
    channel c over the batch and the spatial axes; the running averages become
    momentum * running + (1 - momentum) * batch statistic (the book's rule). At inference the
    running averages stand in for the batch's."""

    def __init__(self, gamma, beta, running_mean, running_var, momentum=0.9, eps=1e-6):
        self.gamma, self.beta = gamma, beta
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum, self.eps = momentum, eps

    def forward(self, x, train=True):
        shape = _channel_shape(x)
        axes = (0,) + tuple(range(2, x.ndim))
        if train:
            mu = x.mean(axis=axes)
            var = ((x - mu.reshape(shape)) ** 2).mean(axis=axes)
            m = self.momentum
            self.running_mean = m * self.running_mean + (1 - m) * mu
            self.running_var = m * self.running_var + (1 - m) * var
        else:
            mu, var = self.running_mean, self.running_var
        self.inv = (1.0 / np.sqrt(var + self.eps)).reshape(shape)
        self.xn = (x - mu.reshape(shape)) * self.inv
        self.axes = axes
        return self.xn * self.gamma.reshape(shape) + self.beta.reshape(shape)

    def backward(self, dout):
        shape, axes = _channel_shape(dout), self.axes
        self.dbeta = dout.sum(axis=axes)
        self.dgamma = (dout * self.xn).sum(axis=axes)
        m = dout.size // dout.shape[1]
        return (self.gamma.reshape(shape) * self.inv
                * (dout - self.dbeta.reshape(shape) / m - self.xn * self.dgamma.reshape(shape) / m))


class GroupNorm:
    """Group norm: per sample, statistics over each group of C / groups consecutive channels and
    the spatial axes (biased variance), then a per-channel affine map gamma * xn + beta."""

    def __init__(self, groups, gamma, beta, eps=1e-5):
        self.g, self.gamma, self.beta, self.eps = groups, gamma, beta, eps

    def forward(self, x):
        n = x.shape[0]
        xr = x.reshape(n, self.g, -1)
        mu = xr.mean(axis=2, keepdims=True)
        xc = xr - mu
        var = (xc * xc).mean(axis=2, keepdims=True)
        self.inv = 1.0 / np.sqrt(var + self.eps)
        self.xn = (xc * self.inv).reshape(x.shape)
        shape = _channel_shape(x)
        return self.xn * self.gamma.reshape(shape) + self.beta.reshape(shape)

    def backward(self, dout):
        n, shape = dout.shape[0], _channel_shape(dout)
        axes = (0,) + tuple(range(2, dout.ndim))
        self.dgamma = (dout * self.xn).sum(axis=axes)
        self.dbeta = dout.sum(axis=axes)
        dxn = (dout * self.gamma.reshape(shape)).reshape(n, self.g, -1)
        xn = self.xn.reshape(n, self.g, -1)
        dx = (dxn - dxn.mean(axis=2, keepdims=True)
              - xn * (dxn * xn).mean(axis=2, keepdims=True)) * self.inv
        return dx.reshape(dout.shape)
