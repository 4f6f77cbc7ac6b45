"""fastnn.optim against the book's update rules written out in NumPy here: vol. 1's with dicts
of parameters, vol. 2's with lists (they differ only in Nesterov)."""

import numpy as np
import pytest

from fastnn import optim
from conftest import assert_parity


class RefOptimizer:
    """The book's update rules in plain NumPy, one instance per optimizer name."""

    def __init__(self, name, **hp):
        self.name, self.hp, self.state, self.iter = name, hp, {}, 0

    def update(self, params, grads):
        hp, st = self.hp, self.state
        self.iter += 1
        vol2 = isinstance(params, list)
        for k in (range(len(params)) if vol2 else params):
            p, g = params[k], grads[k]
            if self.name == "SGD":
                p -= hp["lr"] * g
            elif self.name == "Momentum":
                v = st.setdefault(k, np.zeros_like(p))
                v[...] = hp["momentum"] * v - hp["lr"] * g
                p += v
            elif self.name == "Nesterov" and not vol2:
                v = st.setdefault(k, np.zeros_like(p))
                p += hp["momentum"] ** 2 * v
                p -= (1 + hp["momentum"]) * hp["lr"] * g
                v *= hp["momentum"]
                v -= hp["lr"] * g
            elif self.name == "Nesterov":
                v = st.setdefault(k, np.zeros_like(p))
                v *= hp["momentum"]
                v -= hp["lr"] * g
                p += hp["momentum"] ** 2 * v
                p -= (1 + hp["momentum"]) * hp["lr"] * g
            elif self.name == "AdaGrad":
                h = st.setdefault(k, np.zeros_like(p))
                h += g * g
                p -= hp["lr"] * g / (np.sqrt(h) + 1e-7)
            elif self.name == "RMSprop":
                h = st.setdefault(k, np.zeros_like(p))
                h *= hp["decay_rate"]
                h += (1 - hp["decay_rate"]) * g * g
                p -= hp["lr"] * g / (np.sqrt(h) + 1e-7)
            elif self.name == "Adam":
                b1, b2 = hp["beta1"], hp["beta2"]
                lr_t = hp["lr"] * np.sqrt(1 - b2 ** self.iter) / (1 - b1 ** self.iter)
                m = st.setdefault((k, "m"), np.zeros_like(p))
                v = st.setdefault((k, "v"), np.zeros_like(p))
                m += (1 - b1) * (g - m)
                v += (1 - b2) * (g ** 2 - v)
                p -= lr_t * m / (np.sqrt(v) + 1e-7)


CASES = [
    ("SGD", {"lr": 0.1}),
    ("Momentum", {"lr": 0.05, "momentum": 0.8}),
    ("Nesterov", {"lr": 0.05, "momentum": 0.85}),
    ("AdaGrad", {"lr": 0.1}),
    ("RMSprop", {"lr": 0.01, "decay_rate": 0.95}),
    ("Adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99}),
]


def make_params(rng, dtype):
    # Sizes on both sides of the kernels' parallel threshold.
    shapes = {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (300, 100), "b2": (1,)}
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


@pytest.mark.parametrize("name,hp", CASES, ids=[c[0] for c in CASES])
def test_updates_match_reference_over_several_steps(rng, xp, dtype, name, hp):
    expected = make_params(rng, dtype)
    params = {k: xp.array(v) for k, v in expected.items()}
    held = dict(params)  # layers hold these references; updates must be in place
    opt, ref = getattr(optim, name)(**hp), RefOptimizer(name, **hp)
    for _ in range(5):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in expected.items()}
        opt.update(params, {k: xp.asarray(g) for k, g in grads.items()})
        ref.update(expected, grads)
    for k in params:
        assert params[k] is held[k]
        assert_parity(params[k], expected[k], dtype, reduce_len=25, err_msg=f"{name} {k}")


@pytest.mark.parametrize("name,hp", CASES, ids=[c[0] for c in CASES])
def test_vol2_lists_match_the_vol2_rules(rng, xp, dtype, name, hp):
    expected = list(make_params(rng, dtype).values())
    params = [xp.array(p) for p in expected]
    held = list(params)
    opt, ref = getattr(optim, name)(**hp), RefOptimizer(name, **hp)
    for _ in range(5):
        grads = [rng.standard_normal(p.shape).astype(dtype) for p in expected]
        opt.update(params, [xp.asarray(g) for g in grads])
        ref.update(expected, grads)
    for i, (p, q) in enumerate(zip(params, expected)):
        assert p is held[i]
        assert_parity(p, q, dtype, reduce_len=25, err_msg=f"{name} [{i}]")


def test_vol2_state_is_a_list_per_index(rng):
    params = [rng.standard_normal((3, 4)).astype(np.float32), np.zeros(4, np.float32)]
    a = optim.Adam()
    a.update(params, [np.ones((3, 4), np.float32), np.ones(4, np.float32)])
    assert isinstance(a.m, list) and [m.shape for m in a.v] == [(3, 4), (4,)]
    m = optim.Momentum()
    m.update(params, [np.ones((3, 4)), np.ones(4)])
    assert isinstance(m.v, list) and len(m.v) == 2


