"""Reference functions shared by the reference layers (softmax, cross-entropy, ...)."""

import numpy as np


def sigmoid(x):
    """1 / (1 + exp(-x)); exp only ever sees -|x|, so large |x| neither overflows nor warns."""
    x = np.asarray(x)
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def relu(x):
    """max(0, x) elementwise."""
    return np.maximum(0, x)


def softmax(x):
    """Softmax over the last axis; subtracting each row's maximum keeps exp from overflowing."""
    x = np.asarray(x)
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    """Mean over the batch of -log(y[i, t_i] + 1e-7), the book's loss.

    y: probabilities (N, C), or (C,) for a single sample. t: integer labels (N,) (a single
    label for 1-D y) or one-hot targets of y's shape, which are reduced to the index of each
    row's largest entry (the book tests t.size == y.size; the two agree wherever the book's
    test does not fail). An empty batch gives NaN (the mean of nothing), without a warning."""
    y = np.asarray(y)
    t = np.asarray(t)
    one_hot = t.shape == y.shape
    if y.ndim == 1:
        y = y.reshape(1, -1)
        t = t.reshape(1, -1)
    if one_hot:
        t = t.argmax(axis=1)
    n = y.shape[0]
    if n == 0:
        return y.dtype.type(np.nan)
    picked = y[np.arange(n), t.reshape(n)]
    return -np.sum(np.log(picked + 1e-7)) / n
