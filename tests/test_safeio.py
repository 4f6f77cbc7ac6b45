"""Untrusted parameter files (fastnn._safeio): the restricted unpickler reads NumPy 1.x and 2.x
pickles of plain data and runs nothing else; .npz and safetensors headers that claim more than
the file holds are refused before anything is allocated.

The malicious files are loaded in child processes with a memory limit and a time limit, so a
regression that ran the payload or allocated what a header claims could not harm the test run;
each asserts that its marker file was never created."""

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn._safeio import ParamsError, load_pickle, read_npz, read_safetensors
from fastnn.models import TwoLayerNet, _params

DATA = Path(__file__).parent / "data"
FASTNN_PARENT = Path(fastnn.__file__).resolve().parents[1]

# What tests/data/numpy1_params_protocol{2,3,4,5}.pkl hold: written by NumPy 1.26.4
# (numpy.core.multiarray._reconstruct, numpy.core.numeric._frombuffer for protocol 5).
NUMPY1_EXPECTED = {
    "W": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    "b": np.array([0.5, -1.25, 3.0]),
    "F": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    "strided": np.arange(8, dtype=np.float64)[::2],
    "big_endian": np.arange(3, dtype=">f8"),
    "mask": np.array([True, False]),
    "counts": np.array([1, 2, 3], dtype=np.int64),
}


def run_child(code, tmp_path, mem_mib=1024, timeout=60):
    """Run ``code`` in a fresh interpreter allowed ``mem_mib`` more address space than it holds
    at start (relative, so that it also holds under ASan, whose shadow memory is reserved
    address space)."""
    prelude = textwrap.dedent(f"""
        import resource, sys
        with open("/proc/self/statm") as _f:
            _limit = int(_f.read().split()[0]) * resource.getpagesize() + ({mem_mib} << 20)
        resource.setrlimit(resource.RLIMIT_AS, (_limit, _limit))
        sys.path.insert(0, {str(FASTNN_PARENT)!r})
    """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env=env)


# ------------------------------------------------------------------ pickles that are data


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy1_pickles_load(protocol):
    got = load_pickle(DATA / f"numpy1_params_protocol{protocol}.pkl")
    assert sorted(got) == sorted(NUMPY1_EXPECTED)
    for k, want in NUMPY1_EXPECTED.items():
        assert type(got[k]) is np.ndarray and got[k].dtype == want.dtype, k
        np.testing.assert_array_equal(got[k], want)
        assert got[k].flags.writeable
    assert got["F"].flags.f_contiguous


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_this_numpys_pickles_load(tmp_path, protocol):
    data = {"W": np.arange(12, dtype=np.float32).reshape(3, 4), "empty": np.zeros((2, 0)),
            "F": np.asfortranarray(np.ones((2, 3))), "view": np.arange(10.0)[::3],
            "nested": [1, 2.5, ("x", None, True), {"k": b"bytes", "e": b""}],
            "scalar": np.float64(1.5), "c": np.array([1 + 2j])}
    (tmp_path / "p.pkl").write_bytes(pickle.dumps(data, protocol=protocol))
    got = load_pickle(tmp_path / "p.pkl")
    for k in ("W", "empty", "F", "view", "c"):
        np.testing.assert_array_equal(got[k], data[k])
        assert got[k].dtype == data[k].dtype and got[k].shape == data[k].shape
    assert got["nested"] == data["nested"] and got["scalar"] == 1.5


def test_book_params_pickle_loads_into_a_network(tmp_path):
    np.random.seed(0)
    net = TwoLayerNet(4, 3, 2)
    with open(tmp_path / "params.pkl", "wb") as f:  # the book's save_params
        pickle.dump(net.params, f)
    other = TwoLayerNet(4, 3, 2)
    other.load_params(tmp_path / "params.pkl")
    for k in net.params:
        np.testing.assert_array_equal(other.params[k], net.params[k])


# ------------------------------------------------------------------ pickles that are not


