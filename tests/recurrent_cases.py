"""The tests of one book-style recurrent family (RNN, LSTM, GRU), shared by test_rnn.py,
test_lstm.py and test_gru.py: each of them imports the test_* functions below and defines the
`family` fixture, (name of the Time* class, name of the single-step class, gates per block,
states), states being 1 for RNN/GRU (h) and 2 for LSTM (h, c).
"""

import numpy as np
import pytest

import fastnn
import fastnn.time_layers as fast
import fastnn.reference.time_layers as ref
from conftest import assert_parity, gradcheck


def make_params(rng, D, H, gates, dtype, scale=0.5):
    G = gates * H
    return [(rng.standard_normal((D, G)) * scale).astype(dtype),
            (rng.standard_normal((H, G)) * scale).astype(dtype),
            rng.standard_normal(G).astype(dtype)]


def pair(cls_name, params):
    """The fastnn layer and the reference layer on copies of the same parameters."""
    return (getattr(fast, cls_name)(*params),
            getattr(ref, cls_name)(*[p.copy() for p in params]))


def check_time_parity(rng, dtype, time_cls, gates, N, T, D, H, stateful=False, xs=None,
                      scale=0.5):
    params = make_params(rng, D, H, gates, dtype, scale)
    a, r = pair(time_cls, params)
    a.stateful = r.stateful = stateful
    rounds = 2 if stateful else 1
    for _ in range(rounds):
        x = xs if xs is not None else rng.standard_normal((N, T, D)).astype(dtype)
        dhs = rng.standard_normal((N, T, H)).astype(dtype)
        assert_parity(a.forward(x), r.forward(np.ascontiguousarray(x)), dtype, reduce_len=D + H)
        assert_parity(a.backward(dhs), r.backward(dhs), dtype, reduce_len=T * (D + H))
        for ga, gr in zip(a.grads, r.grads):
            assert_parity(ga, gr, dtype, reduce_len=N * T * gates * H)
        assert_parity(a.dh, r.dh, dtype, reduce_len=T * gates * H)
    return a, r


def check_step_parity(rng, dtype, step_cls, gates, states, N, D, H):
    params = make_params(rng, D, H, gates, dtype)
    a, r = pair(step_cls, params)
    x = rng.standard_normal((N, D)).astype(dtype)
    st = [rng.standard_normal((N, H)).astype(dtype) for _ in range(states)]
    outs_a, outs_r = a.forward(x, *st), r.forward(x, *st)
    if states == 1:
        outs_a, outs_r = (outs_a,), (outs_r,)
    for oa, orf in zip(outs_a, outs_r):
        assert_parity(oa, orf, dtype, reduce_len=D + H)
    d = [rng.standard_normal((N, H)).astype(dtype) for _ in range(states)]
    for ga, gr in zip(a.backward(*d), r.backward(*d)):
        assert_parity(ga, gr, dtype, reduce_len=gates * H)
    for ga, gr in zip(a.grads, r.grads):
        assert_parity(ga, gr, dtype, reduce_len=N * gates * H)


def check_time_gradients(rng, time_cls, gates, N=2, T=3, D=3, H=4):
    """Central differences of sum(forward(xs) * dhs) w.r.t. xs and every parameter (float64)."""
    params = make_params(rng, D, H, gates, np.float64)
    layer = getattr(fast, time_cls)(*params)
    xs = rng.standard_normal((N, T, D))
    dhs = rng.standard_normal((N, T, H))

    def loss():
        return float(np.sum(layer.forward(xs) * dhs))

    loss()
    dxs = layer.backward(dhs)
    grads = [g.copy() for g in layer.grads]
    gradcheck(loss, xs, dxs)
    for p, g in zip(layer.params, grads):  # the layer holds p itself: in-place edits are seen
        gradcheck(loss, p, g)


