"""The benchmark harness's logic, without timing anything: which libraries each contender's
process loads, the order of the processes, the rows and the JSON a run writes."""

import json
import os
import sys

import numpy as np
import pytest

# The fastnn under test is imported before the repository joins the path.
import fastnn  # noqa: F401,E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.append(ROOT)  # after site-packages: an installed fastnn stays the one imported

from benchmarks import CHILD_MARKER, weights  # noqa: E402
from benchmarks import bench_dense, runner  # noqa: E402
from benchmarks.harness import Workload, row, table  # noqa: E402

HAVE_TORCH = runner.importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed")


# ------------------------------------------------------------------ processes and their order

def test_each_contender_gets_its_own_process_by_default():
    assert runner.groups_for(["torch", "fastnn", "reference"]) == \
        [["fastnn"], ["reference"], ["torch"]]
    assert runner.groups_for(["fastnn", "reference", "torch"], "pair") == \
        [["fastnn", "reference"], ["torch"]]
    assert runner.groups_for(["fastnn", "torch"], "pair") == [["fastnn"], ["torch"]]
    assert runner.groups_for(["fastnn", "reference", "torch"], "none") == \
        [["fastnn", "reference", "torch"]]
    with pytest.raises(ValueError):
        runner.groups_for(["fastnn"], "threads")


def test_processes_alternate_round_by_round():
    groups = runner.groups_for(["fastnn", "reference", "torch"])
    order = ["+".join(g) for _, g in runner.schedule(groups, 3)]
    assert order == ["fastnn", "reference", "torch"] * 3
    assert [r for r, _ in runner.schedule(groups, 2)] == [0, 0, 0, 1, 1, 1]


def test_child_environment_is_the_users(monkeypatch):
    monkeypatch.setattr(runner, "ORIGINAL_ENV", {"PATH": "/bin", "PYTHONPATH": "/extra"})
    env = runner.child_env(["torch"])
    assert env[CHILD_MARKER] == "1"
    assert "OMP_WAIT_POLICY" not in env and "OPENBLAS_THREAD_TIMEOUT" not in env
    paths = env["PYTHONPATH"].split(os.pathsep)
    assert ROOT in paths and paths[-1] == "/extra"
    # The fastnn this process imports comes first, so a source tree cannot hide it.
    assert paths[0] == os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    # Interleaved contenders: NumPy's BLAS threads must not spin into the next one's time.
    assert runner.child_env(["fastnn", "reference"])["OPENBLAS_THREAD_TIMEOUT"] == "4"


def test_isolation_check():
    runner.check_isolation(["torch"], {"fastnn_modules": [], "torch_loaded": True})
    runner.check_isolation(["reference"], {"fastnn_modules": ["fastnn"], "torch_loaded": False})
    with pytest.raises(runner.IsolationError, match="fastnn.reference"):
        runner.check_isolation(["torch"], {"fastnn_modules": ["fastnn", "fastnn.reference"],
                                           "torch_loaded": True})
    with pytest.raises(runner.IsolationError, match="torch"):
        runner.check_isolation(["fastnn"], {"fastnn_modules": ["fastnn"], "torch_loaded": True})


@needs_torch
def test_torch_process_imports_nothing_of_fastnn():
    """A torch process builds every torch contender (weights, batches, the epoch aside)
    without loading fastnn or fastnn.reference."""
    out = runner.spawn(["build", "--contenders", "torch", "--threads", 1, "--quick"], ["torch"])
    assert out["info"]["fastnn_modules"] == []
    assert out["info"]["torch_loaded"] and out["info"]["torch"]["threads"] == 1
    built = {b.rsplit(":", 1)[0] for b in out["built"]}
    assert {"bench_train:simple", "bench_train:simple_f64", "bench_conv:conv_simple_f64",
            "bench_rnn:lstm_large_f64", "bench_basenn:lenet"} <= built
    assert "OMP_WAIT_POLICY" not in out["info"]["env"]


