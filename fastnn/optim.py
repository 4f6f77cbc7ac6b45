"""Optimizers of *Deep Learning from Scratch* (common/optimizer.py) on fused in-place kernels.

Same class names, hyper-parameter names, defaults and ``update(params, grads)`` interface; the
state lives in the same attributes (``v``, ``h``, ``m``, ``iter``). Each parameter is updated in
place in one pass (no temporaries) when it is a C-contiguous float32/float64 array; other
writable float arrays (e.g. non-contiguous views) take an equivalent NumPy path. Integer or
read-only parameters raise, since an in-place update could not be seen by the caller.
CuPy parameters (the CUDA build) are updated on their device, with state made there too.
"""

import numpy as np

from . import _device, _ops

__all__ = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]

_EPS = 1e-7  # the book's epsilon in AdaGrad, RMSprop and Adam


def _pairs(opt, params, grads):
    """(key, param, grad) for every parameter, all validated before any is updated."""
    out = []
    for key in params:
        if key not in grads:
            raise KeyError(f"{opt}: grads has no entry {key!r} (params has {sorted(params)})")
        out.append((key, params[key], _ops.check_param(opt, key, params[key], grads[key])))
    return out


def _state(store, key, p):
    """The state array of ``key``, made like ``p`` (zeros) and kept where ``p`` lives: state
    made on the other side of a ``net.to(...)`` moves with its values."""
    xp = _ops.array_module("optimizer state", p)
    s = store.get(key)
    if s is None or s.shape != p.shape or s.dtype != p.dtype:
        s = store[key] = xp.zeros(p.shape, dtype=p.dtype)
    elif _device.name_of(s) != _device.name_of(p):
        s = store[key] = _device.mover(_device.name_of(p), "optimizer state")(s)
    return s


class SGD:
    """Stochastic gradient descent: ``p -= lr * g``."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for _, p, g in _pairs("SGD", params, grads):
            _ops.sgd_update(p, g, self.lr)


class Momentum:
    """Momentum SGD: ``v = momentum * v - lr * g; p += v``."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr = lr
        self.momentum = momentum
        self.v = None

    def update(self, params, grads):
        if self.v is None:
            self.v = {}
        for key, p, g in _pairs("Momentum", params, grads):
            _ops.momentum_update(p, _state(self.v, key, p), g, self.lr, self.momentum)


class Nesterov:
    """Nesterov's accelerated gradient in the book's form (http://arxiv.org/abs/1212.0901)."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr = lr
        self.momentum = momentum
        self.v = None

    def update(self, params, grads):
        if self.v is None:
            self.v = {}
        for key, p, g in _pairs("Nesterov", params, grads):
            _ops.nesterov_update(p, _state(self.v, key, p), g, self.lr, self.momentum)


class AdaGrad:
    """AdaGrad: ``h += g^2; p -= lr * g / (sqrt(h) + 1e-7)``."""

    def __init__(self, lr=0.01):
        self.lr = lr
        self.h = None

    def update(self, params, grads):
        if self.h is None:
            self.h = {}
        for key, p, g in _pairs("AdaGrad", params, grads):
            _ops.adagrad_update(p, _state(self.h, key, p), g, self.lr, _EPS)


class RMSprop:
    """RMSprop: ``h = decay_rate * h + (1 - decay_rate) * g^2; p -= lr * g / (sqrt(h) + 1e-7)``."""

    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr = lr
        self.decay_rate = decay_rate
        self.h = None

    def update(self, params, grads):
        if self.h is None:
            self.h = {}
        for key, p, g in _pairs("RMSprop", params, grads):
            _ops.rmsprop_update(p, _state(self.h, key, p), g, self.lr, self.decay_rate, _EPS)


class Adam:
    """Adam in the book's form (http://arxiv.org/abs/1412.6980v8): the bias correction is
    folded into the step size ``lr_t = lr * sqrt(1 - beta2^iter) / (1 - beta1^iter)``."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.iter = 0
        self.m = None
        self.v = None

    def update(self, params, grads):
        if self.m is None:
            self.m, self.v = {}, {}
        pairs = _pairs("Adam", params, grads)
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for key, p, g in pairs:
            _ops.adam_update(p, _state(self.m, key, p), _state(self.v, key, p), g, lr_t,
                             self.beta1, self.beta2, _EPS)
