"""MNIST, Fashion-MNIST and scikit-learn's digits, returned as the book's ``load_mnist`` does.

``load_mnist`` / ``load_fashion_mnist`` read the four standard IDX ``.gz`` files from the first
directory that has them all:

1. ``$FASTNN_DATA/<name>``, then ``$FASTNN_DATA`` itself (``<name>`` is ``mnist`` or
   ``fashion-mnist``; the two data sets share file names, so prefer the sub-folder);
2. ``~/.cache/fastnn/<name>``;
3. the Debian package location (``apt-get install dataset-fashion-mnist`` installs
   ``/usr/share/datasets/fashion-mnist``).

Otherwise they download the files from the official mirrors into ``~/.cache/fastnn/<name>``,
checking each file's published SHA-256. Files are parsed strictly while they are read (magic
number, 28x28 images, at most 2^20 items, then exactly the declared bytes, label range,
image/label counts), so a corrupt, truncated or oversized file raises :class:`DatasetError`
instead of returning wrong arrays, without inflating more than it declares.
"""

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

__all__ = ["load_mnist", "load_fashion_mnist", "load_digits", "DatasetError", "DatasetNotFound"]


class DatasetError(Exception):
    """A data set is missing, unreadable or corrupt."""


class DatasetNotFound(DatasetError, FileNotFoundError):
    """No local copy of the data set and the download failed."""


FILES = {
    "train_img": "train-images-idx3-ubyte.gz",
    "train_label": "train-labels-idx1-ubyte.gz",
    "test_img": "t10k-images-idx3-ubyte.gz",
    "test_label": "t10k-labels-idx1-ubyte.gz",
}

# Official mirrors and the published SHA-256 of each file.
SOURCES = {
    "mnist": {
        "mirrors": ["https://storage.googleapis.com/cvdf-datasets/mnist/",
                    "https://ossci-datasets.s3.amazonaws.com/mnist/"],
        "sha256": {
            "train-images-idx3-ubyte.gz":
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz":
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz":
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz":
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        "system_dirs": [],
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
                    "data/fashion/"],
        "sha256": {
            "train-images-idx3-ubyte.gz":
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz":
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz":
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz":
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        "system_dirs": ["/usr/share/datasets/fashion-mnist"],
    },
}

_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801  # unsigned bytes, 3 resp. 1 dimension
_TIMEOUT_S = 30


def cache_dir(name):
    return Path(os.path.expanduser("~")) / ".cache" / "fastnn" / name


def search_dirs(name):
    """Directories searched for ``name``'s files, in order."""
    dirs = []
    env = os.environ.get("FASTNN_DATA")
    if env:
        dirs += [Path(env) / name, Path(env)]
    dirs.append(cache_dir(name))
    dirs += [Path(d) for d in SOURCES[name]["system_dirs"]]
    return dirs


# What an IDX file of these data sets may declare, checked before any data is read: 28x28
# images and at most _MAX_ITEMS of them (MNIST has 60,000; 2^20 images are 822 MB). A header
# that passes has exactly its declared bytes read, so a small .gz that inflates to gigabytes is
# refused after reading at most _TRAILING_CHECK bytes beyond them.
_IMAGE_SIDE = 28
_MAX_ITEMS = 1 << 20
_TRAILING_CHECK = 1 << 20


def _read_into(f, buf):
    """Fill memoryview ``buf`` from file ``f``; the number of bytes read (less at EOF)."""
    got = 0
    while got < len(buf):
        n = f.readinto(buf[got:])
        if not n:
            break
        got += n
    return got


def _parse_idx(f, path, magic, ndim):
    header = 4 + 4 * ndim
    raw = f.read(header)
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    (got,) = struct.unpack(">I", raw[:4])
    if got != magic:
        raise DatasetError(f"{path}: bad IDX magic number 0x{got:08x} (expected 0x{magic:08x}); "
                           "is this the right file?")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if dims[0] > _MAX_ITEMS:
        raise DatasetError(f"{path}: IDX header declares {dims[0]} items, more than the "
                           f"{_MAX_ITEMS} this loader accepts; the file is corrupt or not one "
                           "of these data sets")
    if ndim == 3 and dims[1:] != (_IMAGE_SIDE, _IMAGE_SIDE):
        raise DatasetError(f"{path}: IDX header declares {dims[1]}x{dims[2]} images; this data "
                           f"set has {_IMAGE_SIDE}x{_IMAGE_SIDE}")
    expected = int(np.prod(dims, dtype=np.int64))
    data = np.empty(expected, dtype=np.uint8)
    n = _read_into(f, memoryview(data))
    extra = len(f.read(_TRAILING_CHECK)) if n == expected else 0
    if n != expected or extra:
        held = f"{n + extra}" + (" or more" if extra == _TRAILING_CHECK else "")
        raise DatasetError(f"{path}: IDX header says {dims} = {expected} bytes of data but the "
                           f"file holds {held}; the file is truncated or corrupt")
    return data.reshape(dims)


def _read_idx(path, magic, ndim):
    """The uint8 array stored in IDX file ``path`` (gzip-compressed), strictly validated while it
    is read: the header first, then exactly the bytes it declares (no more are inflated)."""
    try:
        with gzip.open(path, "rb") as f:
            return _parse_idx(f, path, magic, ndim)
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: not a readable gzip file ({e}); delete it and download "
                           "it again") from None


