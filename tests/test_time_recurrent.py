"""RNN, LSTM and GRU kernels through the book's RNN / TimeRNN, LSTM / TimeLSTM and GRU / TimeGRU
layers: parity with fastnn.reference, gradients, edge cases and bad input, the same checks for
each family (shared checks in recurrent_cases.py; torch layout in test_nn_rnn.py)."""

import pytest

import recurrent_cases as rc

# (time layer, single-step layer, gate blocks, state arrays)
FAMILIES = {"rnn": ("TimeRNN", "RNN", 1, 1), "lstm": ("TimeLSTM", "LSTM", 4, 2),
            "gru": ("TimeGRU", "GRU", 3, 1)}


@pytest.fixture(params=list(FAMILIES))
def family(request):
    return FAMILIES[request.param]


@pytest.mark.parametrize("N,T,D,H", [(3, 5, 4, 6), (4, 9, 7, 3), (2, 1, 1, 8)])
def test_time_layer_matches_reference(rng, dtype, family, N, T, D, H):
    time, _, gates, _ = family
    rc.check_time_parity(rng, dtype, time, gates, N, T, D, H)


def test_stateful_matches_reference(rng, dtype, family):
    time, _, gates, _ = family
    rc.check_time_parity(rng, dtype, time, gates, 3, 4, 5, 6, stateful=True)


@pytest.mark.parametrize("N,D,H", [(3, 4, 6), (1, 5, 2)])
def test_single_step_matches_reference(rng, dtype, family, N, D, H):
    _, step, gates, states = family
    rc.check_step_parity(rng, dtype, step, gates, states, N, D, H)


def test_numerical_gradients(rng, family):
    rc.check_time_gradients(rng, family[0], family[2])


def test_edge_cases(rng, dtype, family):
    rc.check_edge_cases(rng, dtype, family[0], family[2])


def test_nan_propagates(rng, family):
    rc.check_nan_propagates(rng, family[0], family[2])


def test_bad_input(rng, family):
    rc.check_bad_input(rng, family[0], family[2])


def test_state_handling(rng, family):
    time, _, gates, states = family
    rc.check_stateful_and_reset(rng, time, gates, states)


def test_saturated_gates_match_reference(rng, dtype, family):
    # large weights drive the sigmoids and tanh far into saturation
    rc.check_time_parity(rng, dtype, family[0], family[2], 3, 6, 4, 5, scale=20.0)


def test_concurrent_calls_from_threads(rng, family):
    rc.check_concurrent_calls(rng, family[0], family[2])
