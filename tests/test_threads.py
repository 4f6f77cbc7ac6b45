"""Kernels called from several Python threads at once (the GIL is released around compute)
give the single-threaded results, also while another thread changes set_num_threads."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastnn
from fastnn import _C, ops
from conftest import assert_parity, run_forked, run_python


def workloads():
    """name -> function returning a tuple of arrays; each is big enough for the parallel paths
    (and conv has N >= threads, so images go to OpenMP threads calling serial BLAS)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 3, 20, 20))
    W = rng.standard_normal((6, 3, 3, 3))
    b = rng.standard_normal(6)
    dconv = rng.standard_normal((8, 6, 10, 10))
    a = rng.standard_normal((256, 200))
    Wa = rng.standard_normal((200, 100))
    ba = rng.standard_normal(100)
    da = rng.standard_normal((256, 100))
    t = rng.integers(0, 200, 256)
    g, be = rng.standard_normal(200), rng.standard_normal(200)
    dpool = rng.standard_normal((8, 3, 10, 10))

    def batchnorm():
        out, xc, xn, std, rm, rv = ops.batchnorm_forward_train(a, g, be)
        return (out, rm, rv) + ops.batchnorm_backward(out, g, xc, xn, std)

    xs = rng.standard_normal((12, 64, 32))  # (T, N, D), time-major as the kernels take it
    Wx, Wh = rng.standard_normal((32, 128)), rng.standard_normal((32, 128)) * 0.1
    bl = rng.standard_normal(128)

    def lstm():
        hs, cs, gates, _ = ops.lstm_forward(xs, None, None, Wx, Wh, bl)
        return hs, cs

    def gru():
        return ops.gru_forward(xs, None, Wx[:, :96], Wh[:, :96], bl[:96])[:1]

    def adam():
        p, m, v = a.copy(), np.zeros_like(a), np.zeros_like(a)
        for _ in range(3):
            ops.adam_update(p, m, v, da @ Wa.T, 1e-3, 0.9, 0.999, 1e-7)
        return p, m, v

    def maxpool():
        out, arg = ops.maxpool2d_forward(x, 3, 3, 2, 1)
        return out, arg, ops.maxpool2d_backward(dpool, arg, x.shape, 3, 3, 2, 1)

    return {
        "conv": lambda: (ops.conv2d_forward(x, W, b, 2, 1),
                         *ops.conv2d_backward(dconv, x, W, b, 2, 1)),
        "maxpool": maxpool,
        "avgpool": lambda: (ops.avgpool2d_forward(x, 3, 3, 2, 1),
                            ops.avgpool2d_backward(dpool, x.shape, 3, 3, 2, 1)),
        "affine": lambda: (ops.affine_forward(a, Wa, ba), *ops.affine_backward(da, a, Wa)),
        "softmax": lambda: (*ops.softmax_cross_entropy_forward(a, t),
                            ops.softmax_cross_entropy_backward(ops.softmax(a), t)),
        "batchnorm": batchnorm,
        "im2col": lambda: (ops.im2col(x, 3, 3, 1, 1),),
        "lstm": lstm,
        "gru": gru,
        "adam": adam,
        "sigmoid": lambda: (ops.sigmoid_forward(a), ops.tanh_forward(a),
                            *ops.relu_forward(a)),
    }


def expected_results(jobs):
    fastnn.set_num_threads(1)
    return {name: fn() for name, fn in jobs.items()}


def assert_same(results, expected):
    for name, got in results:
        assert len(got) == len(expected[name]), name
        for g, e in zip(got, expected[name]):  # zip(strict=True) needs Python 3.10
            assert_parity(g, e, np.asarray(e).dtype if np.asarray(e).dtype.kind == "f" else None,
                          err_msg=name)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_concurrent_calls_match_single_threaded(restore_threads, threads):
    jobs = workloads()
    expected = expected_results(jobs)
    fastnn.set_num_threads(threads)
    order = list(jobs) * 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(zip(order, pool.map(lambda n: jobs[n](), order)))
    assert_same(results, expected)


def test_set_num_threads_while_others_compute(restore_threads):
    jobs = workloads()
    expected = expected_results(jobs)
    stop = threading.Event()

    def churn():
        k = 0
        while not stop.is_set():
            fastnn.set_num_threads(1 + k % 4)
            k += 1
            time.sleep(0.0005)
        return k

    order = list(jobs) * 6
    with ThreadPoolExecutor(max_workers=5) as pool:
        changer = pool.submit(churn)
        try:
            results = list(zip(order, pool.map(lambda n: jobs[n](), order)))
        finally:
            stop.set()
        assert changer.result() > 0
    assert_same(results, expected)


