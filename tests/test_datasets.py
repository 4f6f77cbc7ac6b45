"""fastnn.datasets on small IDX files written here, including corrupt ones and downloads."""

import gzip
import hashlib
import os
import re
import struct
import sys

import numpy as np
import pytest

from fastnn import datasets
from fastnn.datasets import DatasetError, DatasetNotFound
from idxfiles import NAMES, idx_bytes, write_dataset, write_gz


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An isolated world: $FASTNN_DATA and $HOME in tmp, no system copy, no network."""
    data, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FASTNN_DATA", str(data))
    monkeypatch.setenv("HOME", str(home))
    for src in datasets.SOURCES.values():
        monkeypatch.setitem(src, "system_dirs", [])
        monkeypatch.setitem(src, "mirrors", [(tmp_path / "offline").as_uri() + "/"])
    return data, home


def test_reads_fastnn_data_in_the_books_format(env):
    data, _ = env
    (xtr, ttr), (xte, tte) = write_dataset(data / "fashion-mnist", 50, 20)
    (x_train, t_train), (x_test, t_test) = datasets.load_fashion_mnist()
    assert x_train.shape == (50, 784) and x_train.dtype == np.float32
    assert x_test.shape == (20, 784)
    np.testing.assert_allclose(x_train, xtr.reshape(50, -1) / np.float32(255.0), rtol=1e-7)
    np.testing.assert_array_equal(t_train, ttr)
    np.testing.assert_array_equal(t_test, tte)
    assert t_train.dtype == np.uint8

    (x, t), _ = datasets.load_fashion_mnist(normalize=False, flatten=False, one_hot_label=True)
    assert x.shape == (50, 1, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 0], xtr)
    assert t.shape == (50, 10) and t.dtype == np.float64
    np.testing.assert_array_equal(t.argmax(axis=1), ttr)
    assert t.sum() == 50

    (x, t), _ = datasets.load_fashion_mnist(dtype=np.float64, one_hot_label=True)
    assert x.dtype == np.float64 and t.dtype == np.float64 and x.max() <= 1.0


def test_search_order_env_then_cache_then_system(env, monkeypatch, tmp_path):
    data, home = env
    cache = home / ".cache" / "fastnn" / "mnist"
    system = tmp_path / "system"
    monkeypatch.setitem(datasets.SOURCES["mnist"], "system_dirs", [str(system)])
    write_dataset(system, 3, 3)
    assert len(datasets.load_mnist()[0][0]) == 3
    write_dataset(cache, 4, 3)
    assert len(datasets.load_mnist()[0][0]) == 4
    write_dataset(data, 5, 3)  # $FASTNN_DATA itself
    assert len(datasets.load_mnist()[0][0]) == 5
    write_dataset(data / "mnist", 6, 3)  # $FASTNN_DATA/mnist wins over $FASTNN_DATA
    assert len(datasets.load_mnist()[0][0]) == 6


def test_absent_and_offline_says_where_it_looked(env):
    with pytest.raises(DatasetNotFound, match=r"fashion-mnist: .* were not found in .*data/"
                                              r"fashion-mnist.*\.cache/fastnn/fashion-mnist.*"
                                              r"download failed.*apt-get install "
                                              r"dataset-fashion-mnist"):
        datasets.load_fashion_mnist()
    with pytest.raises(FileNotFoundError):  # DatasetNotFound is also a FileNotFoundError
        datasets.load_mnist()


def _corrupt(folder, which, data):
    write_dataset(folder, 10, 5)
    write_gz(folder / NAMES["train"][which], data)


@pytest.mark.parametrize("which,data,match", [
    (0, idx_bytes(np.zeros((10, 28, 28)), magic=0x801), "bad IDX magic number 0x00000801"),
    (0, idx_bytes(np.zeros((10, 28, 28)))[:-7], r"header says \(10, 28, 28\).*holds 7833"),
    (0, idx_bytes(np.zeros((10, 28, 28))) + b"x", "holds 7841"),
    (0, b"\x00\x00", "truncated IDX header"),
    (1, idx_bytes(np.zeros(9)), "10 images but train-labels-idx1-ubyte.gz has 9 labels"),
    (1, idx_bytes(np.full(10, 12)), "label 12 is outside 0..9"),
])
def test_corrupt_files_raise_clear_errors(env, which, data, match):
    folder = env[0] / "mnist"
    _corrupt(folder, which, data)
    with pytest.raises(DatasetError, match=match):
        datasets.load_mnist()


def test_bad_or_truncated_gzip(env):
    folder = env[0] / "mnist"
    write_dataset(folder, 10, 5)
    path = folder / NAMES["test"][0]
    (folder / NAMES["test"][0]).write_bytes(b"this is not gzip")
    with pytest.raises(DatasetError, match="not a readable gzip file"):
        datasets.load_mnist()
    good = gzip.compress(idx_bytes(np.zeros((5, 28, 28))))
    path.write_bytes(good[:len(good) // 2])
    with pytest.raises(DatasetError, match="not a readable gzip file"):
        datasets.load_mnist()


@pytest.mark.parametrize("header_dims,trailing_mb,match", [
    # A valid header followed by 1.5 GB of zeros (a 1.5 MB file).
    ((10, 28, 28), 1536, r"header says \(10, 28, 28\) = 7840 bytes .* holds 1056416 or more"),
    # A header declaring 2 million images (1.57 GB), and the data to match.
    ((2_000_000, 28, 28), 1536, "declares 2000000 items, more than the 1048576"),
    ((10, 32, 32), 0, "declares 32x32 images"),
])
def test_decompression_bombs_are_refused_within_a_memory_limit(env, header_dims, trailing_mb,
                                                                match):
    # The header is checked before any data is inflated and no more than the declared bytes
    # (plus 1 MiB to detect trailing data) are read: the old loader inflated the whole file
    # first (a 7 MB .gz of 1.6 GB: 3.1 GB peak; MemoryError under a memory limit).
    import zlib

    from conftest import run_python

    folder = env[0] / "mnist"
    write_dataset(folder, 10, 5)
    n = header_dims[0]
    head = idx_bytes(np.zeros((min(n, 10),) + header_dims[1:]))[16:]
    member = gzip.compress(b"\0" * (16 << 20), compresslevel=9)
    with open(folder / NAMES["train"][0], "wb") as f:   # gzip members concatenated
        f.write(gzip.compress(struct.pack(">IIII", 0x803, *header_dims) + head))
        for _ in range(trailing_mb // 16):
            f.write(member)
    assert (folder / NAMES["train"][0]).stat().st_size < 3 << 20
    proc = run_python("""
        from fastnn import datasets
        try:
            datasets.load_mnist(download=False)
        except Exception as e:
            print(type(e).__name__, e)
        """, seconds=120, memory_limit=400 << 20, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("DatasetError"), proc.stdout + proc.stderr[-2000:]
    assert re.search(match, proc.stdout), proc.stdout


def _mirror(tmp_path, monkeypatch, name, tamper=None):
    """A file:// mirror holding the four files, with their SHA-256 registered."""
    mirror = tmp_path / "mirror"
    write_dataset(mirror, 30, 10, seed=3)
    sums = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in mirror.iterdir()}
    if tamper:
        sums[tamper] = "0" * 64
    monkeypatch.setitem(datasets.SOURCES[name], "mirrors",
                        [(tmp_path / "down").as_uri() + "/", mirror.as_uri() + "/"])
    monkeypatch.setitem(datasets.SOURCES[name], "sha256", sums)
    return mirror