def check_edge_cases(rng, dtype, time_cls, gates):
    D, H = 3, 5
    # batch of one, odd sizes
    check_time_parity(rng, dtype, time_cls, gates, N=1, T=7, D=D, H=H)
    # empty batch gives empty arrays of the right shapes
    layer = getattr(fast, time_cls)(*make_params(rng, D, H, gates, dtype))
    hs = layer.forward(np.zeros((0, 4, D), dtype))
    assert hs.shape == (0, 4, H) and hs.dtype == dtype
    dxs = layer.backward(np.zeros((0, 4, H), dtype))
    assert dxs.shape == (0, 4, D)
    np.testing.assert_array_equal(layer.grads[0], 0)
    # non-contiguous and Fortran-ordered inputs
    big = rng.standard_normal((3, 10, D)).astype(dtype)
    check_time_parity(rng, dtype, time_cls, gates, 3, 5, D, H, xs=big[:, ::2])
    check_time_parity(rng, dtype, time_cls, gates, 3, 10, D, H, xs=np.asfortranarray(big))


def check_nan_propagates(rng, time_cls, gates):
    D, H = 3, 4
    params = make_params(rng, D, H, gates, np.float32)
    a, r = pair(time_cls, params)
    xs = rng.standard_normal((2, 3, D)).astype(np.float32)
    xs[0, 1, 0] = np.nan
    ha, hr = a.forward(xs), r.forward(xs)
    np.testing.assert_array_equal(np.isnan(ha), np.isnan(hr))
    assert np.isnan(ha[0, 1:]).all() and np.isfinite(ha[1]).all() and np.isfinite(ha[0, 0]).all()


def check_bad_input(rng, time_cls, gates):
    D, H = 3, 4
    layer = getattr(fast, time_cls)(*make_params(rng, D, H, gates, np.float32))
    with pytest.raises(ValueError, match=r"input has 5 features but the weights expect 3"):
        layer.forward(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match=r"3-D"):
        layer.forward(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match=time_cls):
        layer.forward(np.zeros((2, 3, D), np.complex64))
    layer.stateful = True
    layer.set_state(np.zeros((7, H), np.float32))
    with pytest.raises(ValueError, match=r"h0 has shape \(7, 4\) but \(2, 4\)"):
        layer.forward(np.zeros((2, 3, D), np.float32))


def check_stateful_and_reset(rng, time_cls, gates, states):
    """stateful carries h (and c) across calls; reset_state/set_state behave like the book."""
    N, T, D, H = 2, 4, 3, 5
    params = make_params(rng, D, H, gates, np.float64)
    a, r = pair(time_cls, params)
    a.stateful = r.stateful = True
    xs = rng.standard_normal((N, 2 * T, D))
    whole = getattr(fast, time_cls)(*params).forward(xs)
    first, second = a.forward(xs[:, :T]), a.forward(xs[:, T:])
    assert_parity(np.concatenate([first, second], axis=1), whole, np.float64)
    assert_parity(a.h, whole[:, -1], np.float64)
    a.reset_state()
    assert a.h is None
    h0 = rng.standard_normal((N, H))
    st = (h0, rng.standard_normal((N, H))) if states == 2 else (h0,)
    a.set_state(*st)
    r.set_state(*[s.copy() for s in st])
    assert_parity(a.forward(xs), r.forward(xs), np.float64)


def check_concurrent_calls(rng, time_cls, gates):
    """Layers used from several Python threads at once (the kernels release the GIL) give the
    same results as one after the other."""
    from concurrent.futures import ThreadPoolExecutor
    D, H = 16, 32
    jobs = []
    for _ in range(6):
        layer = getattr(fast, time_cls)(*make_params(rng, D, H, gates, np.float32, 0.2))
        jobs.append((layer, rng.standard_normal((8, 20, D)).astype(np.float32),
                     rng.standard_normal((8, 20, H)).astype(np.float32)))

    def work(job):
        layer, xs, dhs = job
        hs = layer.forward(xs)
        return hs, layer.backward(dhs), [g.copy() for g in layer.grads]

    serial = [work(j) for j in jobs]
    with ThreadPoolExecutor(3) as pool:
        parallel = list(pool.map(work, jobs))
    for (hs, dx, gs), (hs2, dx2, gs2) in zip(serial, parallel):
        np.testing.assert_array_equal(hs, hs2)
        np.testing.assert_array_equal(dx, dx2)
        for g, g2 in zip(gs, gs2):
            np.testing.assert_array_equal(g, g2)