def test_budget_applies_to_every_python_thread(restore_threads):
    # OpenMP keeps its thread count per OS thread: the budget must still govern new threads.
    fastnn.set_num_threads(1)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(fastnn.get_num_threads()))
    worker.start()
    worker.join()
    assert seen == [1]
    assert fastnn.build_info()["num_threads"] == 1


def test_gil_is_released_during_compute(restore_threads):
    # A pure-Python counter keeps running while another thread is inside a long kernel call.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16, 48, 48))
    W = rng.standard_normal((32, 16, 5, 5))
    fastnn.set_num_threads(1)
    count, stop = [0], threading.Event()

    def counter():
        while not stop.is_set():
            count[0] += 1

    inside = []

    def compute():
        before = count[0]
        ops.conv2d_forward(x, W, None, 1, 2)
        inside.append(count[0] - before)

    c = threading.Thread(target=counter)
    c.start()
    try:
        w = threading.Thread(target=compute)
        w.start()
        w.join()
    finally:
        stop.set()
        c.join()
    assert inside[0] > 1000, f"the counter advanced only {inside[0]} times during the kernel"


def test_forked_child_runs_every_kernel_on_one_thread(restore_threads, tmp_path):
    # GNU OpenMP's thread pool does not survive fork(): a child that started a parallel region
    # would hang. The child of a process that used 2 threads keeps to one, even when asked for 2,
    # and computes what the parent computes.
    import pickle

    jobs = workloads()
    fastnn.set_num_threads(2)
    expected = {name: fn() for name, fn in jobs.items()}
    report = tmp_path / "child.pkl"

    def child():
        fastnn.set_num_threads(2)
        out = (fastnn.get_num_threads(), {name: fn() for name, fn in jobs.items()})
        report.write_bytes(pickle.dumps(out))

    assert run_forked(child, 60, "a forked child running fastnn kernels") == 0
    child_threads, results = pickle.loads(report.read_bytes())
    assert child_threads == 1
    assert fastnn.get_num_threads() == 2  # the parent keeps its budget
    assert_same(results.items(), expected)


# ------------------------------------------------------------------ thread count limits
# Each case runs in a fresh interpreter: before the cap, libgomp segfaulted (100000 threads) or
# called exit() ("Thread creation failed") with no Python exception.
CAP = min(4 * os.cpu_count(), 1024)  # 4 threads per processor, at most 1024


def test_set_num_threads_beyond_the_cap_raises(restore_threads):
    cap = fastnn.build_info()["max_threads"]
    assert cap == CAP
    for n in (cap + 1, 100000):
        with pytest.raises(ValueError, match=f"n must be at most {cap} .*got {n}"):
            fastnn.set_num_threads(n)
        with pytest.raises(ValueError, match=f"n must be at most {cap}"):
            _C.set_num_threads(n)
    assert fastnn.get_num_threads() == fastnn.get_num_threads()  # unchanged and callable
    fastnn.set_num_threads(cap)
    assert fastnn.get_num_threads() == cap


def _relu_checks(n_threads_expr):
    return f"""
        import numpy as np
        from fastnn import layers
        x = np.linspace(-1, 1, 1 << 16)
        assert (layers.Relu().forward(x) == np.maximum(x, 0)).all()
        print("threads", {n_threads_expr})
        """


def test_huge_thread_count_is_refused_not_a_crash():
    proc = run_python("""
        try:
            fastnn.set_num_threads(100000)
        except ValueError as e:
            print("refused:", e)
        """ + _relu_checks("fastnn.get_num_threads()"), seconds=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused: set_num_threads: n must be at most" in proc.stdout


def test_huge_omp_num_threads_at_import_is_clamped():
    cap = CAP
    proc = run_python(_relu_checks("fastnn.get_num_threads()"), seconds=120,
                      env=dict(os.environ, OMP_NUM_THREADS="100000"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"threads {cap}" in proc.stdout
    assert f"OMP_NUM_THREADS=100000 is more than the {cap} threads fastnn allows" in proc.stderr


def test_threads_the_system_cannot_start_raise_runtime_error():
    # 6 MiB of address space to spare: cap - 1 more threads with their stacks (2 MiB or more
    # each) do not fit. The probe in set_num_threads finds that before libgomp would (libgomp
    # calls exit()).
    cap = CAP
    proc = run_python(f"""
        before = fastnn.get_num_threads()
        try:
            fastnn.set_num_threads({cap})
        except RuntimeError as e:
            print("refused:", e)
        print("unchanged:", fastnn.get_num_threads() == before)
        """ + _relu_checks("fastnn.get_num_threads()"), seconds=120, memory_limit=6 << 20,
        env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"refused: set_num_threads: the system cannot start {cap} threads" in proc.stdout
    assert "unchanged: True" in proc.stdout
