"""Reading parameter and checkpoint files that may come from anyone.

Whatever a file says, reading it runs no code and allocates no more than its content justifies:

- **pickles** (the book's ``params.pkl``) go through :class:`RestrictedUnpickler`, which builds
  only dicts, lists, tuples, str/bytes/int/float/bool/None and NumPy arrays of numbers (the few
  NumPy functions their pickles name, in NumPy 1.x's ``numpy.core`` and 2.x's ``numpy._core``
  spelling, are replaced by checking stand-ins). Any other global (``os.system``,
  ``builtins.eval``, ``subprocess.Popen``, a class of yours, ...) is refused before it is looked up.
  Every length in the stream is checked against the bytes that are really there first, so a
  forged length cannot make the unpickler reserve memory.
- **.npz** archives are parsed member by member: each must be a ``.npy`` whose header's shape
  and dtype agree with the member's stored size and lie under :data:`MAX_ARRAY_BYTES`; object
  arrays are refused. The arrays are allocated only after those checks.
- **safetensors** files: the header is checked (size, JSON, dtypes, offsets that cover exactly
  the data in the file) before the ``safetensors`` package reads the tensors.

Every failure is a :class:`ParamsError` (a ``ValueError``) that names the file and says what is
wrong in one line.
"""

import io
import json
import math
import os
import pickle
import pickletools
import re
import zipfile

import numpy as np

# One array may hold at most this many bytes (a cap on what a file's header may ask for).
MAX_ARRAY_BYTES = 4 << 30
# A safetensors JSON header larger than this is refused (the format's own limit is 100 MB).
MAX_HEADER_BYTES = 16 << 20
# At most this many arrays in one file.
MAX_ARRAYS = 100_000
# An object array read from an .npz (a vocabulary dict) may unpack to at most this many bytes.
MAX_OBJECT_MEMBER_BYTES = 64 << 20
MAX_NDIM = 32


class ParamsError(ValueError):
    """A parameter file does not fit the network (keys, shapes or dtypes), is unreadable, or
    asks for something fastnn refuses to do (run code, allocate more than the file holds)."""


def _human(nbytes):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""  # not reached


def check_array_size(where, shape, dtype):
    """The number of bytes of an array of ``shape`` and ``dtype``; ParamsError when a dimension
    is not a non-negative int or the total passes MAX_ARRAY_BYTES."""
    if len(shape) > MAX_NDIM:
        raise ParamsError(f"{where}: {len(shape)} dimensions (at most {MAX_NDIM})")
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise ParamsError(f"{where}: bad dimension {d!r} in shape {tuple(shape)}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise ParamsError(f"{where}: shape {tuple(shape)} of {dtype} is {_human(nbytes)}, over "
                          f"the {_human(MAX_ARRAY_BYTES)} limit for one array")
    return nbytes


# ------------------------------------------------------------------ restricted pickle

# dtype codes NumPy writes into pickles of numeric arrays: bool, ints, floats, complex.
_DTYPE_CODE = re.compile(r"(b1|[iu][1248]|f[248]|c(8|16))")


class _Refused(pickle.UnpicklingError):
    """A pickle asked for something outside the plain data fastnn reads."""


class _NdarrayClass:
    """Stands for ``numpy.ndarray`` (only ever passed to _reconstruct)."""

    def __setstate__(self, state):
        raise _Refused("numpy.ndarray used in an unexpected way")


_NDARRAY = _NdarrayClass()


class _DtypeSpec:
    """A numeric dtype named in the pickle; BUILD gives it its byte order."""

    __slots__ = ("code", "order")

    def __init__(self, code):
        self.code, self.order = code, "="

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in "<>|=":
            raise _Refused(f"unexpected dtype state {state!r:.80}")
        self.order = state[1]

    def dtype(self):
        dt = np.dtype(self.code)
        return dt.newbyteorder(self.order) if self.order in "<>" else dt


class _ObjectDtypeSpec(_DtypeSpec):
    """dtype('O') where a reader allows it (PlainObjectUnpickler): the array's items are then
    plain data themselves, checked like everything else in the pickle."""

    def dtype(self):
        return np.dtype(object)


