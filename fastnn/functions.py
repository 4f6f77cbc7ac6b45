"""Drop-ins for the book's vol. 1 common/functions.py: activations, softmax and the losses on
NumPy arrays (softmax over the last axis, as the book's current code).

sigmoid and softmax are overflow-free forms: the book's values without its overflow warning
for large |x|.
"""

import numpy as np


__all__ = ["identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu",
           "relu_grad", "softmax", "sum_squared_error", "cross_entropy_error", "softmax_loss"]


def identity_function(x):
    return x


def step_function(x):
    """1 where x > 0, else 0 (ints)."""
    return np.array(x > 0, dtype=int)


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise; exp only sees -|x|, so large |x| cannot overflow."""
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


def relu(x):
    """max(0, x) elementwise, in x's dtype (NaN stays NaN)."""
    return np.maximum(0, x)


def softmax(x):
    """Softmax over the last axis, each row shifted by its maximum so exp cannot overflow."""
    x = np.asarray(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    """The book's loss: mean over the batch of -log(y[i, label_i] + 1e-7) for probabilities y
    (N, C), or (C,) for one sample; t holds integer labels or one-hot rows of y's shape (their
    argmax is the label). NaN for an empty batch."""
    y, t = np.asarray(y), np.asarray(t)
    if t.shape == y.shape:
        t = t.argmax(axis=-1)
    y = y.reshape(-1, y.shape[-1])
    labels = t.reshape(len(y))  # ValueError when there is not one label per sample
    if not len(y):
        return y.dtype.type(np.nan)
    return -np.log(y[np.arange(len(y)), labels] + 1e-7).sum() / len(y)


def sigmoid_grad(x):
    """d sigmoid / dx = (1 - sigmoid(x)) * sigmoid(x)."""
    s = sigmoid(x)
    return (1.0 - s) * s


def relu_grad(x):
    """1 where x >= 0, else 0, in x's dtype."""
    grad = np.zeros_like(x)
    grad[x >= 0] = 1
    return grad


def sum_squared_error(y, t):
    return 0.5 * np.sum((y - t) ** 2)


def softmax_loss(X, t):
    """cross_entropy_error(softmax(X), t)."""
    return cross_entropy_error(softmax(X), t)
