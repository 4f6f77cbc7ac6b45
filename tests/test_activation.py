import numpy as np
import pytest

import fastnn
from fastnn import _ops
from conftest import assert_parity


def test_relu_kernel_matches_numpy(rng, dtype):
    x = rng.standard_normal((7, 13)).astype(dtype)
    y, mask = _ops.relu_forward(x)
    assert_parity(y, np.where(x > 0, x, 0), dtype)
    np.testing.assert_array_equal(mask, x <= 0)


def test_sigmoid_tanh_kernels(rng, dtype):
    x = rng.standard_normal(1000).astype(dtype)
    assert_parity(_ops.sigmoid_forward(x), 1 / (1 + np.exp(-x)), dtype)
    assert_parity(_ops.tanh_forward(x), np.tanh(x), dtype)


def test_complex_input_raises_type_error():
    with pytest.raises(TypeError, match="Relu"):
        _ops.relu_forward(np.ones(3, dtype=complex))


def test_thread_count_round_trip():
    n = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
    finally:
        fastnn.set_num_threads(n)
    with pytest.raises(ValueError):
        fastnn.set_num_threads(0)
