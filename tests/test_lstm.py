"""LSTM kernels through the book's LSTM / TimeLSTM layers: parity with fastnn.reference, gradients,
edge cases and bad input (shared checks in recurrent_cases.py; torch layout in test_nn_rnn.py)."""

import pytest

import recurrent_cases as rc

TIME, STEP, GATES, STATES = "TimeLSTM", "LSTM", 4, 2


@pytest.mark.parametrize("N,T,D,H", [(3, 5, 4, 6), (4, 9, 7, 3), (2, 1, 1, 8)])
def test_time_layer_matches_reference(rng, dtype, N, T, D, H):
    rc.check_time_parity(rng, dtype, TIME, GATES, N, T, D, H)


def test_stateful_matches_reference(rng, dtype):
    rc.check_time_parity(rng, dtype, TIME, GATES, 3, 4, 5, 6, stateful=True)


@pytest.mark.parametrize("N,D,H", [(3, 4, 6), (1, 5, 2)])
def test_single_step_matches_reference(rng, dtype, N, D, H):
    rc.check_step_parity(rng, dtype, STEP, GATES, STATES, N, D, H)


def test_numerical_gradients(rng):
    rc.check_time_gradients(rng, TIME, GATES)


def test_edge_cases(rng, dtype):
    rc.check_edge_cases(rng, dtype, TIME, GATES)


def test_nan_propagates(rng):
    rc.check_nan_propagates(rng, TIME, GATES)


def test_bad_input(rng):
    rc.check_bad_input(rng, TIME, GATES)


def test_state_handling(rng):
    rc.check_stateful_and_reset(rng, TIME, GATES, STATES)


def test_saturated_gates_match_reference(rng, dtype):
    # large weights drive the sigmoids and tanh far into saturation
    rc.check_time_parity(rng, dtype, TIME, GATES, 3, 6, 4, 5, scale=20.0)


def test_concurrent_calls_from_threads(rng):
    rc.check_concurrent_calls(rng, TIME, GATES)
