"""Numerical gradients (the book's common/gradient.py) and a per-parameter gradient check."""

import inspect

import numpy as np

__all__ = ["numerical_gradient", "numerical_gradient_2d", "gradient_check"]


def numerical_gradient(f, x, h=1e-4):
    """Central-difference gradient of scalar ``f(x)`` with respect to array ``x``.

    Each element of ``x`` is nudged by +-h in place and restored, so ``f`` may ignore its
    argument and read ``x`` through a network that holds it (the book's ``lambda W: net.loss(x,
    t)``). Run it in float64: float32 cannot resolve differences of h = 1e-4 reliably.
    Works on CuPy arrays too.
    """
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx].copy()  # a value: CuPy's x[idx] is a view into x
        x[idx] = old + h
        fxh1 = f(x)
        x[idx] = old - h
        fxh2 = f(x)
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        x[idx] = old
    return grad


def numerical_gradient_2d(f, X):
    """The book's row-by-row form: for a matrix, each row x gets ``numerical_gradient(f, x)``
    (f is called with the row); a vector is one row."""
    if X.ndim == 1:
        return numerical_gradient(f, X)
    grad = np.zeros_like(X)
    for idx, x in enumerate(X):
        grad[idx] = numerical_gradient(f, x)
    return grad


def _loss_fn(network, x, t):
    """network.loss in training mode where the network distinguishes it (batch norm)."""
    if "train_flg" in inspect.signature(network.loss).parameters:
        return lambda: float(network.loss(x, t, train_flg=True))
    return lambda: float(network.loss(x, t))


def gradient_check(network, x, t, h=1e-4, max_entries=None, seed=0, verbose=False):
    """Max relative error between ``network.gradient`` and central differences, per parameter.

    The relative error of one entry is ``|a - n| / max(|a| + |n|, 1e-8)``. ``max_entries``
    checks that many randomly chosen entries of each parameter (all when None). Disable
    dropout first (``dropout_ratio = 0``): random masks make the differences meaningless.
    Returns ``{name: max relative error}``; prints a table when ``verbose``.
    """
    grads = network.gradient(x, t)
    loss = _loss_fn(network, x, t)
    rng = np.random.default_rng(seed)
    errors = {}
    for key, p in network.params.items():
        flat = [np.unravel_index(i, p.shape) for i in range(p.size)]
        if max_entries is not None and p.size > max_entries:
            flat = [flat[i] for i in rng.choice(p.size, max_entries, replace=False)]
        worst = 0.0
        for idx in flat:
            old = p[idx].copy()  # a value: CuPy's p[idx] is a view into p
            p[idx] = old + h
            fp = loss()
            p[idx] = old - h
            fm = loss()
            p[idx] = old
            num = (fp - fm) / (2 * h)
            a = float(grads[key][idx])
            worst = max(worst, abs(a - num) / max(abs(a) + abs(num), 1e-8))
        errors[key] = worst
        if verbose:
            print(f"{key}: max relative error {worst:.3e} ({len(flat)} entries)")
    return errors