def test_vol1_and_vol2_nesterov_differ_from_the_second_step(rng):
    p = rng.standard_normal(5)
    g1, g2 = rng.standard_normal(5), rng.standard_normal(5)
    d, li = {"W": p.copy()}, [p.copy()]
    n1, n2 = optim.Nesterov(), optim.Nesterov()
    n1.update(d, {"W": g1})
    n2.update(li, [g1])
    n1.update(d, {"W": g2})
    n2.update(li, [g2])
    assert not np.allclose(d["W"], li[0])


def test_list_params_need_list_grads_of_the_same_length(rng):
    params = [rng.standard_normal(3)]
    with pytest.raises(ValueError, match="grads must be a list of the same length"):
        optim.SGD().update(params, [])
    with pytest.raises(ValueError, match="got dict"):
        optim.Adam().update(params, {"W": np.ones(3)})


def test_book_defaults_and_state_attributes(rng):
    assert optim.SGD().lr == 0.01
    m = optim.Momentum()
    assert (m.lr, m.momentum, m.v) == (0.01, 0.9, None)
    n = optim.Nesterov()
    assert (n.lr, n.momentum, n.v) == (0.01, 0.9, None)
    assert (optim.AdaGrad().lr, optim.AdaGrad().h) == (0.01, None)
    r = optim.RMSprop()
    assert (r.lr, r.decay_rate, r.h) == (0.01, 0.99, None)
    a = optim.Adam()
    assert (a.lr, a.beta1, a.beta2, a.iter, a.m, a.v) == (0.001, 0.9, 0.999, 0, None, None)
    p = {"W": rng.standard_normal((3, 4))}
    a.update(p, {"W": np.ones((3, 4))})
    assert a.iter == 1 and a.m["W"].shape == (3, 4) and a.v["W"].dtype == np.float64


@pytest.mark.parametrize("name,hp", CASES, ids=[c[0] for c in CASES])
def test_non_contiguous_params_take_the_numpy_path(rng, name, hp):
    base = rng.standard_normal((6, 8))
    params = {"W": base[:, ::2], "F": np.asfortranarray(rng.standard_normal((5, 3)))}
    expected = {k: v.copy() for k, v in params.items()}
    opt, ref = getattr(optim, name)(**hp), RefOptimizer(name, **hp)
    for _ in range(3):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        opt.update(params, grads)
        ref.update(expected, grads)
    for k in params:
        assert_parity(params[k], expected[k], np.float64)
    assert_parity(base[:, ::2], expected["W"], np.float64)  # the view wrote through


def test_gradient_dtype_follows_the_parameter(rng):
    p = {"W": rng.standard_normal((4, 4)).astype(np.float32)}
    before = p["W"].copy()
    g = rng.standard_normal((4, 4))  # float64 gradient for float32 weights
    optim.SGD(lr=0.5).update(p, {"W": g})
    assert p["W"].dtype == np.float32
    assert_parity(p["W"], before - np.float32(0.5) * g.astype(np.float32), np.float32)


def test_nan_gradient_propagates():
    p = {"W": np.zeros(3)}
    optim.Adam().update(p, {"W": np.array([np.nan, 1.0, 0.0])})
    assert np.isnan(p["W"][0]) and np.isfinite(p["W"][1:]).all()


def test_empty_parameter_is_a_no_op():
    p = {"W": np.zeros((0, 5), dtype=np.float32)}
    optim.RMSprop().update(p, {"W": np.zeros((0, 5), dtype=np.float32)})
    assert p["W"].shape == (0, 5)


@pytest.mark.parametrize("opt", [optim.SGD(), optim.Momentum(), optim.Adam()])
def test_bad_inputs_raise_clear_errors(opt):
    name = type(opt).__name__
    with pytest.raises(TypeError, match=rf"{name}: params\['W'\] has dtype int64"):
        opt.update({"W": np.zeros(3, dtype=np.int64)}, {"W": np.zeros(3)})
    with pytest.raises(ValueError, match=rf"{name}: grads\['W'\] has shape \(4,\) but "
                                         r"params\['W'\] has shape \(3,\)"):
        opt.update({"W": np.zeros(3)}, {"W": np.zeros(4)})
    with pytest.raises(KeyError, match=f"{name}: grads has no entry 'b'"):
        opt.update({"W": np.zeros(3), "b": np.zeros(1)}, {"W": np.zeros(3)})
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        opt.update({"W": ro}, {"W": np.zeros(3)})
    with pytest.raises(TypeError, match="must be a NumPy array"):
        opt.update({"W": [0.0, 1.0]}, {"W": np.zeros(2)})
    with pytest.raises(TypeError, match="complex"):
        opt.update({"W": np.zeros(2)}, {"W": np.zeros(2, dtype=complex)})


