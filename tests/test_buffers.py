"""The cache of freed kernel outputs (csrc/core/buffers.h, fastnn.buffer_cache): large outputs
reuse freed memory, live outputs never share it, and results stay those of the reference."""

import os
import pickle
import threading

import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn.reference import layers as ref

from conftest import UNDER_ASAN, assert_parity, run_forked, run_python

# Large enough for the cache: 8x16x32x32 float32 is 512 KiB.
SHAPE = (8, 16, 32, 32)


@pytest.fixture
def cache_limit():
    """Restores the default limit after a test changes it."""
    limit = fastnn.buffer_cache()["limit_bytes"]
    yield limit
    fastnn.buffer_cache(limit_bytes=limit)


def address(a):
    return a.__array_interface__["data"][0]


def test_freed_output_memory_is_reused_with_fresh_values(rng):
    # From an empty cache: blocks of the same size left idle by earlier calls (outputs, the
    # convolution scratch) would otherwise be served first.
    fastnn.release_buffers()
    x1 = rng.standard_normal(SHAPE, dtype=np.float32)
    x2 = rng.standard_normal(SHAPE, dtype=np.float32)
    relu = layers.Relu()
    first = relu.forward(x1)
    where = address(first)
    del first, relu.mask
    second = layers.Relu().forward(x2)
    assert address(second) == where
    np.testing.assert_array_equal(second, ref.Relu().forward(x2))


def test_live_outputs_never_share_memory(rng):
    xs = [rng.standard_normal(SHAPE) for _ in range(4)]
    outs = [layers.Relu().forward(x) for x in xs]
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            assert not np.shares_memory(outs[i], outs[j])
    for x, out in zip(xs, outs):
        np.testing.assert_array_equal(out, np.maximum(x, 0))


