"""Parameter files in the book's format: a pickled dict of NumPy arrays (W1, b1, ...), or .npz.

Pickle can run arbitrary code while loading: load .pkl files only from trusted sources (the
book's own ``train_convnet.py`` output, your own runs). ``.npz`` files are loaded with
``allow_pickle=False`` and are safe to share; ``load(..., allow_pickle=False)`` (the CLI's
``--safe``) refuses anything but ``.npz`` before reading a byte of it.
"""

import os
import pickle
import zipfile

import numpy as np

from .._device import to_host
from .._files import atomic_write


class ParamsError(ValueError):
    """A parameter file does not fit the network (keys, shapes or dtypes) or is unreadable."""


def _is_npz(file_name):
    return str(file_name).lower().endswith(".npz")


def save(params, file_name):
    """Write ``params`` as NumPy arrays (GPU arrays are copied to the host), atomically (see
    fastnn._files.atomic_write)."""
    params = {k: to_host(v) for k, v in params.items()}
    with atomic_write(file_name) as f:
        if _is_npz(file_name):
            np.savez(f, **params)
        else:
            pickle.dump(params, f, protocol=4)


def load(file_name, allow_pickle=True):
    """The dict of arrays stored in ``file_name`` (.npz without pickle, else a trusted pickle;
    with ``allow_pickle=False`` only .npz files are accepted)."""
    file_name = os.fspath(file_name)
    if _is_npz(file_name):
        try:
            with np.load(file_name, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise ParamsError(f"{file_name}: not a readable .npz parameter file ({e})") from None
    if not allow_pickle:
        raise ParamsError(f"{file_name}: refusing to unpickle (allow_pickle=False / --safe); "
                          f"save parameters as .npz to load them safely")
    with open(file_name, "rb") as f:
        try:
            params = pickle.load(f)
        except Exception as e:  # any unpickling failure means: not a parameter file
            raise ParamsError(f"{file_name}: not a readable parameter pickle "
                              f"({type(e).__name__}: {e})") from None
    if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in params.items()):
        raise ParamsError(f"{file_name}: expected a dict of NumPy arrays (the book's params.pkl "
                          f"format), got {type(params).__name__}")
    return params


def check(loaded, expected, file_name):
    """Raise ParamsError naming every key, shape or dtype of ``loaded`` that does not fit."""
    problems = []
    missing = [k for k in expected if k not in loaded]
    extra = [k for k in loaded if k not in expected]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected {', '.join(extra)}")
    for k in expected:
        if k not in loaded:
            continue
        if loaded[k].shape != expected[k].shape:
            problems.append(f"{k} has shape {loaded[k].shape} but the network expects "
                            f"{expected[k].shape}")
        if loaded[k].dtype.kind != "f":
            problems.append(f"{k} has dtype {loaded[k].dtype} (expected floating point)")
    if problems:
        raise ParamsError(f"{file_name} does not fit this network: " + "; ".join(problems))
