"""fastnn.distributed: data-parallel training over MPI.

Without MPI: init is a no-op, the sharder's arithmetic, packing gradients of mixed dtypes and
strides into one buffer. With mpi4py and an mpiexec (the ``mpi`` extra): ``mpiexec -n 2`` runs
of tests/mpi_worker.py give the parameters of one process with the doubled batch, keep the ranks
identical after every step, and end the whole job, with the reason, when a rank fails or hangs.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import distributed as dist

HERE = Path(__file__).resolve().parent
WORKER = HERE / "mpi_worker.py"
FASTNN_PARENT = Path(fastnn.__file__).resolve().parents[1]
MPI_TIMEOUT = 120  # seconds for any one mpiexec run
if str(HERE.parent) not in sys.path:
    sys.path.append(str(HERE.parent))  # after site-packages: the installed fastnn stays first
from benchmarks.bench_mpi import find_mpiexec, launcher_flags  # noqa: E402


def mpi_missing():
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install '.[mpi]')"
    if find_mpiexec() is None:
        return "no mpiexec next to the Python or on PATH (pip install '.[mpi]')"
    return None


needs_mpi = pytest.mark.skipif(mpi_missing() is not None, reason=str(mpi_missing()))


def _env(extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FASTNN_PARENT)] + [p for p in
                                                                [env.get("PYTHONPATH")] if p])
    env["OMP_NUM_THREADS"] = "1"
    for k in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        env.pop(k, None)
    env.update(extra or {})
    return env


# Children start outside the repository: `python -c` puts the working folder first on
# sys.path, where the source tree's fastnn/ (no _C when fastnn is installed) would shadow the
# fastnn under test.
NEUTRAL_CWD = tempfile.gettempdir()


def mpirun(n, args, env=None, timeout=MPI_TIMEOUT, cwd=None):
    """``mpiexec -n n python args...``; (completed process, seconds)."""
    cmd = [find_mpiexec()] + launcher_flags() + ["-n", str(n), sys.executable]
    cmd += [str(a) for a in args]
    start = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(env), timeout=timeout,
                         cwd=cwd or NEUTRAL_CWD)
    return res, time.monotonic() - start


def plain(args, env=None, cwd=None):
    res = subprocess.run([sys.executable] + [str(a) for a in args], capture_output=True,
                         text=True, env=_env(env), timeout=MPI_TIMEOUT, cwd=cwd or NEUTRAL_CWD)
    assert res.returncode == 0, res.stderr
    return res


# ------------------------------------------------------------------ without MPI


def test_init_is_a_noop_in_a_plain_process():
    assert dist.init() == (0, 1)
    assert (dist.rank(), dist.size(), dist.is_root(), dist.is_initialized()) == (0, 1, True,
                                                                                   False)
    g = {"W": np.ones((2, 3)), "b": np.full(3, 2.0)}
    red = dist.allreduce_grads(g, count=5, values=(1.5, 2.0))
    assert red.count == 5 and red.values.tolist() == [1.5, 2.0]
    np.testing.assert_array_equal(g["W"], np.ones((2, 3)))
    p = [np.arange(3.0)]
    assert dist.broadcast_params(p) is p
    assert dist.allreduce_sum([1, 2]).tolist() == [1.0, 2.0]
    assert dist.broadcast_object({"a": 1}) == {"a": 1}
    info = fastnn.build_info()["distributed"]
    assert info["size"] == 1 and info["initialized"] is False
    assert info["mpi4py"] == (importlib.util.find_spec("mpi4py") is not None)


def test_init_outside_mpiexec_does_not_start_mpi():
    # No launcher variables: mpi4py is not even imported.
    code = ("import sys; from fastnn import distributed as d; print(d.init()); "
            "print('mpi4py.MPI' in sys.modules)")
    out = plain(["-c", code]).stdout.split()
    assert out == ["(0,", "1)", "False"]


def test_init_under_mpiexec_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setattr(dist, "_S", dist._State())
    monkeypatch.setattr(dist, "_mpi4py_available", lambda: False)
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("PMI_RANK", "1")
    with pytest.raises(RuntimeError, match=r"started by mpiexec with 2 processes but mpi4py is "
                       r"not installed; install it with: pip install 'fastnn\[mpi\]'"):
        dist.init()
    monkeypatch.setenv("FASTNN_DISTRIBUTED", "0")   # independent processes: no MPI wanted
    assert dist.init() == (0, 1)


def test_bad_timeout_setting_is_reported_under_mpiexec(monkeypatch):
    monkeypatch.setattr(dist, "_S", dist._State())
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("FASTNN_MPI_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="FASTNN_MPI_TIMEOUT must be a number of seconds, "
                       "got 'soon'"):
        dist.init()


@pytest.mark.parametrize("n,size", [(10, 3), (2, 4), (0, 2), (7, 1), (100, 7)])
def test_split_covers_the_range_in_order(n, size):
    parts = [dist.split(n, r, size) for r in range(size)]
    got = np.concatenate([np.arange(n)[s] for s in parts])
    np.testing.assert_array_equal(got, np.arange(n))
    lengths = [s.stop - s.start for s in parts]
    assert max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize("size,batch", [(2, 16), (3, 10), (4, 5)])
def test_sharder_union_of_ranks_is_the_one_process_batch(size, batch):
    order = np.random.default_rng(0).permutation(83)
    sharders = [dist.Sharder(batch, r, size) for r in range(size)]
    steps = [list(s.batches(order)) for s in sharders]
    assert all(len(st) == -(-83 // batch) for st in steps)
    for i in range(len(steps[0])):
        union = np.concatenate([st[i] for st in steps])
        np.testing.assert_array_equal(union, order[i * batch:(i + 1) * batch])
    with pytest.raises(ValueError, match="global_batch_size must be >= 1"):
        dist.Sharder(0)


def test_pack_and_unpack_mixed_dtypes_and_strides():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 6)).astype(np.float32)[:, ::2]     # not contiguous
    b = rng.standard_normal((3, 2, 2)).transpose(2, 0, 1)          # float64, transposed
    c = np.float32(rng.standard_normal(5))
    buf = dist.pack([a, b, c], extra=2)
    assert buf.dtype == np.float64 and buf.flags.c_contiguous
    assert buf.size == a.size + b.size + c.size + 2
    np.testing.assert_array_equal(buf[:a.size], a.ravel())
    np.testing.assert_array_equal(buf[a.size:a.size + b.size], b.ravel())
    # one buffer reused when it fits
    again = dist.pack([a, b, c], out=buf, extra=2)
    assert again is buf
    wa, wb, wc = np.zeros_like(a), np.zeros((2, 3, 2)), np.zeros(5, np.float32)
    dist.unpack(buf * 2, [wa, wb, wc])
    np.testing.assert_array_equal(wa, a * 2)
    np.testing.assert_array_equal(wb, b * 2)
    assert wc.dtype == np.float32
    np.testing.assert_array_equal(wc, c * 2)
    # scaled on the way in and out (the weighting of allreduce_grads), in one pass each
    scaled = dist.pack([a, c], scale=3.0)
    np.testing.assert_allclose(scaled, np.concatenate([a.ravel(), c]) * 3.0, rtol=1e-7)
    dist.unpack(scaled, [wa, wc], scale=0.5)
    np.testing.assert_allclose(wa, a * 1.5, rtol=1e-6)
    np.testing.assert_allclose(wc, c * 1.5, rtol=1e-6)
    assert dist.pack([np.ones(3, np.float32)]).dtype == np.float32
    assert dist.pack([np.ones(3, np.float16)]).dtype == np.float32


def test_trainer_global_batch_without_mpi():
    from fastnn.models import MultiLayerNet
    from fastnn.trainer import Trainer
    np.random.seed(0)
    net = MultiLayerNet(4, [5], 3)
    x, t = np.random.randn(20, 4), np.random.randint(0, 3, 20)
    tr = Trainer(net, x, t, x, t, epochs=1, mini_batch_size=3, global_batch_size=8,
                 verbose=False)
    assert (tr.batch_size, tr.iter_per_epoch) == (8, 3)


# ------------------------------------------------------------------ mpiexec -n 2


def _load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@needs_mpi
@pytest.mark.parametrize("model,dtype,batch,steps,rtol", [
    ("multilayer", "float64", 8, 7, 1e-10),       # crosses an epoch: 83 = 5 x 16 + 3
    ("multilayer", "float64", 41, 3, 1e-10),      # the last batch of 1 leaves rank 1 empty
    ("simple_convnet", "float64", 8, 6, 1e-10),
    ("multilayer", "float32", 8, 6, 1e-4),
])
def test_two_ranks_train_like_one_process_with_twice_the_batch(tmp_path, model, dtype, batch,
                                                                steps, rtol):
    two, one = tmp_path / "two.npz", tmp_path / "one.npz"
    res, _ = mpirun(2, [WORKER, "train", model, dtype, batch, steps, two])
    assert res.returncode == 0, res.stderr
    plain([WORKER, "train", model, dtype, 2 * batch, steps, one])
    a, b = _load(two), _load(one)
    assert a["size"][0] == 2 and b["size"][0] == 1
    keys = [k for k in b if k.startswith("param_")]
    assert keys and sorted(keys) == sorted(k for k in a if k.startswith("param_"))
    for k in keys:
        assert a[k].dtype == np.dtype(dtype)
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=rtol, err_msg=k)
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=rtol)
    assert len(a["loss"]) == steps
    np.testing.assert_allclose(a["train_acc"], b["train_acc"])   # split evaluation, reduced
    np.testing.assert_allclose(a["acc"], b["acc"])
    # the parameters moved: the comparison is not between two untrained networks
    np.random.seed(3)
    from mpi_worker import build
    net, _ = build(model, np.dtype(dtype))
    assert not np.allclose(net.params["W1"], b["param_W1"])


@needs_mpi
@pytest.mark.parametrize("kind,batch", [("trainer", 15), ("rnnlm", 2)])
def test_vol2_trainers_two_ranks_train_like_one_process(tmp_path, kind, batch):
    two, one = tmp_path / "two.npz", tmp_path / "one.npz"
    res, _ = mpirun(2, [WORKER, "dlfs2", kind, batch, two])
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("| epoch 1 |") == plain([WORKER, "dlfs2", kind, 2 * batch, one]) \
        .stdout.count("| epoch 1 |") > 0                  # rank 0 alone prints
    a, b = _load(two), _load(one)
    assert a["size"][0] == 2 and b["size"][0] == 1
    np.testing.assert_allclose(a["history"], b["history"], rtol=1e-5)
    keys = [k for k in b if k.startswith("param_")]
    for k in keys:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


@needs_mpi
def test_a_nan_loss_on_one_rank_is_reduced_not_a_message_size_error():
    res, _ = mpirun(2, [WORKER, "nan_loss"])
    assert res.returncode == 0, res.stderr
    # the ranks' lines may interleave in the shared pipe: read them by pattern
    got = sorted(re.findall(r"rank (\d) W (\[[^\]]*\]) count ([\d.]+) loss (nan|[-\d.e+]+)",
                             res.stdout))
    assert got == [("0", "[1.5, 1.5, 1.5, 1.5]", "4.0", "nan"),
                   ("1", "[1.5, 1.5, 1.5, 1.5]", "4.0", "nan")], res.stdout


@needs_mpi
def test_basenn_two_ranks_train_like_one_process(tmp_path):
    two, one = tmp_path / "two.npz", tmp_path / "one.npz"
    res, _ = mpirun(2, [WORKER, "basenn", 6, 3, two])
    assert res.returncode == 0, res.stderr
    plain([WORKER, "basenn", 12, 3, one])
    a, b = _load(two), _load(one)
    for k in b:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=1e-12, err_msg=k)


@needs_mpi
def test_a_rank_that_raises_ends_the_job_on_every_rank(tmp_path):
    res, took = mpirun(2, [WORKER, "fail"], env={"FASTNN_MPI_TIMEOUT": "60"})
    assert res.returncode != 0
    assert "rank 1 of 2: failed; aborting all 2 ranks" in res.stderr
    assert "RuntimeError: injected failure on rank 1" in res.stderr
    assert "finished without noticing" not in res.stdout
    assert took < 60   # long before the watchdog's timeout: the abort ended rank 0


@needs_mpi
def test_a_hung_rank_is_caught_by_the_collective_timeout(tmp_path):
    res, took = mpirun(2, [WORKER, "hang"], env={"FASTNN_MPI_TIMEOUT": "3"})
    assert res.returncode != 0
    assert "rank 0 of 2: waited more than 3 s in allreduce_grads" in res.stderr
    assert "finished without noticing" not in res.stdout
    assert took < 60


@needs_mpi
def test_mismatched_parameter_shapes_are_reported_at_start(tmp_path):
    res, took = mpirun(2, [WORKER, "mismatch"], env={"FASTNN_MPI_TIMEOUT": "60"})
    assert res.returncode != 0
    assert ("broadcast_params: the ranks hold different parameters: W1 has shape (36, 20) "
            "against (36, 21) (rank 0 against rank 1)") in res.stderr
    assert took < 60


# ------------------------------------------------------------------ the CLI on 2 ranks


@needs_mpi
def test_cli_train_on_two_ranks_writes_one_run_folder(tmp_path):
    """`mpiexec -n 2 fastnn train --batch-size 25` on synthetic Fashion-MNIST files: one run
    folder, written by rank 0, with the accuracy and parameters of one process with batch 50;
    `fastnn evaluate` on it agrees with the recorded accuracy."""
    from idxfiles import write_dataset
    from fastnn.models import load_model
    write_dataset(tmp_path / "data" / "fashion-mnist", 400, 100)
    (tmp_path / "home").mkdir()
    env = {"FASTNN_DATA": str(tmp_path / "data"), "HOME": str(tmp_path / "home")}
    common = ["--threads", "1", "train", "--model", "simple_convnet", "--epochs", "2",
              "--dtype", "float64", "--optimizer", "adam", "--lr", "0.01", "--seed", "3"]
    work = tmp_path / "cwd"
    work.mkdir()
    two, took = mpirun(2, ["-m", "fastnn"] + common + ["--batch-size", "25", "--out", "two"],
                       env=env, cwd=work)
    assert two.returncode == 0, two.stderr
    plain(["-m", "fastnn"] + common + ["--global-batch", "50", "--out", "one"],
          env=env, cwd=work)
    assert sorted(os.listdir(work)) == ["one", "two"]   # no folder from rank 1
    assert sorted(os.listdir(work / "two")) == ["checkpoint.safetensors", "curves.png",
                                                "history.json", "model.safetensors"]
    # only rank 0 printed: one header, one line per epoch
    lines = two.stdout.splitlines()
    assert lines[0].endswith("adam lr=0.01, global batch 50 over 2 ranks, float64, 1 thread")
    assert [ln[:12] for ln in lines if ln.startswith("=== epoch:")] == ["=== epoch:1,",
                                                                        "=== epoch:2,"]
    assert sum("training simple_convnet" in ln for ln in lines) == 1
    h2 = json.loads((work / "two" / "history.json").read_text())
    h1 = json.loads((work / "one" / "history.json").read_text())
    assert h2["status"] == "finished" and h2["settings"]["ranks"] == 2
    assert h2["settings"]["global_batch"] == h1["settings"]["global_batch"] == 50
    assert h2["iterations_done"] == h1["iterations_done"] == 16
    assert h2["final_test_acc"] == h1["final_test_acc"] > 0.5
    assert h2["train_acc"] == h1["train_acc"]
    np.testing.assert_allclose(h2["train_loss"], h1["train_loss"], rtol=1e-9)
    p2 = load_model(work / "two" / "model.safetensors").params
    p1 = load_model(work / "one" / "model.safetensors").params
    for k in p1:
        np.testing.assert_allclose(p2[k], p1[k], rtol=1e-9, atol=1e-12, err_msg=k)
    ev = plain(["-m", "fastnn", "evaluate", "two"], env=env, cwd=work)
    assert ev.stdout.startswith(f"test accuracy: {h2['final_test_acc']:.4f} (100 ")

    # resumed on 2 ranks for a third epoch: rank 0 reads the checkpoint for all
    more, _ = mpirun(2, ["-m", "fastnn", "--threads", "1", "train", "--resume", "two",
                         "--epochs", "3", "--quiet"], env=env, cwd=work)
    assert more.returncode == 0, more.stderr
    assert more.stdout.count("test acc:") == 1
    assert json.loads((work / "two" / "history.json").read_text())["epochs_done"] == 3


@needs_mpi
def test_cli_error_on_two_ranks_ends_the_job(tmp_path):
    env = {"FASTNN_DATA": str(tmp_path / "none"), "HOME": str(tmp_path)}
    (tmp_path / "taken").write_text("a file")
    res, took = mpirun(2, ["-m", "fastnn", "train", "--out", str(tmp_path / "taken")], env=env,
                       cwd=tmp_path)
    # found by rank 0 and sent to all: every rank stops, one message as from one process
    assert res.returncode == 1
    assert res.stderr.strip() == f"fastnn: error: --out {tmp_path / 'taken'}: exists and is " \
        "not a folder"
    assert took < 60


@needs_mpi
def test_a_stop_asked_on_one_rank_stops_all_after_the_same_step():
    res, _ = mpirun(2, [WORKER, "interrupt"], env={"FASTNN_MPI_TIMEOUT": "20"})
    assert res.returncode == 0, res.stderr
    assert sorted(re.findall(r"rank (\d) stopped after step (\d+)", res.stdout)) == \
        [("0", "3"), ("1", "3")]


@needs_mpi
def test_ranks_seeded_alike_draw_different_repeatable_dropout_masks():
    runs = []
    for _ in range(2):
        res, _ = mpirun(2, [WORKER, "streams"])
        assert res.returncode == 0, res.stderr
        # (the ranks' lines may interleave on the shared stdout)
        runs.append(dict(re.findall(r"rank (\d): (\[[^\]]*\])", res.stdout)))
    assert len(runs[0]) == 2 and runs[0] == runs[1]    # repeatable
    assert runs[0]["0"] != runs[0]["1"]                # each rank its own stream
    one = plain([WORKER, "streams"]).stdout.strip()
    assert one == f"rank 0: {runs[0]['0']}"            # rank 0 keeps one process's stream


@needs_mpi
def test_gpu_style_arrays_are_reduced_through_host_memory():
    # CuPy's code path (without a GPU: arrays of a NumPy subclass living in a module "cupy");
    # NCCL and CUDA-aware MPI need a GPU and are not exercised here.
    res, _ = mpirun(2, [WORKER, "fake_cupy"], env={"FASTNN_MPI_TIMEOUT": "30"})
    assert res.returncode == 0, res.stderr
    assert sorted(re.findall(r"rank (\d): ok \((\w+)\)", res.stdout)) == [("0", "host"),
                                                                        ("1", "host")]
