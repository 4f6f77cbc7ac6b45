"""The book's vol. 2 common/functions.py: sigmoid, relu, softmax, cross_entropy_error on ``np``
(NumPy or CuPy, see fastnn.dlfs2.np)."""

from .np import GPU, np  # noqa: F401  (handed over, as the book's module does)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(0, x)


def softmax(x):
    """Softmax of a vector or of each row of a matrix (max-subtracted). A 2-D x is a new array;
    other shapes are returned unchanged, as the book does."""
    if x.ndim == 2:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        return e
    if x.ndim == 1:
        e = np.exp(x - np.max(x))
        return e / np.sum(e)
    return x


def cross_entropy_error(y, t):
    """Mean of -log(y[i, t_i] + 1e-7) over the batch; t are labels or one-hot rows."""
    if y.ndim == 1:
        y = y.reshape(1, y.size)
        t = t.reshape(1, t.size)
    if t.size == y.size:  # one-hot
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size