def test_download_verifies_sha256_into_the_cache(env, tmp_path, monkeypatch):
    _, home = env
    _mirror(tmp_path, monkeypatch, "fashion-mnist")
    (x, t), (xt, tt) = datasets.load_fashion_mnist()
    assert x.shape == (30, 784) and xt.shape == (10, 784)
    cache = home / ".cache" / "fastnn" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(n for v in NAMES.values()
                                                             for n in v)
    (x2, _), _ = datasets.load_fashion_mnist(download=False)  # now served from the cache
    np.testing.assert_array_equal(x2, x)


def test_download_with_wrong_checksum_leaves_nothing(env, tmp_path, monkeypatch):
    _, home = env
    _mirror(tmp_path, monkeypatch, "mnist", tamper="t10k-images-idx3-ubyte.gz")
    with pytest.raises(DatasetNotFound, match="SHA-256 mismatch"):
        datasets.load_mnist()
    cache = home / ".cache" / "fastnn" / "mnist"
    names = sorted(p.name for p in cache.iterdir())
    assert "t10k-images-idx3-ubyte.gz" not in names
    assert not any(n.endswith(".part") for n in names)


def test_download_false_never_fetches(env, tmp_path, monkeypatch):
    _mirror(tmp_path, monkeypatch, "mnist")
    with pytest.raises(DatasetNotFound, match="download=False"):
        datasets.load_mnist(download=False)


def test_load_digits_shapes_and_split():
    (x, t), (xt, tt) = datasets.load_digits(flatten=False)
    assert x.shape[1:] == (1, 8, 8) and x.dtype == np.float32
    assert len(x) + len(xt) == 1797 and len(xt) == 359
    assert 0.0 <= x.min() and x.max() == 1.0
    assert set(np.unique(t)) == set(range(10))
    (x2, _), _ = datasets.load_digits(normalize=False)
    assert x2.shape == (len(x), 64) and x2.dtype == np.uint8 and x2.max() == 16
    np.testing.assert_allclose(x.reshape(len(x), -1), x2 / np.float32(16))
    with pytest.raises(ValueError, match="test_ratio"):
        datasets.load_digits(test_ratio=1.5)


def test_load_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DatasetError, match="pip install scikit-learn"):
        datasets.load_digits()
