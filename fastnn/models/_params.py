"""Parameter files: safetensors (the default), the book's params.pkl, or .npz.

The format follows the file name: ``.pkl``/``.pickle`` is the book's pickled dict of NumPy
arrays (W1, b1, ...), ``.npz`` a NumPy archive, anything else (``model.safetensors``) a
safetensors file, which also carries the model's description (class, constructor arguments,
dtype, fastnn version) so that ``fastnn.models.load_model`` can rebuild the network.
Batch normalization's running statistics are saved beside the parameters as
``<layer>.running_mean`` / ``<layer>.running_var`` in every format.

Nothing is trusted on reading (see fastnn._safeio): pickles are read by a restricted unpickler
that builds only plain containers and numeric arrays and never runs code, .npz members and
safetensors headers are checked before anything is allocated. ``load(..., allow_pickle=False)``
(the CLI's ``--safe``) refuses pickles altogether, before reading a byte of them.
"""

import os
import pickle

import numpy as np

from .._device import to_host
from .._files import atomic_write
from .._safeio import ParamsError, load_pickle, read_npz, read_safetensors, safetensors_bytes

__all__ = ["ParamsError", "save", "load", "load_with_metadata", "check", "format_of"]


def format_of(file_name):
    """'pkl', 'npz' or 'safetensors', from the file name's extension."""
    name = str(file_name).lower()
    if name.endswith((".pkl", ".pickle")):
        return "pkl"
    if name.endswith(".npz"):
        return "npz"
    return "safetensors"


def save(arrays, file_name, metadata=None):
    """Write ``arrays`` as NumPy arrays (GPU arrays are copied to the host), atomically (see
    fastnn._files.atomic_write). ``metadata`` (str -> str) goes into safetensors files only."""
    arrays = {k: to_host(v) for k, v in arrays.items()}
    fmt = format_of(file_name)
    with atomic_write(file_name) as f:
        if fmt == "npz":
            np.savez(f, **arrays)
        elif fmt == "pkl":
            pickle.dump(arrays, f, protocol=4)
        else:
            f.write(safetensors_bytes(arrays, metadata))


def load_with_metadata(file_name, allow_pickle=True):
    """(dict of arrays, metadata dict) stored in ``file_name``; pickles and .npz files have no
    metadata. With ``allow_pickle=False`` pickles are refused before they are opened."""
    file_name = os.fspath(file_name)
    fmt = format_of(file_name)
    if fmt == "npz":
        return read_npz(file_name), {}
    if fmt == "pkl":
        if not allow_pickle:
            raise ParamsError(f"{file_name}: refusing to unpickle (allow_pickle=False / --safe); "
                              f"save parameters as .safetensors or .npz to load them this way")
        params = load_pickle(file_name)
        if not isinstance(params, dict) or not all(
                isinstance(k, str) and isinstance(v, np.ndarray) for k, v in params.items()):
            raise ParamsError(f"{file_name}: expected a dict of NumPy arrays (the book's "
                              f"params.pkl format), got {type(params).__name__}")
        return params, {}
    return read_safetensors(file_name)


def load(file_name, allow_pickle=True):
    """The dict of arrays stored in ``file_name`` (see :func:`load_with_metadata`)."""
    return load_with_metadata(file_name, allow_pickle)[0]


def check(loaded, expected, file_name, optional=()):
    """Raise ParamsError naming every key, shape or dtype of ``loaded`` that does not fit
    ``expected``; keys in ``optional`` may be missing."""
    problems = []
    missing = [k for k in expected if k not in loaded and k not in optional]
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