def test_failed_update_changes_nothing():
    p = {"a": np.ones(3), "b": np.ones(2)}
    with pytest.raises(ValueError):
        optim.SGD().update(p, {"a": np.ones(3), "b": np.ones(5)})
    np.testing.assert_array_equal(p["a"], np.ones(3))


# ------------------------------------------------------------------ direct _C in-place kernels
# Every array a kernel updates in place must be exactly the array it writes: pybind11 once
# converted a float32, strided or read-only one into a temporary copy and updated that, so the
# caller's array stayed as it was without a word.

def _inexact(dtype=np.float64):
    """(description, array, exception) for 3 elements that a kernel cannot update in place."""
    ro = np.zeros(3, dtype)
    ro.flags.writeable = False
    other = np.float32 if dtype == np.float64 else np.float64
    return [("other float dtype", np.zeros(3, other), TypeError),
            ("int64", np.zeros(3, np.int64), TypeError),
            ("strided view", np.zeros(6, dtype)[::2], ValueError),
            ("big-endian", np.zeros(3, np.dtype(dtype).newbyteorder(">")), TypeError),
            ("read-only", ro, ValueError),
            ("list", [0.0, 0.0, 0.0], TypeError)]


def _kernels(p, s1, s2, g):
    from fastnn import _C

    return {
        "sgd p": lambda: _C.sgd_update(p, g, 0.1),
        "momentum p": lambda: _C.momentum_update(p, s1, g, 0.1, 0.9),
        "momentum v": lambda: _C.momentum_update(s1, p, g, 0.1, 0.9),
        "nesterov v": lambda: _C.nesterov_update(s1, p, g, 0.1, 0.9),
        "adagrad h": lambda: _C.adagrad_update(s1, p, g, 0.1, 1e-7),
        "rmsprop p": lambda: _C.rmsprop_update(p, s1, g, 0.1, 0.99, 1e-7),
        "rmsprop h": lambda: _C.rmsprop_update(s1, p, g, 0.1, 0.99, 1e-7),
        "adam m": lambda: _C.adam_update(s1, p, s2, g, 0.1, 0.9, 0.999, 1e-7),
        "adam v": lambda: _C.adam_update(s1, s2, p, g, 0.1, 0.9, 0.999, 1e-7),
        "relu dx": lambda: _C.relu_backward(g, np.zeros(3, bool), p),
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", sorted(_kernels(*[None] * 4)))
def test_direct_in_place_kernels_refuse_arrays_they_would_copy(dtype, kernel):
    # `p` below stands for the array under test in whichever role the kernel writes.
    for what, bad, exc in _inexact(dtype):
        before = np.array(bad, copy=True)
        s1, s2, g = np.zeros(3, dtype), np.zeros(3, dtype), np.ones(3, dtype)
        if (kernel in ("sgd p", "momentum p", "rmsprop p", "relu dx")
                and what == "other float dtype" and dtype == np.float32):
            continue  # a float64 parameter (or dx) with float32 inputs is a valid call
        with pytest.raises(exc, match="in place|read-only|cannot be cast"):
            _kernels(bad, s1, s2, g)[kernel]()
        np.testing.assert_array_equal(np.asarray(bad), before, err_msg=what)


def test_softmax_backward_out_must_be_the_exact_array():
    from fastnn import _C

    y, t = np.full((2, 3), 1 / 3), np.array([0, 1])
    for what, out, exc in [("float32", np.zeros((2, 3), np.float32), TypeError),
                           ("strided", np.zeros((2, 6))[:, ::2], ValueError)]:
        with pytest.raises(exc, match="out is updated in place"):
            _C.softmax_cross_entropy_backward(y, t, 1.0, None, out, "loss")
    out = np.zeros((2, 3))
    assert _C.softmax_cross_entropy_backward(y, t, 1.0, None, out, "loss") is not None
    np.testing.assert_allclose(out[0], [-2 / 3, 1 / 3, 1 / 3])


@pytest.mark.parametrize("name,hp", CASES, ids=[c[0] for c in CASES])
def test_state_the_kernels_cannot_write_takes_the_numpy_path(rng, name, hp):
    # A contiguous parameter with strided state (e.g. restored from elsewhere) must still see
    # its state evolve: the fused kernel would refuse it, so the update runs in NumPy.
    params = {"W": rng.standard_normal((4, 3))}
    expected = {k: v.copy() for k, v in params.items()}
    opt, ref = getattr(optim, name)(**hp), RefOptimizer(name, **hp)
    grads = {"W": rng.standard_normal((4, 3))}
    opt.update(params, grads)
    ref.update(expected, grads)
    for store in ("v", "h", "m"):
        state = getattr(opt, store, None)
        if state:
            state["W"] = np.asfortranarray(state["W"])
    for _ in range(3):
        grads = {"W": rng.standard_normal((4, 3))}
        opt.update(params, grads)
        ref.update(expected, grads)
    assert_parity(params["W"], expected["W"], np.float64)
