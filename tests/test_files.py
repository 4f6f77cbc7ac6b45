"""Parameter files: atomic saves (an interrupted write leaves the previous file intact and no
partial file), validated loads, .npz without pickle, pickles read without running code, and a
safe path that refuses pickles altogether."""

import os
import pickle

import numpy as np
import pytest

from fastnn import cli
from fastnn.models import ParamsError, TwoLayerNet
from fastnn.models import _params


@pytest.fixture
def net():
    np.random.seed(0)
    return TwoLayerNet(4, 3, 2)


def _saved_copy(net):
    return {k: v.copy() for k, v in net.params.items()}


@pytest.mark.parametrize("name", ["p.pkl", "p.npz", "p.safetensors"])
def test_interrupted_save_keeps_the_previous_file(tmp_path, net, monkeypatch, name):
    path = tmp_path / name
    net.save_params(path)
    before = path.read_bytes()
    old = _saved_copy(net)
    for v in net.params.values():
        v += 1

    def write_half_then_fail(*args, **kwargs):
        f = next(a for a in args if hasattr(a, "write"))
        f.write(b"\x80\x04partial")  # some bytes reach the file, then the write dies
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_params.pickle, "dump", write_half_then_fail)
    monkeypatch.setattr(_params.np, "savez", write_half_then_fail)
    monkeypatch.setattr(_params, "safetensors_bytes",
                        lambda *a: write_half_then_fail(__import__("io").BytesIO()))
    with pytest.raises(OSError, match="No space left"):
        net.save_params(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [name]  # no temporary or truncated file left
    fresh = TwoLayerNet(4, 3, 2)
    fresh.load_params(path)
    for k in old:
        np.testing.assert_array_equal(fresh.params[k], old[k])


def test_interrupt_during_rename_keeps_the_previous_file(tmp_path, net, monkeypatch):
    path = tmp_path / "p.pkl"
    net.save_params(path)
    before = path.read_bytes()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(_params.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        net.save_params(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["p.pkl"]


def test_save_writes_the_data_to_disk_before_renaming(tmp_path, net, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(_params.os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(_params.os, "replace",
                        lambda a, b: (calls.append("replace"), real_replace(a, b)))
    net.save_params(tmp_path / "p.npz")
    assert calls == ["fsync", "replace"]


def test_load_validates_keys_shapes_and_dtypes(tmp_path, net):
    bad = _saved_copy(net)
    bad["W1"] = np.zeros((5, 3))
    bad["b1"] = bad["b1"].astype(np.complex128)
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ParamsError, match=r"W1 has shape \(5, 3\) but the network expects "
                                          r"\(4, 3\); b1 has dtype complex128"):
        net.load_params(tmp_path / "bad.npz")
    truncated = tmp_path / "cut.npz"
    net.save_params(truncated)
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(ParamsError, match="not a readable .npz"):
        net.load_params(truncated)


def test_npz_with_pickled_objects_is_refused(tmp_path, net):
    params = _saved_copy(net)
    params["W1"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "obj.npz", **params)
    with pytest.raises(ParamsError, match="Object arrays cannot be loaded when "
                                          "allow_pickle=False"):
        net.load_params(tmp_path / "obj.npz")


class _Payload:
    """Unpickling this creates a marker file: what a malicious params.pkl could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_safe_path_refuses_pickles_without_running_them(tmp_path, net):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"W1": _Payload(str(marker))}))
    with pytest.raises(ParamsError, match="refusing to unpickle"):
        net.load_params(evil, allow_pickle=False)
    assert not marker.exists()
    # an .npz name does not help a pickle either
    renamed = tmp_path / "evil.npz"
    renamed.write_bytes(evil.read_bytes())
    with pytest.raises(ParamsError, match="not a readable .npz"):
        net.load_params(renamed, allow_pickle=False)
    assert not marker.exists()
    # the default path reads pickles too, but only plain data: the payload is refused unrun
    with pytest.raises(ParamsError, match=r"refusing to load: the pickle asks for _?io\.open"):
        net.load_params(evil)
    assert not marker.exists()


def test_safe_path_loads_npz(tmp_path, net):
    net.save_params(tmp_path / "p.npz")
    fresh = TwoLayerNet(4, 3, 2)
    fresh.load_params(tmp_path / "p.npz", allow_pickle=False)
    for k in net.params:
        np.testing.assert_array_equal(fresh.params[k], net.params[k])


def test_cli_safe_refuses_pickles_in_one_line(tmp_path, net, capsys):
    net.save_params(tmp_path / "p.pkl")
    W = np.zeros((2, 1, 3, 3))
    _params.save({"W1": W}, tmp_path / "w.pkl")
    code = cli.main(["show-filters", "--safe", "--params", str(tmp_path / "w.pkl"),
                     "--out", str(tmp_path / "f.png")])
    err = capsys.readouterr().err
    assert code == 1 and "refusing to unpickle" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "f.png").exists()


# ------------------------------------------------------------------ BaseNN checkpoints

def _basenn_model():
    from fastnn.basenn import nn
    model = nn()
    model.add('Linear', size=(4, 3), activation='ReLU')
    model.add('Linear', size=(3, 2))
    return model


def test_basenn_truncated_or_foreign_checkpoint_is_a_value_error(tmp_path):
    from fastnn.basenn import nn
    cut = tmp_path / "cut.pth"
    cut.write_bytes(b"PK\x03\x04trunc")  # a zip header, then nothing (was a raw BadZipFile)
    with pytest.raises(ValueError, match="is not a fastnn.basenn checkpoint"):
        nn().load(str(cut))
    pkl = tmp_path / "evil.pth"
    pkl.write_bytes(pickle.dumps({"W1": _Payload(str(tmp_path / "pwned"))}))
    with pytest.raises(ValueError, match="is not a fastnn.basenn checkpoint"):
        nn().load(str(pkl))
    assert not (tmp_path / "pwned").exists()


def test_basenn_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from fastnn.basenn import model as basenn_model
    model = _basenn_model()
    path = tmp_path / "m.pth"
    model.save(str(path))
    before = path.read_bytes()

    def write_half_then_fail(f, **arrays):
        f.write(b"PK\x03\x04partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(basenn_model, "safetensors_bytes",
                        lambda *a: write_half_then_fail(__import__("io").BytesIO()))
    with pytest.raises(OSError):
        model.save(str(path))
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.pth"]


@pytest.mark.parametrize("name", ["p.pkl", "p.npz"])
def test_saved_file_gets_the_permissions_of_a_plain_open(tmp_path, net, name):
    path = tmp_path / name
    net.save_params(str(path))
    with open(tmp_path / "plain", "wb"):
        pass
    assert os.stat(path).st_mode & 0o777 == os.stat(tmp_path / "plain").st_mode & 0o777
    assert sorted(os.listdir(tmp_path)) == sorted([name, "plain"])  # no temporary file left
