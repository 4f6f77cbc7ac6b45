"""Bad input across the API: every row of docs/errors.md raises its documented exception, and
none of them crashes the interpreter (the whole table also runs in a child process)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import _C, _ops
from bad_input_cases import CASES

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = os.path.join(HERE, os.pardir, "docs", "errors.md")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_row_raises_its_exception(case, restore_threads):
    _id, _api, _input, exc, match, call = case
    with pytest.raises(exc, match=match):
        call()


def test_no_row_crashes_the_interpreter():
    # The whole table in a fresh interpreter: it must exit normally (no signal, no abort) and
    # report the documented exception for every row.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastnn.__file__)), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "bad_input_cases.py")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, f"child exited with {proc.returncode}:\n{proc.stderr[-3000:]}"
    got = {r["id"]: r["exception"] for r in map(json.loads, proc.stdout.splitlines())}
    assert got == {c[0]: c[3].__name__ for c in CASES}


def test_docs_table_lists_every_row():
    with open(DOCS, encoding="utf-8") as f:
        doc = f.read()
    missing = [c[0] for c in CASES if f"`{c[0]}`" not in doc]
    assert not missing, f"docs/errors.md lacks rows {missing}"


# ------------------------------------------------------------------ oversized requests
# Sizes are computed without int64 overflow; a wrapped product once sized im2col's output
# smaller than the loop filling it (a segfault).


def test_im2col_row_count_overflow_raises():
    x = np.zeros((1, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"im2col: OH\*OW .* does not fit in 64 bits"):
        _ops.im2col(x, 1, 1, 1, 2**31 - 1)
    with pytest.raises(ValueError, match=r"im2col: OH\*OW .* does not fit in 64 bits"):
        _C.im2col(x, 1, 1, 1, 2**31 - 1)


def test_pad_overflow_raises():
    x = np.zeros((1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"2\*pad .* does not fit in 64 bits"):
        _ops.im2col(x, 1, 1, 1, 2**62)
    with pytest.raises(ValueError, match=r"2\*pad .* does not fit in 64 bits"):
        _C.maxpool2d_forward(x, 1, 1, 1, 2**62)


def test_pool_window_beyond_int32_argmax_raises():
    with pytest.raises(ValueError, match="more cells than its int32 argmax can index"):
        _ops.maxpool2d_forward(np.zeros((1, 1, 1, 1)), 2**16, 2**16, 1, 2**15)
