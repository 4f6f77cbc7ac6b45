"""Drop-ins for the book's vol. 1 common/functions.py: activations, softmax and the losses on
NumPy arrays (softmax over the last axis, as the book's current code).

sigmoid and softmax are the reference's overflow-free forms (same values as the book's, no
overflow warning for large |x|).
"""

import numpy as np

from .reference.functional import cross_entropy_error, relu, sigmoid, softmax

__all__ = ["identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu",
           "relu_grad", "softmax", "sum_squared_error", "cross_entropy_error", "softmax_loss"]


def identity_function(x):
    return x


def step_function(x):
    """1 where x > 0, else 0 (ints)."""
    return np.array(x > 0, dtype=int)


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
