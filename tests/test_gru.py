"""GRU kernels (csrc/cpu/gru.cpp) through the book's GRU and TimeGRU layers: parity with
fastnn.reference, numerical gradients, edge cases, NaN, bad input, states and threads (the tests
of recurrent_cases.py). The torch layout of the same kernels is tested in test_nn_rnn.py."""

import pytest

from recurrent_cases import *  # noqa: F401,F403  the shared test_* functions


@pytest.fixture
def family():
    return ("TimeGRU", "GRU", 3, 1)