def test_reused_memory_gives_reference_results_every_step(rng, dtype):
    # Max pooling's output, int32 argmax and dx, and the conv's gradients all come from the
    # cache from the second step on; stale values from the previous step must not leak in.
    W = rng.standard_normal((6, 16, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    fast = [layers.Convolution(W, b, pad=1), layers.Pooling(2, 2, 2)]
    slow = [ref.Convolution(W, b, pad=1), ref.Pooling(2, 2, 2)]
    for _ in range(3):
        x = rng.standard_normal(SHAPE).astype(dtype)
        y, y_ref = x, x
        for f, s in zip(fast, slow):
            y, y_ref = f.forward(y), s.forward(y_ref)
        assert_parity(y, y_ref, dtype, reduce_len=16 * 9)
        dout = rng.standard_normal(y.shape).astype(dtype)
        d, d_ref = dout, dout
        for f, s in zip(reversed(fast), reversed(slow)):
            d, d_ref = f.backward(d), s.backward(d_ref)
        assert_parity(d, d_ref, dtype, reduce_len=6 * 9)
        assert_parity(fast[0].dW, slow[0].dW, dtype, reduce_len=8 * 32 * 32)


def test_outputs_behave_as_ordinary_arrays(rng, tmp_path):
    out = layers.Relu().forward(rng.standard_normal(SHAPE))
    assert out.flags.c_contiguous and out.flags.writeable and out.flags.aligned
    assert address(out) % 64 == 0
    expected = out.copy()
    assert np.array_equal(pickle.loads(pickle.dumps(out)), expected)
    np.save(tmp_path / "out.npy", out)
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)
    out += 1  # in place, as a user's code may do
    assert np.array_equal(out, expected + 1)


def test_small_outputs_do_not_use_the_cache(rng):
    fastnn.release_buffers()
    small = layers.Relu().forward(rng.standard_normal(10))
    del small
    assert fastnn.buffer_cache()["idle_bytes"] == 0


def test_limit_bounds_idle_memory(rng, cache_limit):
    assert cache_limit == 256 << 20
    info = fastnn.buffer_cache()
    assert info["min_bytes"] == 64 << 10
    nbytes = int(np.prod(SHAPE)) * 8
    outs = [layers.Relu().forward(rng.standard_normal(SHAPE)) for _ in range(3)]
    fastnn.release_buffers()
    del outs
    idle = fastnn.buffer_cache()["idle_bytes"]
    assert 3 * nbytes <= idle < 3 * (nbytes + 8192)
    fastnn.buffer_cache(limit_bytes=idle // 2)
    assert fastnn.buffer_cache()["idle_bytes"] <= idle // 2
    fastnn.buffer_cache(limit_bytes=0)
    assert fastnn.buffer_cache() == {"idle_bytes": 0, "limit_bytes": 0, "min_bytes": 64 << 10}
    out = layers.Relu().forward(-np.ones(SHAPE))
    del out
    assert fastnn.buffer_cache()["idle_bytes"] == 0


def test_release_buffers_frees_every_idle_block(rng):
    out = layers.Relu().forward(rng.standard_normal(SHAPE))
    del out
    assert fastnn.buffer_cache()["idle_bytes"] > 0
    fastnn.release_buffers()
    assert fastnn.buffer_cache()["idle_bytes"] == 0


@pytest.mark.parametrize("limit", [-1, -(2**40)])
def test_negative_limit_is_rejected(limit):
    with pytest.raises(ValueError, match=f"buffer_cache: limit_bytes must be >= 0, got {limit}"):
        fastnn.buffer_cache(limit_bytes=limit)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_kernels_use_the_cache(rng):
    # A Python thread keeps running a recurrent backward (its workspaces come from the cache,
    # with the GIL released) while the main thread forks: every child must still be able to use
    # the cache, so the fork must never copy its lock held by the other thread.
    import fastnn.nn as fnn

    lstm = fnn.LSTM(64, 128)
    x = rng.standard_normal((20, 16, 64)).astype(np.float32)
    dout = rng.standard_normal((20, 16, 128)).astype(np.float32)
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            lstm(x)
            lstm.backward(dout)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(20):
            # the child uses the cache
            code = run_forked(lambda: int(layers.Relu().forward(np.ones(SHAPE)).sum()
                                          != np.prod(SHAPE)),
                              20, "a child forked during kernel calls (the buffer cache)")
            assert code == 0
    finally:
        stop.set()
        worker.join()


@pytest.mark.skipif(UNDER_ASAN, reason="ASan keeps freed memory in its quarantine (resident "
                                        "memory is checked by the plain build's run)")
def test_convolution_scratch_is_returned_to_the_cache():
    # The padded images (and the per-thread dW sums) of Convolution come from the cache and go
    # back to it: release_buffers() gives them to the system. They were once thread_local and
    # kept for good (190 MB after one 1x16x1024x1024 convolution with pad 100). RSS measured in
    # a fresh interpreter; malloc_trim(0) hands back what glibc keeps of freed memory, so what
    # remains is what fastnn still holds.
    proc = run_python("""
        import ctypes, os
        from fastnn import layers
        libc = ctypes.CDLL("libc.so.6")
        page = os.sysconf("SC_PAGE_SIZE")

        def rss_mb():
            libc.malloc_trim(0)
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page / 2**20

        fastnn.set_num_threads(2)
        W, b = np.ones((1, 8, 3, 3), np.float32), np.ones(1, np.float32)
        # Warm up threads, BLAS and the small buffers with the same layer and no pad.
        warm = layers.Convolution(W, b)
        warm.backward(warm.forward(np.ones((2, 8, 64, 64), np.float32)))
        del warm
        fastnn.release_buffers()
        before = rss_mb()
        x = np.ones((2, 8, 512, 512), np.float32)   # each padded image: 8 x 912 x 912 = 27 MB
        conv = layers.Convolution(W, b, pad=200)
        out = conv.forward(x)
        conv.backward(out)
        del conv, out, x
        idle = fastnn.buffer_cache()["idle_bytes"] / 2**20
        kept = rss_mb() - before
        fastnn.release_buffers()
        after = rss_mb() - before
        print(f"idle {idle:.1f} kept {kept:.1f} after {after:.1f}")
        """, seconds=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    idle, kept, after = (float(v) for v in proc.stdout.split()[1::2])
    assert idle >= 27, proc.stdout        # the scratch went back to the cache ...
    assert kept <= 256 + 16, proc.stdout  # ... which holds at most its limit ...
    assert after < 8, proc.stdout         # ... and release_buffers() frees it