def test_fastnn_and_reference_processes_import_no_torch():
    for contender in ("fastnn", "reference"):
        out = runner.spawn(["build", "--contenders", contender, "--threads", 1, "--quick",
                            "--suites", "bench_train", "bench_rnn", "bench_dense"], [contender])
        assert not out["info"]["torch_loaded"], contender
        assert "torch" not in out["info"]
        assert any(b.endswith(":" + contender) for b in out["built"])
    assert out["info"]["numpy_blas"]  # NumPy's BLAS is recorded with the reference's process


# ------------------------------------------------------------------ rows from the processes

def _fake_spawner(calls, times_ms):
    """A spawner that records its calls and answers like a child, without running anything."""
    seen = []

    def spawner(args, group):
        calls.append("+".join(group))
        seen.append((args[args.index("--workload") + 1], calls[-1]))
        contenders = args[args.index("--contenders") + 1].split(",")
        n = seen.count(seen[-1])
        info = {"fastnn_modules": ["fastnn"] if {"fastnn", "reference"} & set(contenders) else [],
                "torch_loaded": "torch" in contenders, "numpy": np.__version__}
        return {"median": {c: times_ms[c][n - 1] / 1e3 for c in contenders}, "info": info}
    return spawner


def test_run_workload_alternates_and_reports_median_and_spread():
    w = Workload("bench_x", "k", "a workload", build=None, flops=2e9, dtype="float64")
    times = {"fastnn": [2.0, 1.0, 3.0], "reference": [10.0, 30.0, 20.0], "torch": [4.0, 6.0, 5.0]}
    calls = []
    r, infos = runner.run_workload(w, False, 2, 3, rates={"sgemm": 100.0, "dgemm": 50.0},
                                   spawner=_fake_spawner(calls, times))
    assert calls == ["fastnn", "reference", "torch"] * 3
    assert r["ms"] == pytest.approx({"fastnn": 2.0, "reference": 20.0, "torch": 5.0})
    assert r["ms_min"]["reference"] == pytest.approx(10.0)
    assert r["ms_max"]["reference"] == pytest.approx(30.0)
    assert r["rounds_ms"]["torch"] == pytest.approx([4.0, 6.0, 5.0])
    assert r["speedup"] == pytest.approx({"reference": 10.0, "torch": 2.5})
    assert r["gflops"] == pytest.approx(1000.0)
    assert r["pct_dgemm"] == pytest.approx(2000.0) and "pct_sgemm" not in r  # float64: dgemm
    assert r["processes"] == ["fastnn", "reference", "torch"] and r["rounds"] == 3
    assert set(infos) == {"fastnn", "reference", "torch"}


def test_run_workload_pair_and_failures():
    w = Workload("bench_x", "k", "w", build=None, contenders=("fastnn", "reference", "torch"),
                 skip_quick=("reference",))
    calls = []
    times = {c: [1.0, 1.0] for c in ("fastnn", "reference", "torch")}
    r, _ = runner.run_workload(w, False, 1, 2, "pair", spawner=_fake_spawner(calls, times))
    assert calls == ["fastnn+reference", "torch"] * 2
    calls.clear()
    r, _ = runner.run_workload(w, True, 1, 2, spawner=_fake_spawner(calls, times))
    assert calls == ["fastnn", "torch"] * 2 and "reference" not in r["ms"]

    def failing(args, group):
        if group == ["torch"]:
            raise runner.ChildError("boom\nRuntimeError: no torch today")
        return _fake_spawner([], times)(args, group)
    calls.clear()
    r, _ = runner.run_workload(w, False, 1, 2, spawner=failing)
    assert "torch" not in r["ms"] and "torch failed: RuntimeError: no torch today" in r["note"]


def test_run_workload_refuses_a_torch_process_that_loaded_fastnn():
    w = Workload("bench_x", "k", "w", build=None)

    def leaky(args, group):
        return {"median": {c: 1.0 for c in group},
                "info": {"fastnn_modules": ["fastnn"], "torch_loaded": "torch" in group}}
    with pytest.raises(runner.IsolationError):
        runner.run_workload(w, False, 1, 1, spawner=leaky)