class _Reduce:
    """Pickles as ``func(*args)``: what a malicious file asks the unpickler to call."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    import builtins
    import subprocess as sp
    touch = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "os.system": _Reduce(os.system, f"touch {marker}"),
        "builtins.eval": _Reduce(builtins.eval, touch),
        "builtins.exec": _Reduce(builtins.exec, touch),
        "subprocess.Popen": _Reduce(sp.Popen, ["touch", str(marker)]),
        "subprocess.check_call": _Reduce(sp.check_call, ["touch", str(marker)]),
        "builtins.getattr": _Reduce(builtins.getattr, "", "join"),
        "numpy runstring": _Reduce(np.testing._private.utils.runstring, touch, {}),
        "numpy.load": _Reduce(np.load, str(marker)),
        "pickle.loads": _Reduce(pickle.loads, pickle.dumps(_Reduce(os.system, "true"))),
    }


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_pickles_run_nothing(tmp_path, protocol):
    marker = tmp_path / "pwned"
    names = []
    for name, payload in _payloads(marker).items():
        fname = name.replace(" ", "_").replace(".", "_") + ".pkl"
        # hidden inside the dict of arrays a params.pkl holds, next to a real array
        evil = {"W1": np.ones((2, 2)), "b1": payload}
        (tmp_path / fname).write_bytes(pickle.dumps(evil, protocol=protocol))
        names.append(fname)
    res = run_child(f"""
        from fastnn.models import TwoLayerNet, ParamsError
        net = TwoLayerNet(2, 2, 2)
        for name in {names!r}:
            try:
                net.load_params(name)
            except ParamsError as e:
                print(name, "|", e)
            else:
                print(name, "| LOADED")
    """, tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(names), res.stdout
    for line in lines:
        assert "refusing to load: the pickle asks for" in line, line
        assert "nothing in the file was run" in line
    assert not marker.exists()


def test_refusal_names_what_was_asked_for(tmp_path):
    (tmp_path / "e.pkl").write_bytes(pickle.dumps({"W": _Reduce(os.system, "true")}))
    with pytest.raises(ParamsError, match=r"e.pkl: refusing to load: the pickle asks for "
                                          r"(posix|os)\.system"):
        load_pickle(tmp_path / "e.pkl")


class _ForgedArray:
    """Pickles as NumPy does an ndarray, with a state that claims ``shape`` but holds
    ``data``."""

    def __init__(self, shape, data=b"\0" * 16, dtype="f8"):
        self.state = (1, shape, np.dtype(dtype), False, data)

    def __reduce__(self):
        return np.ndarray.__reduce__(np.zeros(1))[:2] + (self.state,)


def _forged_array_pickle(shape, data=b"\0" * 16, dtype="f8"):
    return pickle.dumps(_ForgedArray(shape, data, dtype), protocol=2)


def test_forged_pickle_sizes_are_refused_before_allocating(tmp_path):
    ok = _forged_array_pickle((2,))
    (tmp_path / "ok.pkl").write_bytes(ok)
    np.testing.assert_array_equal(load_pickle(tmp_path / "ok.pkl"), [0.0, 0.0])
    (tmp_path / "huge.pkl").write_bytes(_forged_array_pickle((10 ** 12,)))
    (tmp_path / "fits.pkl").write_bytes(_forged_array_pickle((10 ** 7,)))
    # BINBYTES8 claiming 2**40 bytes: the length must be backed by the file
    (tmp_path / "bytes8.pkl").write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40)
                                          + b"abc.")
    (tmp_path / "object.pkl").write_bytes(_forged_array_pickle((1,), dtype="O"))
    res = run_child("""
        from fastnn._safeio import load_pickle, ParamsError
        for name in ("huge.pkl", "fits.pkl", "bytes8.pkl", "object.pkl"):
            try:
                load_pickle(name)
            except ParamsError as e:
                print(name, "|", e)
    """, tmp_path, mem_mib=768)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "huge.pkl | huge.pkl: refusing to load: array: shape (1000000000000,) of float64 is " \
           "7.3 TiB, over the 4.0 GiB limit" in out
    assert "fits.pkl | fits.pkl: refusing to load: array of shape (10000000,) and dtype float64 " \
           "needs 80000000 bytes but the pickle holds 16" in out
    assert "bytes8.pkl | bytes8.pkl: not a readable parameter pickle" in out
    assert "object.pkl | object.pkl: refusing to load: dtype 'O8'" in out
    assert "MemoryError" not in out + res.stderr


def test_plain_objects_and_deep_nesting_are_refused(tmp_path):
    (tmp_path / "set.pkl").write_bytes(pickle.dumps({"W": {1, 2}}))
    with pytest.raises(ParamsError, match="holds a set"):
        load_pickle(tmp_path / "set.pkl")
    # 100,000 nested lists, built without recursion: EMPTY_LIST x n, then APPEND x (n - 1)
    (tmp_path / "deep.pkl").write_bytes(b"\x80\x04" + b"]" * 100_000 + b"a" * 99_999 + b".")
    with pytest.raises(ParamsError, match="not a readable parameter pickle"):
        load_pickle(tmp_path / "deep.pkl")


# ------------------------------------------------------------------ .npz


def _npz_with_member(path, name, payload):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name, payload)


def _npy_header(shape, descr="<f8"):
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def test_npz_problems_have_clear_messages(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    os.rename(tmp_path / "a.npy", tmp_path / "renamed.npz")
    with pytest.raises(ParamsError, match=r"renamed.npz: not a readable .npz parameter file "
                                          r"\(it is a single .npy array, perhaps renamed"):
        read_npz(tmp_path / "renamed.npz")
    _npz_with_member(tmp_path / "text.npz", "notes.txt", b"hello")
    with pytest.raises(ParamsError, match=r"member 'notes.txt' is not a NumPy array"):
        read_npz(tmp_path / "text.npz")
    _npz_with_member(tmp_path / "huge.npz", "W1.npy", _npy_header((10 ** 12,)) + b"\0" * 16)
    with pytest.raises(ParamsError, match=r"member 'W1.npy' declares shape \(1000000000000,\) "
                                          r"of float64: 7.3 TiB, over the 4.0 GiB limit"):
        read_npz(tmp_path / "huge.npz")
    _npz_with_member(tmp_path / "lies.npz", "W1.npy", _npy_header((10 ** 6,)) + b"\0" * 16)
    with pytest.raises(ParamsError, match=r"declares shape \(1000000,\) of float64 = 7.6 MiB "
                                          r"but holds 16 bytes"):
        read_npz(tmp_path / "lies.npz")
    _npz_with_member(tmp_path / "obj.npz", "W1.npy", _npy_header((1,), "|O") + b"\0" * 8)
    with pytest.raises(ParamsError, match="Object arrays cannot be loaded"):
        read_npz(tmp_path / "obj.npz")


def test_npz_header_claiming_1e12_elements_allocates_nothing(tmp_path):
    _npz_with_member(tmp_path / "huge.npz", "W1.npy", _npy_header((10 ** 12,)) + b"\0" * 16)
    res = run_child("""
        from fastnn.models import TwoLayerNet, ParamsError
        try:
            TwoLayerNet(2, 2, 2).load_params("huge.npz")
        except ParamsError as e:
            print(e)
    """, tmp_path, mem_mib=768)
    assert res.returncode == 0, res.stderr
    assert "over the 4.0 GiB limit" in res.stdout and "MemoryError" not in res.stderr


def test_npz_round_trip_keeps_dtypes_and_order(tmp_path):
    arrays = {"a": np.arange(6.0).reshape(2, 3), "F": np.asfortranarray(np.ones((3, 2))),
              "i": np.arange(4, dtype=np.int32), "e": np.zeros((0, 3), np.float32)}
    np.savez(tmp_path / "x.npz", **arrays)
    got = read_npz(tmp_path / "x.npz")
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype


# ------------------------------------------------------------------ safetensors


def _safetensors(header, data=b""):
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def test_safetensors_headers_are_checked(tmp_path):
    cases = {
        "huge": ({"W": {"dtype": "F64", "shape": [10 ** 12], "data_offsets": [0, 8 * 10 ** 12]}},
                 b"\0" * 16, r"over the 4.0 GiB limit"),
        "lies": ({"W": {"dtype": "F64", "shape": [10 ** 6], "data_offsets": [0, 8 * 10 ** 6]}},
                 b"\0" * 16, r"needs 7.6 MiB but its offsets are \[0, 8000000\] in 16 bytes"),
        "dtype": ({"W": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0\0",
                  r"bad or unsupported entry"),
        "overlap": ({"A": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                     "B": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, b"\0" * 3,
                    "overlaps or leaves gaps"),
        "meta": ({"__metadata__": {"a": 1}}, b"", "must map strings to strings"),
    }
    for name, (header, data, message) in cases.items():
        (tmp_path / name).write_bytes(_safetensors(header, data))
        with pytest.raises(ParamsError, match=message):
            read_safetensors(tmp_path / name)
    (tmp_path / "long").write_bytes(struct.pack("<Q", 1 << 62) + b"{}")
    with pytest.raises(ParamsError, match=r"its header claims 4611686018427387904 bytes"):
        read_safetensors(tmp_path / "long")
    (tmp_path / "json").write_bytes(struct.pack("<Q", 3) + b"{x}")
    with pytest.raises(ParamsError, match="header"):
        read_safetensors(tmp_path / "json")


def test_model_safetensors_is_readable_from_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file
    np.random.seed(1)
    net = TwoLayerNet(4, 3, 2, dtype=np.float32)
    net.save_params(tmp_path / "model.safetensors")
    tensors = load_file(str(tmp_path / "model.safetensors"))
    assert sorted(tensors) == sorted(net.params)
    for k, v in net.params.items():
        assert tensors[k].dtype == torch.float32
        np.testing.assert_array_equal(tensors[k].numpy(), v)


def test_params_save_format_follows_the_extension(tmp_path):
    arrays = {"W": np.ones((2, 2))}
    for name in ("a.pkl", "a.npz", "a.safetensors", "a.weights"):
        _params.save(arrays, tmp_path / name, {"k": "v"})
        got, meta = _params.load_with_metadata(tmp_path / name)
        np.testing.assert_array_equal(got["W"], arrays["W"])
        assert meta == ({"k": "v"} if _params.format_of(name) == "safetensors" else {})
    assert (tmp_path / "a.pkl").read_bytes()[:1] == b"\x80"
    assert (tmp_path / "a.npz").read_bytes()[:2] == b"PK"
    assert (tmp_path / "a.weights").read_bytes()[8:9] == b"{"


class _SharedBytes:
    """Pickles as an array backed by one module-level bytes object: many of them in one pickle
    share it through the memo."""
    data = bytes(1 << 20)

    def __reduce__(self):
        from numpy._core import numeric
        return (numeric._frombuffer, (self.data, np.dtype("f8"), (1 << 17,), "C"))


@pytest.mark.skipif(not hasattr(np, "_core"), reason="NumPy 1.x pickles name numpy.core")
def test_one_bytes_object_backing_many_arrays_is_refused(tmp_path):
    """A 1 MiB pickle of 64 arrays sharing one bytes object would unpack to 64 MiB."""
    path = tmp_path / "bomb.pkl"
    path.write_bytes(pickle.dumps([_SharedBytes() for _ in range(64)], protocol=2))
    assert path.stat().st_size < (1 << 20) + 4096
    with pytest.raises(ParamsError, match="its arrays hold more bytes than the file itself"):
        load_pickle(path)
    # the same through an .npz object member (load_npz_data's vocabulary path)
    import io
    from numpy.lib import format as npformat
    npz, header = tmp_path / "bomb.npz", io.BytesIO()
    npformat.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False,
                                             "shape": ()})
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word2idx.npy", header.getvalue() + path.read_bytes())
    with pytest.raises(ParamsError, match="more bytes than the file"):
        read_npz(npz, objects=("word2idx",))


def test_object_members_are_capped(tmp_path, monkeypatch):
    from fastnn import _safeio
    np.savez(tmp_path / "v.npz", word2idx={f"w{i}": i for i in range(2000)})
    assert len(read_npz(tmp_path / "v.npz", objects=("word2idx",))["word2idx"].item()) == 2000
    monkeypatch.setattr(_safeio, "MAX_OBJECT_MEMBER_BYTES", 1000)
    with pytest.raises(ParamsError, match="over the 1000 bytes limit for an object array"):
        read_npz(tmp_path / "v.npz", objects=("word2idx",))
