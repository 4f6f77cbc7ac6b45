"""Bad input across the API: every row of docs/errors.md raises its documented exception, and
none of them crashes the interpreter (the whole table also runs in a child process)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import _C, ops
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
        ops.im2col(x, 1, 1, 1, 2**31 - 1)
    with pytest.raises(ValueError, match=r"im2col: OH\*OW .* does not fit in 64 bits"):
        _C.im2col(x, 1, 1, 1, 2**31 - 1)


def test_pad_overflow_raises():
    x = np.zeros((1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"2\*pad .* does not fit in 64 bits"):
        ops.im2col(x, 1, 1, 1, 2**62)
    with pytest.raises(ValueError, match=r"2\*pad .* does not fit in 64 bits"):
        _C.maxpool2d_forward(x, 1, 1, 1, 2**62)


def test_pool_window_beyond_int32_argmax_raises():
    with pytest.raises(ValueError, match="more cells than its int32 argmax can index"):
        ops.maxpool2d_forward(np.zeros((1, 1, 1, 1)), 2**16, 2**16, 1, 2**15)


# ------------------------------------------------------------------ backward before forward
# docs/errors.md: RuntimeError for every layer (Dropout: ValueError, as its mask is missing).
# Relu, Sigmoid and Tanh once gave AttributeError/TypeError. The time layers' cases are in
# tests/test_time_layers.py.

def _layer_cases():
    from fastnn import layers as L

    z = np.zeros
    return {
        "Relu": (L.Relu, lambda l: l.backward(z(3)), "Relu.backward called before forward"),
        "Sigmoid": (L.Sigmoid, lambda l: l.backward(z(3)),
                    "Sigmoid.backward called before forward"),
        "Tanh": (L.Tanh, lambda l: l.backward(z(3)), "Tanh.backward called before forward"),
        "Affine": (lambda: L.Affine(z((2, 2)), z(2)), lambda l: l.backward(z((1, 2))),
                   r"Affine.backward: call forward\(x\) first"),
        "SoftmaxWithLoss": (L.SoftmaxWithLoss, lambda l: l.backward(),
                            r"SoftmaxWithLoss.backward: call forward\(x, t\) first"),
        "BatchNormalization": (lambda: L.BatchNormalization(np.ones(2), z(2)),
                               lambda l: l.backward(z((1, 2))),
                               "BatchNormalization.backward: call forward"),
        "Convolution": (lambda: L.Convolution(z((1, 1, 1, 1)), z(1)),
                        lambda l: l.backward(z((1, 1, 1, 1))),
                        "Convolution.backward called before forward"),
        "Pooling": (lambda: L.Pooling(1, 1), lambda l: l.backward(z((1, 1, 1, 1))),
                    "Pooling.backward called before forward"),
        "AvgPooling": (lambda: L.AvgPooling(1, 1), lambda l: l.backward(z((1, 1, 1, 1))),
                       "AvgPooling.backward called before forward"),
    }


LAYER_CASES = _layer_cases()


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_backward_before_forward_raises_runtime_error(name):
    make, backward, match = LAYER_CASES[name]
    with pytest.raises(RuntimeError, match=match):
        backward(make())


def test_every_layer_class_is_covered():
    import inspect

    from fastnn import layers as L

    classes = {n for n, c in vars(L).items()
               if inspect.isclass(c) and hasattr(c, "backward") and not n.startswith("_")}
    assert classes == set(LAYER_CASES) | {"Dropout"}
    with pytest.raises(ValueError, match="Dropout.backward: dout has shape"):
        L.Dropout().backward(np.zeros(3))


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_nn_backward_before_forward_raises_runtime_error(name):
    from fastnn import nn

    with pytest.raises(RuntimeError, match=rf"^{name}.backward called before a forward pass$"):
        getattr(nn, name)(3, 4).backward(np.zeros((5, 2, 4)))