def test_table_shows_medians_spread_and_the_right_gemm():
    r32 = row("w32", {"fastnn": [0.001, 0.002, 0.003], "torch": [0.004, 0.004, 0.005]},
              flops=1e9, gemm_rate=1000.0)
    r64 = row("w64", {"fastnn": [0.01]}, flops=1e9, gemm_rate=100.0, dtype="float64")
    text = table([r32])
    assert "| w32 | 2.00 (1.00-3.00) | 4.00 (4.00-5.00) | 2.00 |" in text
    assert "% sgemm" in text and "50%" in text
    text = table([r64])
    assert "% dgemm" in text and "100%" in text and "(" not in text.splitlines()[2]


# ------------------------------------------------------------------ the workloads

def test_workloads_include_the_float64_set():
    from benchmarks.child import SUITES, suite_workloads

    keys = {}
    for suite in SUITES:
        for w in suite_workloads(suite):
            assert (suite, w.key) not in keys, w.key
            keys[(suite, w.key)] = w
    f64 = {k for k, w in keys.items() if w.dtype == "float64"}
    assert f64 == {("bench_train", "simple_f64"), ("bench_conv", "conv_simple_f64"),
                   ("bench_conv", "conv_resnet_f64"), ("bench_conv", "conv_first_f64"),
                   ("bench_rnn", "lstm_small_f64"), ("bench_rnn", "lstm_large_f64")}
    assert all(keys[k].flops for k in f64)


def test_initial_weights_are_the_books():
    """benchmarks.weights draws, without fastnn, what the book's constructors draw after
    np.random.seed(0): every contender starts where fastnn's network would."""
    from fastnn.models import DeepConvNet, SimpleConvNet, d2l_mlp

    for build, make in ((SimpleConvNet, weights.simple_convnet), (d2l_mlp, weights.mlp),
                        (DeepConvNet, weights.deep_convnet)):
        for dtype in (np.float32, np.float64):
            np.random.seed(0)
            net = build(dtype=dtype)
            ours = make(dtype)
            assert list(ours) == list(net.params)
            for k in ours:
                assert ours[k].dtype == net.params[k].dtype
                np.testing.assert_array_equal(ours[k], net.params[k], err_msg=k)


def test_lenet_weights_fit_basenn():
    from benchmarks.bench_basenn import lenet

    model = lenet()
    ref = weights.lenet()
    assert {k: v.shape for k, v in model._params().items()} == {k: v.shape for k, v in
                                                                  ref.items()}
    for k, v in model._params().items():
        np.testing.assert_array_equal(v, ref[k])


# ------------------------------------------------------------------ the JSON of a run

