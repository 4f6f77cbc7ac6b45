"""Optimizers of *Deep Learning from Scratch* (common/optimizer.py) on fused in-place kernels.

Same class names, hyper-parameter names, defaults and ``update(params, grads)`` interface; the
state lives in the same attributes (``v``, ``h``, ``m``, ``iter``). ``params``/``grads`` are the
dicts of vol. 1 (state kept per key in dicts) or the lists of vol. 2 (``model.params``,
``model.grads``; state kept per index in lists), with each volume's numbers: the two differ only
in Nesterov, whose vol. 1 form moves the parameter with the old velocity and vol. 2's with the
new one.

Each parameter is updated in place in one pass (no temporaries) when it is a C-contiguous
float32/float64 array; other writable float arrays (e.g. non-contiguous views) take an
equivalent NumPy path. Integer or read-only parameters raise, since an in-place update could
not be seen by the caller.
CuPy parameters (the CUDA build) are updated on their device, with state made there too.
"""

import numpy as np

from . import _device, ops

__all__ = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]

_EPS = 1e-7  # the book's epsilon in AdaGrad, RMSprop and Adam


def _is_list(params):
    """True for vol. 2's ``params`` lists (or tuples), False for vol. 1's dicts."""
    return isinstance(params, (list, tuple))


def _pairs(opt, params, grads):
    """(key, param, grad) for every parameter, all validated before any is updated; the keys
    of a list are its indices."""
    out = []
    if _is_list(params):
        if not _is_list(grads) or len(grads) != len(params):
            got = f"{len(grads)} grads" if _is_list(grads) else type(grads).__name__
            raise ValueError(f"{opt}: params is a list of {len(params)} arrays, so grads must be "
                             f"a list of the same length (got {got})")
        for i, (p, g) in enumerate(zip(params, grads)):
            out.append((i, p, ops.check_param(opt, i, p, g)))
        return out
    for key in params:
        if key not in grads:
            raise KeyError(f"{opt}: grads has no entry {key!r} (params has {sorted(params)})")
        out.append((key, params[key], ops.check_param(opt, key, params[key], grads[key])))
    return out


def _new_store(store, params):
    """The state container for ``params``: kept while it has the right kind (a dict for dicts,
    a list for lists, as the book's optimizers keep theirs), a fresh empty one otherwise."""
    if _is_list(params):
        return store if isinstance(store, list) else []
    return store if isinstance(store, dict) else {}


def _state(store, key, p):
    """The state array of ``key``, made like ``p`` (zeros) and kept where ``p`` lives: state
    made on the other side of a ``net.to(...)`` moves with its values."""
    if isinstance(store, list):
        store.extend([None] * (key + 1 - len(store)))
        s = store[key]
    else:
        s = store.get(key)
    if s is None or s.shape != p.shape or s.dtype != p.dtype:
        s = store[key] = ops.array_module("optimizer state", p).zeros(p.shape, dtype=p.dtype)
    elif not _device.same_place(s, p):
        s = store[key] = _device.mover(_device.name_of(p), "optimizer state")(s)
    return s


def _one_launch(params):
    """True when the parameters are CuPy arrays of one device and dtype (more than one of
    them): their update then goes to the GPU as a single launch."""
    if len(params) < 2 or not all(_device.on_device(p) for p in params):
        return False
    first = params[0]
    return all(p.dtype == first.dtype and _device.same_place(p, first) for p in params)


def _step(rule, pairs, stores, hyper):
    """One optimizer step over every (key, p, g) of ``pairs``, with the state arrays of each
    parameter from the dicts ``stores``: one launch for a GPU network's parameters, else the
    fused kernel ``ops.<rule>_update(p, *state, g, *hyper)`` per parameter."""
    states = [[_state(store, key, p) for store in stores] for key, p, _ in pairs]
    params = [p for _, p, _ in pairs]
    if _one_launch(params):
        ops.update_list(rule, params, states, [g for _, _, g in pairs], hyper)
        return
    update = getattr(ops, f"{rule}_update")
    for p, state, (_, _, g) in zip(params, states, pairs):
        update(p, *state, g, *hyper)


class SGD:
    """Stochastic gradient descent: ``p -= lr * g``."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        _step("sgd", _pairs("SGD", params, grads), [], [self.lr])


class Momentum:
    """Momentum SGD: ``v = momentum * v - lr * g; p += v``."""

    _rule = "momentum"

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr = lr
        self.momentum = momentum
        self.v = None

    def update(self, params, grads):
        self.v = _new_store(self.v, params)
        _step(self._rule, _pairs(type(self).__name__, params, grads), [self.v],
              [self.lr, self.momentum])


class Nesterov(Momentum):
    """Nesterov's accelerated gradient in the book's forms (http://arxiv.org/abs/1212.0901):
    Momentum's state and hyper-parameters, another update rule. With lists (vol. 2):
    ``v = momentum * v - lr * g; p += momentum^2 * v - (1 + momentum) * lr * g``. With dicts
    (vol. 1) the parameter moves with the velocity before it is updated:
    ``p += momentum^2 * v - (1 + momentum) * lr * g; v = momentum * v - lr * g``."""

    _rule = "nesterov"

    def update(self, params, grads):
        if _is_list(params):
            return super().update(params, grads)
        self.v = _new_store(self.v, params)
        m, lr = self.momentum, self.lr
        for key, p, g in _pairs("Nesterov", params, grads):
            v = _state(self.v, key, p)
            p += (m * m) * v
            ops.sgd_update(p, g, (1 + m) * lr)
            v *= m
            v -= lr * g


class AdaGrad:
    """AdaGrad: ``h += g^2; p -= lr * g / (sqrt(h) + 1e-7)``."""

    def __init__(self, lr=0.01):
        self.lr = lr
        self.h = None

    def update(self, params, grads):
        self.h = _new_store(self.h, params)
        _step("adagrad", _pairs("AdaGrad", params, grads), [self.h], [self.lr, _EPS])


class RMSprop:
    """RMSprop: ``h = decay_rate * h + (1 - decay_rate) * g^2; p -= lr * g / (sqrt(h) + 1e-7)``."""

    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr = lr
        self.decay_rate = decay_rate
        self.h = None

    def update(self, params, grads):
        self.h = _new_store(self.h, params)
        _step("rmsprop", _pairs("RMSprop", params, grads), [self.h],
              [self.lr, self.decay_rate, _EPS])


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
        self.m, self.v = _new_store(self.m, params), _new_store(self.v, params)
        pairs = _pairs("Adam", params, grads)
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        _step("adam", pairs, [self.m, self.v], [lr_t, self.beta1, self.beta2, _EPS])