class _ArraySpec:
    """What numpy's ``_reconstruct`` returns: filled by BUILD, made into an array at the end."""

    __slots__ = ("shape", "dtype", "fortran", "data", "scalar")

    def __init__(self, scalar=False):
        self.data, self.scalar = None, scalar

    def __setstate__(self, state):
        if self.data is not None or not isinstance(state, tuple):
            raise _Refused("array state given twice or not a tuple")
        if len(state) == 5:
            state = state[1:]
        if len(state) != 4:
            raise _Refused(f"array state has {len(state)} fields")
        shape, dtype, fortran, data = state
        self._fill(shape, dtype, bool(fortran), data)

    def _fill(self, shape, dtype, fortran, data):
        if not isinstance(dtype, _DtypeSpec):
            raise _Refused("array without a numeric dtype")
        if not isinstance(shape, tuple):
            raise _Refused(f"array shape {shape!r:.80} is not a tuple")
        if isinstance(dtype, _ObjectDtypeSpec):
            if not (isinstance(data, list) and all(isinstance(d, int) and d >= 0 for d in shape)
                    and len(data) == math.prod(shape)):
                raise _Refused(f"object array of shape {shape!r:.80} without its items")
            self.shape, self.dtype, self.fortran, self.data = shape, dtype.dtype(), fortran, data
            return
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise _Refused(f"array data of type {type(data).__name__} (only numbers are read)")
        dt = dtype.dtype()
        try:
            nbytes = check_array_size("array", shape, dt)
        except ParamsError as e:
            raise _Refused(str(e)) from None
        if len(data) != nbytes:
            raise _Refused(f"array of shape {shape} and dtype {dt} needs {nbytes} bytes but the "
                           f"pickle holds {len(data)}")
        self.shape, self.dtype, self.fortran, self.data = shape, dt, fortran, data

    def array(self, finish=None):
        if self.data is None:
            raise _Refused("array without data")
        if self.dtype.hasobject:
            flat = np.empty(len(self.data), dtype=object)
            flat[:] = [finish(v) for v in self.data] if self.data else []
            return flat.reshape(self.shape, order="F" if self.fortran else "C")
        flat = np.frombuffer(self.data, dtype=self.dtype)
        return np.array(flat.reshape(self.shape, order="F" if self.fortran else "C"))


def _reconstruct(subtype, shape, code):
    if subtype is not _NDARRAY:
        raise _Refused("_reconstruct of something other than numpy.ndarray")
    return _ArraySpec()


def _frombuffer(buf, dtype, shape, order):
    spec = _ArraySpec()
    spec._fill(shape, dtype, order == "F", buf)
    return spec


def _dtype(obj, align=False, copy=True):
    if not isinstance(obj, str) or not _DTYPE_CODE.fullmatch(obj):
        raise _Refused(f"dtype {obj!r:.40} (only bool, integer, float and complex arrays are "
                       "read)")
    return _DtypeSpec(obj)


def _dtype_or_object(obj, align=False, copy=True):
    if obj == "O8":
        return _ObjectDtypeSpec(obj)
    return _dtype(obj, align, copy)


def _scalar(dtype, data):
    spec = _ArraySpec(scalar=True)
    spec._fill((), dtype, False, data)
    return spec


def _latin1(text, encoding="latin1"):
    # Protocol 2 stores bytes as _codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode used for something other than latin-1 bytes")
    return text.encode("latin1")


def _bytes(*args):
    # Protocols 0-2 store b'' as bytes().
    if args:
        raise _Refused("bytes() called with arguments")
    return b""