def test_main_writes_the_run_record(tmp_path, monkeypatch):
    import benchmarks.__main__ as bm

    calls = []
    times = {c: [1.0, 2.0, 3.0] for c in ("fastnn", "reference", "torch")}
    fake_run = _fake_spawner(calls, times)
    build = {"cpu_level": "avx2", "blas_config": "OpenBLAS 0.3.34 Haswell"}

    def fake_spawn(args, group=("fastnn",), module="benchmarks.child", parse=True):
        if args[0] == "gemm":
            return {"sgemm": 100.0, "dgemm": 50.0, "info": {}}
        out = fake_run(args, group)
        if "fastnn" in group:
            out["info"]["fastnn"] = {"version": "9.9", "threads": 2, "build_info": build}
        if "torch" in group:
            out["info"]["torch"] = {"version": "2.13.0", "threads": 2}
        out["info"]["numpy_blas"] = {"config": "OpenBLAS 0.3.31 Haswell"}
        return out
    monkeypatch.setattr(bm, "spawn", fake_spawn)
    monkeypatch.setattr(runner, "spawn", fake_spawn)
    monkeypatch.setattr(bm, "torch_available", lambda: True)
    out = tmp_path / "run.json"
    bm.main(["--only", "dense", "--threads", "2", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["threads"] == 2 and data["rounds"] == 3 and data["isolation"] == "each"
    assert data["machine"]["cpu"] and data["machine"]["cores"] == os.cpu_count()
    assert len(data["load"]["start"]) == 3 and len(data["load"]["end"]) == 3
    assert [g["when"] for g in data["gemm_gflops"]] == ["start", "after bench_dense"]
    assert data["sgemm_gflops"] == 100.0 and data["dgemm_gflops"] == 50.0
    v = data["versions"]
    assert v["numpy"] == np.__version__ and v["torch"] == "2.13.0" and v["fastnn"] == "9.9"
    assert v["fastnn_cpu_level"] == "avx2" and v["fastnn_blas_config"].startswith("OpenBLAS")
    assert v["numpy_blas"]["config"].startswith("OpenBLAS")
    assert set(data["processes"]) == {"fastnn", "reference", "torch"}
    assert len(data["rows"]) == len(bench_dense.workloads()) == 10
    assert calls[:3] == ["fastnn", "reference", "torch"]
    affine = data["rows"][0]  # 6e9 FLOP in 2 ms, against the sgemm rate
    assert affine["pct_sgemm"] == pytest.approx(100.0 * affine["gflops"] / 100.0)
    for r in data["rows"]:
        assert r["ms"]["fastnn"] == pytest.approx(2.0)
        assert r["ms_min"]["fastnn"] == pytest.approx(1.0) and r["dtype"] == "float32"
        assert isinstance(r["load"], float) and r["processes"] == ["fastnn", "reference", "torch"]


@pytest.fixture
def fake_clock(monkeypatch):
    """(log, fn): harness.time.perf_counter reads a fake clock; fn(name, cost) is a contender
    whose every call logs its name and advances the clock by cost."""
    from benchmarks import harness

    clock, log = [0.0], []

    def fn(name, cost):
        def call():
            log.append(name)
            clock[0] += cost
        return call
    monkeypatch.setattr(harness.time, "perf_counter", lambda: clock[0])
    return log, fn


def test_samples_interleave_and_slow_contenders_stop_early(fake_clock):
    """compare_samples on a fake clock: every call advances it by the contender's cost."""
    from benchmarks import harness

    log, fn = fake_clock
    out = harness.compare_samples({"a": fn("a", 1.0), "b": fn("b", 0.1), "c": fn("c", 0.1)},
                                  samples=4, warmup=2, budget=2.5, max_samples={"c": 2})
    assert log[:6] == ["a", "a", "b", "b", "c", "c"]           # warm-ups, the last one timed
    assert log[6:] == ["a", "b", "c", "b", "c", "a", "a", "b", "b"]  # rotating who goes first
    assert out == {"a": [1.0, 1.0, 1.0], "b": pytest.approx([0.1] * 4),
                   "c": pytest.approx([0.1] * 2)}


def test_mpi_suite_says_when_mpi_is_not_installed(monkeypatch):
    from benchmarks import bench_mpi
    real = bench_mpi.importlib.util.find_spec
    monkeypatch.setattr(bench_mpi.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real(name, *a))
    rows = bench_mpi.run(quick=True)
    assert rows == [{"workload": "MPI suite (bench_mpi)", "suite": "bench_mpi", "ms": {},
                     "note": "MPI not installed (no mpi4py; pip install 'fastnn[mpi]')"}]
    assert "MPI not installed" in table(rows, gemm_columns=False)


def test_warm_up_lasts_warmup_time(fake_clock):
    """A fast contender warms up until warmup_time has passed, a slow one for its warmup calls
    only; the last warm-up call sizes the samples."""
    from benchmarks import harness

    log, fn = fake_clock
    out = harness.compare_samples({"slow": fn("slow", 1.0), "fast": fn("fast", 0.1)},
                                  samples=1, warmup=1, min_time=0.35, warmup_time=0.45)
    assert log == ["slow"] + ["fast"] * 5 + ["slow"] + ["fast"] * 3
    assert out == {"slow": [1.0], "fast": pytest.approx([0.1])}


def test_quick_runs_shorten_the_warm_up():
    from benchmarks.harness import Workload
    w = Workload("suite", "key", "label", build=None, warmup_time=0.25, min_time=0.05)
    assert w.timing(quick=False)[1:4] == (1, 0.25, 0.05)
    assert w.timing(quick=True)[1:4] == (1, 0.05, 0.01)