# ---- the tests, collected in each family's file

@pytest.mark.parametrize("N,T,D,H", [(3, 5, 4, 6), (4, 9, 7, 3), (2, 1, 1, 8)])
def test_time_layer_matches_reference(rng, dtype, family, N, T, D, H):
    time, _, gates, _ = family
    check_time_parity(rng, dtype, time, gates, N, T, D, H)


@pytest.mark.parametrize("threads", [2, 3])
def test_batch_split_between_threads_matches_reference(rng, dtype, family, restore_threads,
                                                       threads):
    """A batch big enough for each thread to walk the sequence for its own slice of rows, of a
    size no thread count divides; stateful, so the second round starts from the layer's h (and
    c)."""
    fastnn.set_num_threads(threads)
    time, _, gates, _ = family
    check_time_parity(rng, dtype, time, gates, N=13, T=6, D=5, H=7, stateful=True)


@pytest.mark.parametrize("threads", [1, 2])
def test_steps_in_row_chunks_match_reference(rng, dtype, family, restore_threads, threads):
    """40 rows x gates*H x H per step, with gates*H*H small enough for OpenBLAS's unpacked
    path at 8 rows but not at 40 or 20: float32 steps go in chunks of 8 or 16 rows, with a
    shorter last chunk, where OpenBLAS has its AVX-512 small kernels (core/blas.h)."""
    fastnn.set_num_threads(threads)
    time, _, gates, _ = family
    H = 256 if gates == 1 else 128
    check_time_parity(rng, dtype, time, gates, N=40, T=4, D=6, H=H, stateful=True, scale=0.1)


def test_large_steps_match_reference(rng, dtype, family):
    """8 rows x gates*H x H per step: past the size where the per-step GEMMs split over threads
    and read the weights transposed in place."""
    time, _, gates, _ = family
    H = int(np.ceil(np.sqrt(2**20 / gates)))
    check_time_parity(rng, dtype, time, gates, N=8, T=3, D=5, H=H, stateful=True, scale=0.05)


def test_stateful_matches_reference(rng, dtype, family):
    time, _, gates, _ = family
    check_time_parity(rng, dtype, time, gates, 3, 4, 5, 6, stateful=True)


@pytest.mark.parametrize("N,D,H", [(3, 4, 6), (1, 5, 2)])
def test_single_step_matches_reference(rng, dtype, family, N, D, H):
    _, step, gates, states = family
    check_step_parity(rng, dtype, step, gates, states, N, D, H)


def test_numerical_gradients(rng, family):
    check_time_gradients(rng, family[0], family[2])


def test_edge_cases(rng, dtype, family):
    check_edge_cases(rng, dtype, family[0], family[2])


def test_nan_propagates(rng, family):
    check_nan_propagates(rng, family[0], family[2])


def test_bad_input(rng, family):
    check_bad_input(rng, family[0], family[2])


def test_state_handling(rng, family):
    time, _, gates, states = family
    check_stateful_and_reset(rng, time, gates, states)


def test_saturated_gates_match_reference(rng, dtype, family):
    # large weights drive the sigmoids and tanh far into saturation
    check_time_parity(rng, dtype, family[0], family[2], 3, 6, 4, 5, scale=20.0)


def test_concurrent_calls_from_threads(rng, family):
    check_concurrent_calls(rng, family[0], family[2])
