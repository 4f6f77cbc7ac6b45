"""Writes small IDX .gz data sets for the dataset and CLI tests."""

import gzip
import struct

import numpy as np

NAMES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def idx_bytes(arr, magic=None):
    arr = np.asarray(arr, dtype=np.uint8)
    magic = magic if magic is not None else (0x803 if arr.ndim == 3 else 0x801)
    return struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.tobytes()


def write_gz(path, data):
    with gzip.open(path, "wb") as f:
        f.write(data)


def synthetic(n, rng, size=28):
    """Images whose class k has a bright 6x6 block at a k-dependent place, plus noise."""
    t = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 60, (n, size, size)).astype(np.uint8)
    for i, k in enumerate(t):
        r, c = 2 + 8 * (k // 4), 2 + 6 * (k % 4)
        x[i, r:r + 6, c:c + 6] = 250
    return x, t


def write_dataset(folder, n_train, n_test, seed=0):
    """The four standard files in ``folder``; returns ((x_train, t_train), (x_test, t_test))."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        x, t = synthetic(n, rng)
        write_gz(folder / NAMES[split][0], idx_bytes(x))
        write_gz(folder / NAMES[split][1], idx_bytes(t))
        out.append((x, t))
    return tuple(out)
