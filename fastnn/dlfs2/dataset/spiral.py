"""The book's dataset/spiral.py: three interleaved spiral arms of 100 points each."""

import numpy as np

__all__ = ["load_data"]


def load_data(seed=1984):
    """(x (300, 2) float64, t (300, 3) int32 one-hot), drawn from np.random seeded with
    ``seed`` (the global generator, as the book)."""
    np.random.seed(seed)
    N, DIM, CLS_NUM = 100, 2, 3  # points per class, coordinates, classes
    x = np.zeros((N * CLS_NUM, DIM))
    t = np.zeros((N * CLS_NUM, CLS_NUM), dtype=np.int32)
    rate = np.arange(N) / N
    for j in range(CLS_NUM):
        theta = j * 4.0 + 4.0 * rate + np.random.randn(N) * 0.2
        rows = slice(N * j, N * (j + 1))
        x[rows, 0] = rate * np.sin(theta)
        x[rows, 1] = rate * np.cos(theta)
        t[rows, j] = 1
    return x, t
