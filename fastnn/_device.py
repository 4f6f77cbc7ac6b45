"""Where arrays live: the host (NumPy) or a CUDA device (CuPy), and moving them between the two.

Devices are named as in PyTorch: ``"cpu"``, ``"cuda"`` (CuPy's current device) or
``"cuda:N"``. Moving to a CUDA device needs fastnn's CUDA build, CuPy and a GPU
(``fastnn.cuda.reason()`` says what is missing).
"""

import numpy as np


def on_device(a):
    """True for arrays in GPU memory (anything exposing ``__cuda_array_interface__``)."""
    return hasattr(a, "__cuda_array_interface__")


def to_host(a):
    """``a`` as a NumPy array: device arrays are copied to the host, the others pass through
    ``np.asarray`` (no copy for a NumPy array)."""
    if on_device(a):
        return a.get()
    return np.asarray(a)


def parse(device, who):
    """``(kind, index)`` of a device name: ('cpu', None), ('cuda', None) or ('cuda', N)."""
    name = str(device).strip().lower() if isinstance(device, str) else None
    if name == "cpu":
        return "cpu", None
    if name == "cuda":
        return "cuda", None
    if name is not None and name.startswith("cuda:") and name[5:].isdigit():
        return "cuda", int(name[5:])
    raise ValueError(f"{who}: device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def mover(device, who):
    """A function taking an array to ``device`` (no copy when it is already there; results are
    C-contiguous). Raises RuntimeError naming the reason when CUDA cannot be used here."""
    kind, index = parse(device, who)
    if kind == "cpu":
        return lambda a: np.ascontiguousarray(to_host(a))
    from . import cuda

    why = cuda.reason()
    if why:
        raise RuntimeError(f"{who}: CUDA cannot be used here: {why}")
    import cupy

    def move(a):
        if index is None:
            return cupy.ascontiguousarray(cupy.asarray(a))
        with cupy.cuda.Device(index):
            if isinstance(a, cupy.ndarray) and a.device.id != index:
                a = a.copy()  # CuPy copies into the current device
            return cupy.ascontiguousarray(cupy.asarray(a))

    return move


def same_place(a, b):
    """True when arrays ``a`` and ``b`` live in the same memory (the host, or one device)."""
    if on_device(a) != on_device(b):
        return False
    return not on_device(a) or a.data.device_id == b.data.device_id


def name_of(a):
    """The device name of array ``a``: 'cpu' or 'cuda:N'."""
    if on_device(a):
        return f"cuda:{a.device.id}"
    return "cpu"


def cupy_for(layer):
    """The ``cupy`` module, or the TypeError (naming ``layer`` and the reason) of a device array
    where fastnn cannot use CUDA."""
    from . import cuda

    why = cuda.reason()
    if why:
        raise TypeError(f"{layer}: got a GPU array but fastnn cannot use CUDA here: {why}")
    import cupy
    return cupy


def array_module(layer, *arrays):
    """``cupy`` when any of ``arrays`` is a device array, else ``numpy``: layers make their
    state and outputs with it, so that they live where their inputs do."""
    for a in arrays:
        if hasattr(a, "__cuda_array_interface__"):
            return cupy_for(layer)
    return np
