"""Shared test helpers: seeded RNG, dtype fixtures, parity and numerical gradient checks."""

import os

import numpy as np
import pytest

# Relative tolerances per dtype (DESIGN.md convention 11); float32 scales with reduction length.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


@pytest.fixture(scope="module")
def one_kernel_thread():
    """One kernel thread for a module of small workloads: on a busy 2-core machine OpenMP
    wake-ups cost more than they save."""
    import fastnn

    n = fastnn.get_num_threads()
    fastnn.set_num_threads(1)
    yield
    fastnn.set_num_threads(n)


@pytest.fixture
def restore_threads():
    """Gives back the kernel thread count the test found, whatever the test set."""
    import fastnn

    old = fastnn.get_num_threads()
    yield
    fastnn.set_num_threads(old)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """Runs the test at 1 and at 2 kernel threads (the parallel loops and the serial ones)."""
    import fastnn

    old = fastnn.get_num_threads()
    fastnn.set_num_threads(request.param)
    yield request.param
    fastnn.set_num_threads(old)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return np.dtype(request.param)


def _cuda_reason():
    from fastnn import cuda
    return cuda.reason()


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    """The array module a parity test feeds fastnn: NumPy always, CuPy where CUDA can be used
    (fastnn's CUDA build, CuPy and a GPU); the reference always runs on NumPy."""
    if request.param == "numpy":
        return np
    why = _cuda_reason()
    if why:
        pytest.skip(f"no usable CUDA here: {why}")
    import cupy
    return cupy


def to_host(a):
    """A NumPy array of ``a`` (CuPy arrays copied to the host; NumPy arrays that only claim a
    device, as some tests make, pass as they are)."""
    if hasattr(a, "__cuda_array_interface__") and hasattr(a, "get"):
        return a.get()
    return np.asarray(a)


def tolerance(dtype, reduce_len=1):
    """(rtol, atol) for comparing a kernel with the reference after reductions of reduce_len."""
    dtype = np.dtype(dtype)
    rtol = RTOL[dtype] * max(1.0, np.sqrt(reduce_len))
    atol = rtol * (1.0 if dtype == np.float32 else 1e-2)
    return rtol, atol


def assert_parity(actual, expected, dtype=None, reduce_len=1, err_msg=""):
    """Same shape, same dtype (when given) and equal values within the dtype's tolerance;
    ``actual`` may live on a device."""
    actual = to_host(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{err_msg} shape {actual.shape} != {expected.shape}"
    if dtype is not None:
        assert actual.dtype == np.dtype(dtype), f"{err_msg} dtype {actual.dtype} != {dtype}"
    dt = dtype if dtype is not None else actual.dtype
    if np.dtype(dt) not in RTOL:
        np.testing.assert_array_equal(actual, expected, err_msg=err_msg)
        return
    rtol, atol = tolerance(dt, reduce_len)
    scale = max(1.0, float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=err_msg)


def numerical_grad(f, x, h=1e-5):
    """Central differences of scalar f() with respect to array x (modified in place, restored)."""
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + h
        fp = f()
        x[idx] = old - h
        fm = f()
        x[idx] = old
        grad[idx] = (fp - fm) / (2 * h)
        it.iternext()
    return grad


def gradcheck(f, x, analytic, rtol=1e-6, atol=1e-8, h=1e-5):
    """Compare an analytic gradient with central differences of scalar f() over float64 x."""
    assert x.dtype == np.float64, "gradient checks run in float64"
    num = numerical_grad(f, x, h)
    np.testing.assert_allclose(analytic, num, rtol=rtol, atol=atol)


def run_forked(child, seconds, what):
    """Runs child() in a child made by os.fork() and returns its exit code: child()'s return
    value (None: 0), 1 when it raises. The child exits without pytest's teardown; one still
    running after `seconds` is killed and fails the test, naming `what`."""
    import os
    import signal
    import time

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = child() or 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + seconds
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"{what} hung")
        time.sleep(0.01)
    return os.waitstatus_to_exitcode(done[1])


# Under AddressSanitizer (.ci/sanitize.sh preloads its runtime) freed memory waits in ASan's
# quarantine instead of going back to the system, so tests of resident memory cannot hold there.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")


def run_python(code, seconds=120, memory_limit=None, env=None):
    """Runs ``code`` in a fresh interpreter (fastnn importable from this tree) and returns its
    subprocess.CompletedProcess (text stdout/stderr; returncode < 0 names the killing signal).
    memory_limit: bytes of address space (RLIMIT_AS) the child may add to what it holds once
    numpy and fastnn are imported; the limit is set before ``code`` runs. A child still running
    after ``seconds`` fails the test."""
    import os
    import subprocess
    import sys
    import tempfile
    import textwrap

    import fastnn

    prelude = "import numpy as np, fastnn\n"
    if memory_limit is not None:
        prelude += textwrap.dedent(f"""\
            import resource
            with open("/proc/self/statm") as f:
                _limit = int(f.read().split()[0]) * resource.getpagesize() + {int(memory_limit)}
            resource.setrlimit(resource.RLIMIT_AS, (_limit, _limit))
            """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, full_env.get("PYTHONPATH")) if p)
    try:
        # Not from the repository root: `python -c` puts the working directory first on
        # sys.path, where the source tree's fastnn/ (no _C when fastnn is installed) would shadow
        # the one under test.
        return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                              capture_output=True, text=True, env=full_env, timeout=seconds,
                              cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child did not finish in {seconds} s:\n{textwrap.dedent(code)}")


# ---------------------------------------------------------------- hypothesis profiles (fuzzing)
# "ci" (default): bounded and derandomized, so CI is deterministic and fast; "long": many more
# random examples, on demand: HYPOTHESIS_PROFILE=long pytest tests/test_fuzz.py (or pass
# --hypothesis-profile=long, hypothesis' own pytest option).
import os  # noqa: E402
import sys  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

_FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=200, derandomize=True, deadline=None,
                          suppress_health_check=_FUZZ_HEALTH, print_blob=True)
settings.register_profile("long", max_examples=2000, deadline=None,
                          suppress_health_check=_FUZZ_HEALTH, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config):
    try:
        import fastnn
    except Exception as e:  # the tests' own imports report it, one by one
        return f"fastnn does not import: {e!r}"
    return f"fastnn {fastnn.__version__} imported from {os.path.dirname(fastnn.__file__)}"


def pytest_configure(config):
    """With FASTNN_EXPECT_INSTALLED_IN=<dir> (.ci/wheels.sh: the venv's site-packages), the
    suite refuses to run against any other fastnn, e.g. the source tree put on sys.path."""
    where = os.environ.get("FASTNN_EXPECT_INSTALLED_IN")
    if where:
        import fastnn

        found = os.path.realpath(fastnn.__file__)
        if os.path.commonpath([found, os.path.realpath(where)]) != os.path.realpath(where):
            raise pytest.UsageError(f"FASTNN_EXPECT_INSTALLED_IN={where}, but the tests "
                                    f"imported fastnn from {found}")


def pytest_terminal_summary(terminalreporter):
    fuzz = sys.modules.get("test_fuzz")
    if fuzz is not None and fuzz.EXAMPLES:
        counts = dict(fuzz.EXAMPLES)
        comparisons = counts.pop("comparisons", 0)
        terminalreporter.write_line(
            f"fuzz ({settings.default.max_examples} max per test): "
            f"{sum(counts.values())} examples, {comparisons} comparisons with the reference; "
            + ", ".join(f"{k.removeprefix('test_')} {v}" for k, v in sorted(counts.items())))