_ALLOWED = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _dtype,
            ("_codecs", "encode"): _latin1, ("__builtin__", "bytes"): _bytes,
            ("builtins", "bytes"): _bytes}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _reconstruct
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = _scalar
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _frombuffer


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers, numbers, strings and NumPy arrays of numbers; refuses every
    other global before importing or looking it up."""

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise _Refused(f"the pickle asks for {module}.{name}") from None

    def persistent_load(self, pid):
        raise _Refused("the pickle uses persistent ids")


class PlainObjectUnpickler(RestrictedUnpickler):
    """RestrictedUnpickler that also reads object arrays (np.save of a dict gives one) whose
    items are plain data."""

    def find_class(self, module, name):
        if (module, name) == ("numpy", "dtype"):
            return _dtype_or_object
        return super().find_class(module, name)


_CONTAINERS = (dict, list, tuple, str, bytes, int, float, bool, type(None), complex)


def _finish(obj, seen, budget=None):
    """Replace array stand-ins by arrays; refuse anything that is not plain data. ``budget``
    (a one-item list) is how many bytes the arrays may take in all: the pickle's own length,
    since a pickle holds its arrays' bytes, unless one bytes object (memo-shared, or latin-1
    text encoded twice) is made to back many arrays."""
    key = id(obj)
    if key in seen:
        return seen[key]
    if isinstance(obj, _ArraySpec):
        if budget is not None:
            budget[0] -= len(obj.data) if isinstance(obj.data, bytes) else \
                8 * len(obj.data or ())
            if budget[0] < 0:
                raise _Refused("its arrays hold more bytes than the file itself")
        out = obj.array(lambda v: _finish(v, seen, budget))
        if obj.scalar:
            out = out[()]
    elif isinstance(obj, _DtypeSpec):
        out = obj.dtype()
    elif type(obj) is dict:
        out = {}
        seen[key] = out
        for k, v in obj.items():
            out[_finish(k, seen, budget)] = _finish(v, seen, budget)
    elif type(obj) is list:
        out = []
        seen[key] = out
        out.extend(_finish(v, seen, budget) for v in obj)
    elif type(obj) is tuple:
        out = tuple(_finish(v, seen, budget) for v in obj)
    elif type(obj) in _CONTAINERS:
        out = obj
    else:
        raise _Refused(f"the pickle holds a {type(obj).__name__}")
    seen[key] = out
    return out


def _prescan(data):
    """Walk the opcodes without building anything: every counted length must be backed by
    bytes that are in the file (pickletools reads only what is there)."""
    try:
        for op, _, _ in pickletools.genops(io.BytesIO(data)):
            if op.name in ("PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4"):
                raise _Refused(f"the pickle uses {op.name}")
    except _Refused:
        raise
    except Exception as e:
        raise pickle.UnpicklingError(str(e)) from None


def load_pickle(file_name):
    """The plain data in pickle ``file_name``; ParamsError for anything else (nothing in the
    file runs)."""
    with open(file_name, "rb") as f:
        data = f.read()
    return _plain_data(data, file_name)


def _plain_data(data, file_name, unpickler=RestrictedUnpickler):
    try:
        _prescan(data)
        obj = unpickler(io.BytesIO(data)).load()
        return _finish(obj, {}, [len(data)])
    except _Refused as e:
        raise ParamsError(f"{file_name}: refusing to load: {e}; fastnn reads only dicts, lists, "
                          "tuples, numbers, strings and NumPy arrays from .pkl files (nothing in "
                          "the file was run)") from None
    except RecursionError:
        raise ParamsError(f"{file_name}: not a readable parameter pickle (nested too deeply)") \
            from None
    except Exception as e:  # any unpickling failure means: not a parameter file
        raise ParamsError(f"{file_name}: not a readable parameter pickle "
                          f"({type(e).__name__}: {e})") from None


# ------------------------------------------------------------------ .npz


def _npy_header(member, where):
    from numpy.lib import format as npformat

    version = npformat.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = npformat.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = npformat.read_array_header_2_0(member)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return shape, fortran, dtype


def read_npz(file_name, kinds="biufc", objects=()):
    """The arrays of .npz archive ``file_name`` as a dict (``kinds``: accepted dtype kinds).
    Members named in ``objects`` may be object arrays (np.savez of a dict, e.g. a vocabulary):
    they are read with the restricted unpickler and may hold only plain data."""
    file_name = os.fspath(file_name)
    with open(file_name, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        raise ParamsError(f"{file_name}: not a readable .npz parameter file (it is a single .npy "
                          "array, perhaps renamed; a .npz holds named arrays: np.savez(file, "
                          "W1=..., b1=...))")
    try:
        zf = zipfile.ZipFile(file_name)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ParamsError(f"{file_name}: not a readable .npz parameter file ({e})") from None
    out = {}
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ARRAYS:
            raise ParamsError(f"{file_name}: {len(infos)} members (at most {MAX_ARRAYS})")
        for info in infos:
            name = info.filename

            def fail(problem):
                return ParamsError(f"{file_name}: not a readable .npz parameter file (member "
                                   f"{name!r} {problem})")

            if not name.endswith(".npy"):
                raise fail("is not a NumPy array (.npy)")
            try:
                with zf.open(info) as m:
                    shape, fortran, dtype = _npy_header(m, name)
                    if dtype.hasobject and name[:-4] in objects and not dtype.fields:
                        if info.file_size > MAX_OBJECT_MEMBER_BYTES:
                            raise fail(f"unpacks to {_human(info.file_size)}, over the "
                                       f"{_human(MAX_OBJECT_MEMBER_BYTES)} limit for an "
                                       "object array")
                        pickled = m.read()
                        out[name[:-4]] = _plain_data(pickled, f"{file_name} ({name})",
                                                     PlainObjectUnpickler)
                        continue
                    if dtype.hasobject or dtype.kind not in kinds or dtype.fields:
                        raise fail(f"has dtype {dtype}; Object arrays cannot be loaded when "
                                   "allow_pickle=False, and only numbers are read")
                    nbytes = math.prod(shape) * dtype.itemsize
                    if min(shape, default=0) < 0 or len(shape) > MAX_NDIM:
                        raise fail(f"declares shape {shape}")
                    if nbytes > MAX_ARRAY_BYTES:
                        raise fail(f"declares shape {shape} of {dtype}: {_human(nbytes)}, over "
                                   f"the {_human(MAX_ARRAY_BYTES)} limit for one array")
                    held = info.file_size - m.tell()
                    if held != nbytes:
                        raise fail(f"declares shape {shape} of {dtype} = {_human(nbytes)} but "
                                   f"holds {_human(max(held, 0))}")
                    data = m.read(nbytes)
            except ParamsError:
                raise
            except Exception as e:
                raise fail(f"cannot be read: {type(e).__name__}: {e}") from None
            if len(data) != nbytes:
                raise fail("is truncated")
            arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
            out[name[:-4]] = np.array(arr)
    return out


# ------------------------------------------------------------------ safetensors

_ST_DTYPES = {"BOOL": "?", "U8": "u1", "I8": "i1", "U16": "<u2", "I16": "<i2", "U32": "<u4",
              "I32": "<i4", "U64": "<u8", "I64": "<i8", "F16": "<f2", "F32": "<f4",
              "F64": "<f8"}


def is_safetensors(file_name):
    """True when the file starts like a safetensors file (8-byte length, then '{')."""
    with open(file_name, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and \
        int.from_bytes(head[:8], "little") <= MAX_HEADER_BYTES


def safetensors_header(file_name):
    """(metadata dict of str, {name: (dtype, shape)}) of a safetensors file, fully checked
    against the file's size; nothing but the header is read."""
    file_name = os.fspath(file_name)
    where = f"{file_name}: not a readable safetensors file"
    with open(file_name, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise ParamsError(f"{where} (only {len(head)} bytes)")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise ParamsError(f"{where} (its header claims {n} bytes; the file has {size})")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ParamsError(f"{where} (header: {e})") from None
    if not isinstance(header, dict):
        raise ParamsError(f"{where} (the header is not a JSON object)")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise ParamsError(f"{where} (__metadata__ must map strings to strings)")
    if len(header) > MAX_ARRAYS:
        raise ParamsError(f"{where} ({len(header)} tensors, at most {MAX_ARRAYS})")
    data_size = size - 8 - n
    spans, entries = [], {}
    for name, info in header.items():
        try:
            dtype = np.dtype(_ST_DTYPES[info["dtype"]])
            shape = tuple(info["shape"])
            begin, end = info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ParamsError(f"{where} (tensor {name!r}: bad or unsupported entry "
                              f"{json.dumps(info)[:120]})") from None
        nbytes = check_array_size(f"{file_name}: tensor {name!r}", shape, dtype)
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end
                <= data_size and end - begin == nbytes):
            raise ParamsError(f"{where} (tensor {name!r} of shape {shape} needs "
                              f"{_human(nbytes)} but its offsets are [{begin}, {end}] in "
                              f"{_human(data_size)} of data)")
        spans.append((begin, end))
        entries[name] = (dtype, shape)
    spans.sort()
    pos = 0
    for begin, end in spans:
        if begin != pos:
            raise ParamsError(f"{where} (tensor data overlaps or leaves gaps)")
        pos = end
    if pos != data_size:
        raise ParamsError(f"{where} ({data_size - pos} bytes after the last tensor)")
    return meta, entries


def read_safetensors(file_name):
    """(arrays, metadata) of a safetensors file, after :func:`safetensors_header`'s checks."""
    meta, entries = safetensors_header(file_name)
    from safetensors import safe_open

    try:
        with safe_open(os.fspath(file_name), framework="numpy") as f:
            arrays = {k: np.array(f.get_tensor(k)) for k in entries}
    except Exception as e:
        raise ParamsError(f"{file_name}: not a readable safetensors file ({e})") from None
    return arrays, meta


def safetensors_bytes(arrays, metadata=None):
    """The bytes of a safetensors file holding ``arrays`` (NumPy, any dtype safetensors knows)
    and ``metadata`` (str -> str)."""
    from safetensors.numpy import save

    out = {}
    for k, v in arrays.items():
        v = np.asarray(v)
        if v.dtype.byteorder == ">":
            v = v.astype(v.dtype.newbyteorder("<"))
        out[k] = np.ascontiguousarray(v)
    return save(out, metadata={k: str(v) for k, v in (metadata or {}).items()})
