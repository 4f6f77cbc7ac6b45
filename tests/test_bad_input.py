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