def _read_split(folder, img_file, label_file):
    x = _read_idx(folder / img_file, _IMAGES_MAGIC, 3)
    t = _read_idx(folder / label_file, _LABELS_MAGIC, 1)
    if x.shape[0] != t.shape[0]:
        raise DatasetError(f"{folder}: {img_file} has {x.shape[0]} images but {label_file} "
                           f"has {t.shape[0]} labels")
    if t.size and t.max() > 9:
        raise DatasetError(f"{folder / label_file}: label {int(t.max())} is outside 0..9")
    return x, t


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(name, dest):
    """Fetch every missing file of ``name`` into ``dest``; return a list of failures."""
    src = SOURCES[name]
    dest.mkdir(parents=True, exist_ok=True)
    failures = []
    for fname in FILES.values():
        if (dest / fname).exists():
            continue
        for mirror in src["mirrors"]:
            url = mirror + fname
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=fname + ".", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out, \
                        urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:
                    for block in iter(lambda: resp.read(1 << 20), b""):
                        out.write(block)
                digest = _sha256(tmp)
                if digest != src["sha256"][fname]:
                    raise DatasetError(f"SHA-256 mismatch ({digest})")
                os.replace(tmp, dest / fname)
                break
            except (OSError, urllib.error.URLError, DatasetError, ValueError) as e:
                failures.append(f"{url}: {e}")
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
        else:
            return failures
    return []


def _find_or_download(name, download):
    dirs = search_dirs(name)
    for d in dirs:
        if all((d / f).is_file() for f in FILES.values()):
            return d
    failures = _download(name, cache_dir(name)) if download else ["download=False"]
    if not failures:
        return cache_dir(name)
    looked = ", ".join(str(d) for d in dirs)
    hint = ("run `apt-get install dataset-fashion-mnist`, or " if name == "fashion-mnist"
            else "")
    raise DatasetNotFound(
        f"{name}: the files {', '.join(FILES.values())} were not found in {looked}, and the "
        f"download failed ({failures[-1]}). To get them, {hint}download them from "
        f"{SOURCES[name]['mirrors'][0]} into {cache_dir(name)} or $FASTNN_DATA/{name}")


def _one_hot(t, dtype):
    T = np.zeros((t.size, 10), dtype=dtype)
    T[np.arange(t.size), t] = 1
    return T


def _finish(x, t, normalize, flatten, one_hot_label, dtype, scale, image_shape):
    if normalize:
        x = x.astype(dtype or np.float32) / np.array(scale, dtype=dtype or np.float32)
    elif dtype is not None:
        x = x.astype(dtype)
    else:
        x = x.copy()
    x = x.reshape(len(x), -1) if flatten else x.reshape((len(x),) + image_shape)
    t = _one_hot(t, dtype or np.float64) if one_hot_label else t.copy()
    return x, t


def _load_idx_dataset(name, normalize, flatten, one_hot_label, dtype, download):
    folder = _find_or_download(name, download)
    out = []
    for split in ("train", "test"):
        x, t = _read_split(folder, FILES[split + "_img"], FILES[split + "_label"])
        out.append(_finish(x, t, normalize, flatten, one_hot_label, dtype, 255.0,
                           (1,) + x.shape[1:]))
    return tuple(out)


def load_mnist(normalize=True, flatten=True, one_hot_label=False, dtype=None, download=True):
    """MNIST as ``((x_train, t_train), (x_test, t_test))``, as the book's ``load_mnist``.

    normalize: scale pixels to [0, 1] (float32 unless ``dtype`` says otherwise); otherwise the
    raw uint8 values (or ``dtype`` when given). flatten: images as rows of 784, else
    (N, 1, 28, 28). one_hot_label: labels as (N, 10) one-hot rows (float64 unless ``dtype``),
    else uint8 class indices. download: fetch the files when no local copy exists.
    """
    return _load_idx_dataset("mnist", normalize, flatten, one_hot_label, dtype, download)


def load_fashion_mnist(normalize=True, flatten=True, one_hot_label=False, dtype=None,
                       download=True):
    """Fashion-MNIST (Zalando), same format and options as :func:`load_mnist`."""
    return _load_idx_dataset("fashion-mnist", normalize, flatten, one_hot_label, dtype,
                             download)


def load_digits(normalize=True, flatten=True, one_hot_label=False, dtype=None,
                test_ratio=0.2, seed=0):
    """scikit-learn's 1,797 8x8 handwritten digits, split into train and test like load_mnist.

    Pixel values 0..16 are scaled to [0, 1] when ``normalize``; ``flatten=False`` gives
    (N, 1, 8, 8). The split is a fixed shuffle (``seed``) with ``test_ratio`` of the images held
    out. Needs scikit-learn (``pip install scikit-learn``); no download.
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise DatasetError("digits: load_digits needs scikit-learn "
                           "(pip install scikit-learn)") from None
    if not 0 < test_ratio < 1:
        raise ValueError(f"load_digits: test_ratio must be in (0, 1), got {test_ratio}")
    d = sk_load_digits()
    x = d.images.astype(np.uint8)
    t = d.target.astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_ratio))
    out = []
    for idx in (order[n_test:], order[:n_test]):
        out.append(_finish(x[idx], t[idx], normalize, flatten, one_hot_label, dtype, 16.0,
                           (1, 8, 8)))
    return tuple(out)
