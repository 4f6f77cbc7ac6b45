"""Time attention (every decoder step at once, batched BLAS GEMMs) against the book's per-step
TimeAttention in fastnn.reference.attention_layer."""

import numpy as np
import pytest

import fastnn
from fastnn import _device, ops
from fastnn.reference.attention_layer import TimeAttention
from conftest import UNDER_ASAN, gradcheck

# float32: 1e-5 relative (to the largest magnitude); float64: 1e-10.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


def _close(actual, expected, dtype):
    assert actual.shape == expected.shape and actual.dtype == dtype
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


@pytest.mark.parametrize("N,Te,Td,H", [(3, 7, 5, 8), (1, 1, 1, 1), (2, 29, 11, 16),
                                       (10, 4, 6, 3), (0, 3, 2, 4), (2, 3, 0, 4)])
def test_matches_the_books_time_attention(rng, dtype, N, Te, Td, H):
    hs_enc = rng.standard_normal((N, Te, H)).astype(dtype)
    hs_dec = rng.standard_normal((N, Td, H)).astype(dtype)
    dout = rng.standard_normal((N, Td, H)).astype(dtype)
    r = TimeAttention()
    expected = r.forward(hs_enc, hs_dec)
    out, a = ops.attention_forward(hs_enc, hs_dec)
    _close(out, expected, dtype)
    if Td:
        _close(a, np.stack(r.attention_weights, axis=1), dtype)
    dhs_enc, dhs_dec = ops.attention_backward(hs_enc, hs_dec, a, dout)
    if Td:
        r_enc, r_dec = r.backward(dout)
        _close(dhs_enc, r_enc, dtype)
        _close(dhs_dec, r_dec, dtype)
    else:  # no decoder step: nothing flows back
        _close(dhs_enc, np.zeros_like(hs_enc), dtype)


def test_large_batch_threads_agree(rng, restore_threads):
    hs_enc = rng.standard_normal((64, 20, 32)).astype(np.float32)
    hs_dec = rng.standard_normal((64, 15, 32)).astype(np.float32)
    dout = rng.standard_normal((64, 15, 32)).astype(np.float32)
    r = TimeAttention()
    expected = r.forward(hs_enc, hs_dec)
    r_enc, r_dec = r.backward(dout)
    for n in (1, 2):
        fastnn.set_num_threads(n)
        out, a = ops.attention_forward(hs_enc, hs_dec)
        dhs_enc, dhs_dec = ops.attention_backward(hs_enc, hs_dec, a, dout)
        _close(out, expected, np.dtype(np.float32))
        _close(dhs_enc, r_enc, np.dtype(np.float32))
        _close(dhs_dec, r_dec, np.dtype(np.float32))


def test_gradcheck(rng):
    hs_enc = rng.standard_normal((2, 4, 3))
    hs_dec = rng.standard_normal((2, 3, 3))
    d = rng.standard_normal((2, 3, 3))

    def loss():
        return float(np.sum(ops.attention_forward(hs_enc, hs_dec)[0] * d))

    _, a = ops.attention_forward(hs_enc, hs_dec)
    dhs_enc, dhs_dec = ops.attention_backward(hs_enc, hs_dec, a, d)
    gradcheck(loss, hs_enc, dhs_enc)
    gradcheck(loss, hs_dec, dhs_dec)


def test_promotion_and_rows_sum_to_one(rng):
    hs_enc = rng.standard_normal((2, 5, 4)).astype(np.float32)
    hs_dec = rng.standard_normal((2, 3, 4))
    out, a = ops.attention_forward(hs_enc, hs_dec)
    assert out.dtype == a.dtype == np.float64
    np.testing.assert_allclose(a.sum(axis=2), 1.0, rtol=1e-12)


@pytest.mark.parametrize("enc,dec,msg", [
    ((2, 5), (2, 3, 4), r"hs_enc must be 3-D \(N, Te, H\) and hs_dec 3-D \(N, Td, H\) "
                        r"\(hs_enc.shape=\(2, 5\), hs_dec.shape=\(2, 3, 4\)\)"),
    ((2, 5, 4), (3, 3, 4), r"hs_enc has a batch of 2 but hs_dec of 3"),
    ((2, 5, 4), (2, 3, 6), r"hs_enc has hidden size 4 but hs_dec has 6"),
])
def test_bad_shapes_raise_value_error(enc, dec, msg):
    with pytest.raises(ValueError, match="TimeAttention: " + msg):
        ops.attention_forward(np.zeros(enc), np.zeros(dec))


def test_backward_bad_shapes():
    e, d = np.zeros((2, 5, 4)), np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"TimeAttention.backward: dout has shape \(2, 3, 5\) "
                                         r"but the forward output had shape \(2, 3, 4\)"):
        ops.attention_backward(e, d, np.zeros((2, 3, 5)), np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match=r"a has shape \(2, 5, 3\) but the forward gave "
                                         r"\(2, 3, 5\)"):
        ops.attention_backward(e, d, np.zeros((2, 5, 3)), d)


class _DeviceLike(np.ndarray):
    """A NumPy array that says it lives on a GPU (__cuda_array_interface__)."""

    @property
    def __cuda_array_interface__(self):
        return {}


def test_device_path_is_the_same_computation(rng, monkeypatch):
    """Device arrays run the same computation as array code (matmul, softmax) on their own
    module; here NumPy stands in for CuPy."""
    monkeypatch.setattr(_device, "cupy_for", lambda layer: np)
    hs_enc = rng.standard_normal((3, 6, 4))
    hs_dec = rng.standard_normal((3, 5, 4))
    dout = rng.standard_normal((3, 5, 4))
    dev = [a.view(_DeviceLike) for a in (hs_enc, hs_dec, dout)]
    out, a = ops.attention_forward(*dev[:2])
    out_h, a_h = ops.attention_forward(hs_enc, hs_dec)
    np.testing.assert_allclose(out, out_h, rtol=1e-12)
    np.testing.assert_allclose(a, a_h, rtol=1e-12)
    for got, want in zip(ops.attention_backward(dev[0], dev[1], a, dev[2]),
                         ops.attention_backward(hs_enc, hs_dec, a_h, dout)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(UNDER_ASAN,
                    reason="under ASan an address-space limit exercises ASan's own allocator "
                           "and shadow mappings, not fastnn's allocation")
def test_out_of_memory_in_backward_is_a_memory_error():
    """The per-thread scratch is taken before the parallel region: a failed allocation is a
    MemoryError, not the end of the process."""
    from conftest import run_python
    r = run_python("""
        from fastnn import ops
        fastnn.set_num_threads(2)
        enc = np.random.rand(2, 3000, 1); dec = np.random.rand(2, 3000, 1)
        out, a = ops.attention_forward(enc, dec)
        dout = np.random.rand(2, 3000, 1)
        import resource, os
        held = int(open('/proc/self/statm').read().split()[0]) * os.sysconf('SC_PAGE_SIZE')
        resource.setrlimit(resource.RLIMIT_AS, (held + (40 << 20), resource.RLIM_INFINITY))
        try:
            ops.attention_backward(enc, dec, a, dout)
            print("no error")
        except MemoryError:
            print("MemoryError")
        """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "MemoryError"
