"""fastnn keeps freed heap memory for the next step (fastnn/_malloc.py): what import sets, and
how the user turns it off or changes it. Each case imports fastnn in a fresh interpreter."""

import ctypes.util
import os
import subprocess
import sys

import pytest

import fastnn
from fastnn import _malloc

ROOT = os.path.dirname(os.path.dirname(fastnn.__file__))


def _import_fastnn(**env):
    """(returncode, malloc_top_pad printed by the child, stderr) of `import fastnn`."""
    full = {k: v for k, v in os.environ.items()
            if k not in ("FASTNN_MALLOC_TOP_PAD_MIB", "MALLOC_TOP_PAD_")}
    full.update(env, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", "import fastnn; print(fastnn.build_info()['malloc_top_pad'])"],
        capture_output=True, text=True, env=full, timeout=120)
    return proc.returncode, proc.stdout.strip(), proc.stderr


def _has_mallopt():
    try:
        return hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallopt")
    except OSError:
        return False


@pytest.mark.skipif(not _has_mallopt(), reason="this C library has no mallopt")
def test_import_keeps_64_mib_at_the_heap_top_by_default():
    assert _import_fastnn() == (0, str(64 << 20), "")


@pytest.mark.skipif(not _has_mallopt(), reason="this C library has no mallopt")
def test_the_size_is_the_users_to_choose():
    assert _import_fastnn(FASTNN_MALLOC_TOP_PAD_MIB="16")[:2] == (0, str(16 << 20))


@pytest.mark.parametrize("env", [dict(FASTNN_MALLOC_TOP_PAD_MIB="0"),
                                 dict(MALLOC_TOP_PAD_=str(1 << 20))], ids=["zero", "glibc-own"])
def test_malloc_is_left_alone_when_asked(env):
    assert _import_fastnn(**env)[:2] == (0, "None")


@pytest.mark.parametrize("raw", ["lots", "-1", "1.5"])
def test_a_bad_setting_is_a_clear_error(raw, monkeypatch):
    monkeypatch.setenv("FASTNN_MALLOC_TOP_PAD_MIB", raw)
    with pytest.raises(ValueError, match="FASTNN_MALLOC_TOP_PAD_MIB must be a whole number"):
        _malloc.requested_mib()
    rc, _, err = _import_fastnn(FASTNN_MALLOC_TOP_PAD_MIB=raw)
    assert rc != 0 and "FASTNN_MALLOC_TOP_PAD_MIB must be a whole number" in err
