"""The fastnn command end to end (python -m fastnn) on a few hundred synthetic IDX images:
train, stop and resume, evaluate, predict, export, show-filters, and one-line user errors."""

import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import cli
from idxfiles import NAMES, idx_bytes, synthetic, write_dataset, write_gz

# Where the fastnn under test was imported from: the working tree in development, or
# site-packages after `pip install .` (whose source tree has no compiled _C).
FASTNN_PARENT = Path(fastnn.__file__).resolve().parents[1]

# Runs `fastnn` in a child that sends itself SIGINT in the middle of the step that follows
# iteration STOP_AFTER (inside the optimizer update), as a user's Ctrl-C would.
INTERRUPTING_DRIVER = """
import os, signal, sys
from fastnn import cli, trainer
n = int(os.environ["STOP_AFTER"])
real_step = trainer.Trainer.train_step
def step(self):
    if self.current_iter == n:
        real_update = self.optimizer.update
        def update(params, grads):
            os.kill(os.getpid(), signal.SIGINT)
            real_update(params, grads)
            self.optimizer.update = real_update
        self.optimizer.update = update
    real_step(self)
trainer.Trainer.train_step = step
sys.exit(cli.main(sys.argv[1:]))
"""


def _env(env_extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FASTNN_PARENT)] + [p for p in
                                                                [env.get("PYTHONPATH")] if p])
    env.update(env_extra or {})
    return env


def run_cli(*args, env_extra=None, cwd=None, driver=None):
    # `python -m` puts the working directory first on sys.path: never run it from the repo.
    cmd = [sys.executable, "-c", driver] if driver else [sys.executable, "-m", "fastnn"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True,
                          env=_env(env_extra), cwd=cwd or tempfile.gettempdir(), timeout=180)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """$FASTNN_DATA with 400 train / 100 test synthetic images named fashion-mnist, a private
    $HOME, and one training run of simple_convnet."""
    root = tmp_path_factory.mktemp("cli")
    write_dataset(root / "data" / "fashion-mnist", 400, 100)
    (root / "home").mkdir()
    env = {"FASTNN_DATA": str(root / "data"), "HOME": str(root / "home")}
    out = root / "run"
    res = run_cli("--threads", "1", "train", "--model", "simple_convnet", "--dataset",
                  "fashion-mnist",
                  "--epochs", "2", "--batch-size", "50", "--lr", "0.01", "--seed", "3",
                  "--out", str(out), env_extra=env)
    return root, env, out, res


@pytest.fixture
def in_world(world, monkeypatch):
    """cli.main in this process, with the world's data and a private $HOME."""
    _, env, _, _ = world
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return world


def main_out(capsys, *args):
    """(exit code, stdout, stderr) of cli.main(args) in this process."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:  # argparse
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(code, err, want_code, *fragments):
    assert code == want_code, err
    assert "Traceback" not in err
    err = err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(("fastnn: error: ", "fastnn train: error: ", "fastnn evaluate: error: ",
                           "fastnn show-filters: error: ")), err
    for f in fragments:
        assert f in err, err


def _arrays(path):
    from safetensors.numpy import load_file
    return load_file(str(path))


# ------------------------------------------------------------------ train


def test_train_writes_the_run_folder(world):
    root, env, out, res = world
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("fastnn ")
    assert ("training simple_convnet on fashion-mnist (400 train / 100 test images), adam "
            "lr=0.01, batch 50, float32, 1 thread") in lines[0]
    epochs = [ln for ln in lines if ln.startswith("=== epoch:")]
    assert len(epochs) == 2 and "train acc:" in epochs[0] and "img/s" in epochs[0]
    assert "epoch 1/2" in res.stderr  # tqdm progress bar
    assert lines[-1] == (f"saved model.safetensors, checkpoint.safetensors, history.json and "
                         f"curves.png in {out}")
    assert sorted(os.listdir(out)) == ["checkpoint.safetensors", "curves.png", "history.json",
                                       "model.safetensors"]      # no temporary files left

    hist = json.loads((out / "history.json").read_text())
    assert hist["status"] == "finished" and hist["epochs_done"] == 2
    assert len(hist["train_loss"]) == 16 and len(hist["train_acc"]) == 2
    assert len(hist["test_acc"]) == 2 and len(hist["epoch_time"]) == 2
    assert hist["settings"]["model"] == "simple_convnet" and hist["settings"]["lr"] == 0.01
    assert hist["settings"]["dtype"] == "float32" and hist["settings"]["batch_size"] == 50
    assert hist["settings"]["image_shape"] == [1, 28, 28]
    assert hist["test_acc"][-1] > 0.5  # the synthetic classes are easy
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from fastnn.models import SimpleConvNet, load_model, read_description
    net = load_model(out / "model.safetensors")
    assert isinstance(net, SimpleConvNet) and net.params["W2"].dtype == np.float32
    _, config, meta = read_description(out / "model.safetensors")
    assert config["input_dim"] == [1, 28, 28] and meta["fastnn_version"] == fastnn.__version__
    assert json.loads(meta["fastnn_run"])["dataset"] == "fashion-mnist"


def test_quiet_keeps_only_the_final_accuracy(tmp_path):
    res = run_cli("--threads", "1", "train", "--model", "mlp", "--dataset", "digits",
                  "--epochs", "8",
                  "--optimizer", "SGD", "--lr", "0.1", "--batch-size", "64", "--quiet",
                  "--dtype", "float64", "--out", str(tmp_path / "mlp"))
    assert res.returncode == 0, res.stderr
    hist = json.loads((tmp_path / "mlp" / "history.json").read_text())
    assert hist["settings"]["optimizer"] == "sgd" and hist["test_acc"][-1] > 0.8
    assert res.stdout == f"test acc:{hist['final_test_acc']:.4f}\n"
    assert res.stderr == ""


def test_help_shows_defaults_models_and_datasets(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")                 # no line breaks inside the names
    code, out, _ = main_out(capsys, "--help")
    assert code == 0
    for name in list(cli.MODELS) + list(cli.DATASETS):
        assert f"\n  {name} " in out
    code, out, _ = main_out(capsys, "train", "--help")
    assert code == 0
    for fragment in ("(default: simple_convnet)", "(default: fashion-mnist)", "(default: 5)",
                     "(default: 100)", "(default: adam)", "(default: 0)", "(default: float32)",
                     "--resume RUN_DIR"):
        assert fragment in out, fragment
    code, out, _ = main_out(capsys, "evaluate", "--help")
    assert "(default: 36)" in out and code == 0


# ------------------------------------------------------------------ stop and resume


def test_ctrl_c_then_resume_ends_like_an_uninterrupted_run(world, tmp_path):
    """DeepConvNet (dropout, Adam) stopped by SIGINT in the middle of iteration 6 of 16,
    resumed: its parameters and losses equal those of an uninterrupted run, bit for bit."""
    _, env, _, _ = world
    common = ["--threads", "1", "train", "--model", "deep_convnet", "--epochs", "2",
              "--batch-size", "50", "--seed", "5", "--quiet"]
    full = run_cli(*common, "--out", str(tmp_path / "full"), env_extra=env)
    assert full.returncode == 0, full.stderr

    part = tmp_path / "part"
    res = run_cli(*common, "--out", str(part), env_extra=dict(env, STOP_AFTER="5"),
                  driver=INTERRUPTING_DRIVER)
    assert res.returncode == 130, res.stderr
    assert "stopping after this step" in res.stderr
    assert (f"fastnn: interrupted at epoch 1/2, iteration 6/8; saved a checkpoint in {part}. "
            f"Resume with: fastnn train --resume {part}") in res.stderr
    hist = json.loads((part / "history.json").read_text())
    assert hist["status"] == "interrupted" and hist["iterations_done"] == 6
    assert (part / "curves.png").exists() is False  # no finished epoch to draw yet

    res = run_cli("--threads", "1", "train", "--resume", str(part), "--quiet", env_extra=env)
    assert res.returncode == 0, res.stderr
    a, b = _arrays(tmp_path / "full" / "model.safetensors"), _arrays(part / "model.safetensors")
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    h_full = json.loads((tmp_path / "full" / "history.json").read_text())
    h_part = json.loads((part / "history.json").read_text())
    assert h_part["train_loss"] == h_full["train_loss"]
    assert h_part["test_acc"] == h_full["test_acc"] and h_part["status"] == "finished"
    assert res.stdout == f"test acc:{h_full['final_test_acc']:.4f}\n"


def test_resume_trains_more_epochs_and_refuses_other_settings(in_world, tmp_path, capsys):
    _, _, out, _ = in_world
    run = tmp_path / "run"
    code, _, err = main_out(capsys, "train", "--model", "mlp", "--epochs", "1", "--out", run,
                            "--quiet")
    assert code == 0, err
    code, _, err = main_out(capsys, "train", "--resume", run)
    one_line_error(code, err, 1, "has already finished its 1 epochs; pass --epochs N with "
                   "N > 1 to train on")
    code, out_text, err = main_out(capsys, "train", "--resume", run, "--epochs", "2")
    assert code == 0, err
    assert out_text.startswith(f"resuming mlp on fashion-mnist in {run} at epoch 2/2, "
                               "iteration 0/4")
    hist = json.loads((run / "history.json").read_text())
    assert hist["epochs_done"] == 2 and hist["settings"]["epochs"] == 2
    code, _, err = main_out(capsys, "train", "--resume", run, "--lr", "0.5")
    assert code == 2 and "--resume continues a run with its saved settings; --lr cannot be " \
                         "given with it" in err
    code, _, err = main_out(capsys, "train", "--resume", tmp_path)
    one_line_error(code, err, 1, "no checkpoint.safetensors to resume from")
    code, _, err = main_out(capsys, "train", "--model", "mlp", "--epochs", "1", "--out", run)
    one_line_error(code, err, 1, f"{run} already holds a training run", "--resume", "--overwrite")
    code, _, err = main_out(capsys, "train", "--model", "mlp", "--epochs", "1", "--out", run,
                            "--overwrite", "--quiet")
    assert code == 0, err
    assert json.loads((run / "history.json").read_text())["epochs_done"] == 1


def test_nan_loss_stops_with_one_line(in_world, tmp_path, capsys):
    code, _, err = main_out(capsys, "train", "--model", "mlp", "--optimizer", "sgd", "--lr",
                            "1e30", "--epochs", "2", "--batch-size", "50", "--quiet", "--out",
                            tmp_path / "nan")
    one_line_error(code, err, 1, "the loss is nan at epoch 1, iteration", "training diverged",
                   "the checkpoint in", "is from before the first step")
    assert json.loads((tmp_path / "nan" / "history.json").read_text())["status"] == "diverged"


# ------------------------------------------------------------------ evaluate, predict, export


def test_evaluate_run_dir(world, tmp_path):
    root, env, out, _ = world
    hist = json.loads((out / "history.json").read_text())
    res = run_cli("evaluate", str(out), "--out-dir", str(tmp_path), env_extra=env)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == (f"test accuracy: {hist['final_test_acc']:.4f} (100 fashion-mnist test "
                        "images, simple_convnet)")
    assert lines[1] == "per-class accuracy:" and len(lines) == 13
    assert lines[2].split()[0] == "T-shirt/top" and lines[11].split()[:2] == ["Ankle", "boot"]
    total = sum(int(ln.rsplit("(", 1)[1].split("/")[1].rstrip(")")) for ln in lines[2:12])
    assert total == 100
    assert lines[12].startswith("saved confusion.png and misclassified.png")
    assert sorted(os.listdir(tmp_path)) == ["confusion.png", "misclassified.png"]


def test_evaluate_with_params_files(in_world, tmp_path, capsys):
    _, _, out, _ = in_world
    hist = json.loads((out / "history.json").read_text())
    from fastnn.models import load_model
    net = load_model(out / "model.safetensors")
    net.save_params(tmp_path / "params.pkl")          # the book's format
    net.save_params(tmp_path / "params.npz")
    want = f"test accuracy: {hist['final_test_acc']:.4f} (100 fashion-mnist test images"
    for name in ("params.pkl", "params.npz"):
        code, text, err = main_out(capsys, "evaluate", "--model", "simple_convnet", "--params",
                                   tmp_path / name, "--dataset", "fashion-mnist")
        assert code == 0, err
        assert text.startswith(want) and "saved" not in text   # no pictures unless asked
    code, _, err = main_out(capsys, "evaluate", "--safe", "--params", tmp_path / "params.pkl")
    one_line_error(code, err, 1, "refusing to unpickle")


def test_run_folders_of_earlier_versions_still_evaluate(in_world, tmp_path, capsys):
    """A folder with the book's params.pkl and history.json (what fastnn train wrote before
    model.safetensors existed)."""
    _, _, out, _ = in_world
    from fastnn.models import load_model
    old = tmp_path / "old"
    old.mkdir()
    load_model(out / "model.safetensors").save_params(old / "params.pkl")
    settings = json.loads((out / "history.json").read_text())["settings"]
    (old / "history.json").write_text(json.dumps({"settings": settings}))
    code, text, err = main_out(capsys, "evaluate", old)
    assert code == 0, err
    hist = json.loads((out / "history.json").read_text())
    assert text.startswith(f"test accuracy: {hist['final_test_acc']:.4f} (100 fashion-mnist")
    assert (old / "confusion.png").exists()


def _png(path, array, mode=None):
    from PIL import Image
    Image.fromarray(array, mode).save(path)


def test_predict_own_images(in_world, tmp_path, capsys):
    _, _, out, _ = in_world
    (x, t), _ = write_dataset(tmp_path / "imgs", 6, 1, seed=7)
    from PIL import Image
    paths = []
    for i, (img, label) in enumerate(zip(x, t)):
        if i % 3 == 0:                                      # as the data set: light on dark
            _png(tmp_path / f"{i}.png", img)
        elif i % 3 == 1:                                    # dark on white, RGB, twice as large
            big = np.kron(255 - img, np.ones((2, 2), np.uint8))
            _png(tmp_path / f"{i}.png", np.stack([big] * 3, axis=-1))
        else:                                               # JPEG, 3:2 aspect
            Image.fromarray(img).resize((42, 28)).save(tmp_path / f"{i}.jpg", quality=95)
        paths.append(next(tmp_path.glob(f"{i}.*")))
    code, text, err = main_out(capsys, "predict", out, *paths, "--top", "2")
    assert code == 0, err
    lines = text.splitlines()
    assert len(lines) == len(paths)
    names = cli.CLASS_NAMES["fashion-mnist"]
    right = 0
    for line, path, label in zip(lines, paths, t):
        assert line.startswith(f"{path}: ") and line.count("%") == 2
        right += line.split(": ", 1)[1].startswith(names[label] + " ")
    assert right >= 4, text


def test_export_onnx_matches_fastnn(in_world, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    _, _, out, _ = in_world
    code, text, err = main_out(capsys, "export", out, "--onnx", tmp_path / "scn.onnx")
    assert code == 0, err
    assert text.strip() == (f"wrote {tmp_path / 'scn.onnx'}: simple_convnet, input 'input' "
                            "(N, 1, 28, 28) float32 -> 'logits' and 'probabilities' (N, 10)")
    from fastnn.models import load_model
    net = load_model(out / "model.safetensors")
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    sess = ort.InferenceSession(str(tmp_path / "scn.onnx"), providers=["CPUExecutionProvider"])
    logits, prob = sess.run(None, {"input": x})
    np.testing.assert_allclose(logits, net.predict(x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(prob.sum(axis=1), 1, rtol=1e-5)
    code, _, err = main_out(capsys, "export", out, "--onnx", tmp_path / "no" / "m.onnx")
    one_line_error(code, err, 1, "--onnx", "does not exist")


def test_show_filters(in_world, tmp_path, capsys):
    _, _, out, _ = in_world
    png = tmp_path / "filters.png"
    code, text, err = main_out(capsys, "show-filters", out, "--out", png)
    assert code == 0, err
    assert "30 filters of W1 (30, 1, 5, 5)" in text
    assert png.read_bytes()[:4] == b"\x89PNG"
    from fastnn.models import load_model
    load_model(out / "model.safetensors").save_params(tmp_path / "p.pkl")
    code, text, err = main_out(capsys, "show-filters", "--params", tmp_path / "p.pkl", "--out",
                               tmp_path / "f.svg")
    assert code == 0 and (tmp_path / "f.svg").exists(), err


# ------------------------------------------------------------------ one-line user errors


def _write_split_dataset(folder, train_size=28, test_size=28, n=40):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, size in (("train", train_size), ("test", test_size)):
        x, t = synthetic(n, rng, size=max(size, 1))
        x = x[:, :size, :size]
        write_gz(folder / NAMES[split][0], idx_bytes(x))
        write_gz(folder / NAMES[split][1], idx_bytes(t))


def _npy_header(shape, descr="<f8"):
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def test_user_errors_are_one_line(in_world, tmp_path, capsys, monkeypatch):
    root, env, out, _ = in_world

    def check(args, code, *fragments):
        got, text, err = main_out(capsys, *args)
        one_line_error(got, err, code, *fragments)
        assert "=== epoch" not in text        # nothing trained before the error

    # bad flags: exit 2
    check(["train", "--model", "resnet"], 2, "invalid choice: 'resnet'")
    check(["train", "--epochs", "0"], 2, "must be > 0")
    check(["train", "--lr", "fast"], 2, "'fast' is not a float")
    check(["train", "--lr", "nan"], 2, "--lr: must be a finite number, got nan")
    check(["train", "--lr", "inf"], 2, "--lr: must be a finite number, got inf")
    check(["train", "--seed", "-1"], 2, "--seed: must be >= 0, got -1")
    check(["train", "--seed", "4294967296"], 2, "--seed: must be <= 4294967295")
    check(["evaluate"], 2, "evaluate needs a RUN_DIR or --params FILE")
    check(["show-filters", "--params", "p.pkl", "--out", tmp_path / "f.xyz"], 2,
          "cannot write a picture as .xyz files (use one of")

    # parameter files: exit 1
    check(["evaluate", "--params", tmp_path / "nope.pkl"], 1, "nope.pkl", "No such file")
    (tmp_path / "junk.pkl").write_bytes(b"garbage")
    check(["evaluate", "--params", tmp_path / "junk.pkl"], 1, "not a readable parameter pickle")
    from fastnn.models import load_model
    load_model(out / "model.safetensors").save_params(tmp_path / "scn.pkl")
    check(["evaluate", "--model", "mlp", "--params", tmp_path / "scn.pkl"], 1,
          "does not fit this network", "unexpected W3, b3")
    check(["show-filters", "--params", tmp_path / "scn.pkl", "--key", "W2", "--out",
           tmp_path / "f.png"], 1, "W2 is not a convolution weight")
    np.save(tmp_path / "w.npy", np.zeros(3))
    os.rename(tmp_path / "w.npy", tmp_path / "w.npz")
    check(["evaluate", "--params", tmp_path / "w.npz"], 1, "it is a single .npy array, "
          "perhaps renamed")
    with zipfile.ZipFile(tmp_path / "text.npz", "w") as z:
        z.writestr("W1.npy", _npy_header((2,)) + b"\0" * 16)
        z.writestr("notes.txt", b"hello")
    check(["evaluate", "--params", tmp_path / "text.npz"], 1,
          "member 'notes.txt' is not a NumPy array (.npy)")
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("W1.npy", _npy_header((10 ** 12,)) + b"\0" * 16)
    check(["evaluate", "--params", tmp_path / "huge.npz"], 1,
          "declares shape (1000000000000,) of float64: 7.3 TiB, over the 4.0 GiB limit")

    # output paths, checked before training
    (tmp_path / "file").write_text("x")
    check(["train", "--out", tmp_path / "file"], 1, "exists and is not a folder")
    check(["evaluate", out, "--out-dir", tmp_path / "none"], 1, "--out-dir", "no such folder")
    check(["evaluate", tmp_path / "none"], 1, "no such run folder")
    check(["predict", tmp_path, "x.png"], 1, "no model.safetensors here")

    # images
    (tmp_path / "empty.png").write_bytes(b"")
    check(["predict", out, tmp_path / "empty.png"], 1, "empty.png: not a readable image")
    png0 = bytes.fromhex("89504e470d0a1a0a0000000d494844520000000000000000080000000000")
    (tmp_path / "zero.png").write_bytes(png0)               # a PNG header declaring 0x0
    check(["predict", out, tmp_path / "zero.png"], 1, "zero.png: not a readable image")
    check(["predict", out, tmp_path / "missing.png"], 1, "missing.png", "No such file")

    # data sets that cannot be trained on: found before the first step
    # (the IDX reader refuses a header of another image size than the data set's)
    for name, sizes, fragment in (("zero", (0, 0), "IDX header declares 0x0 images; this data "
                                   "set has 28x28"),
                                  ("mixed", (28, 20), "IDX header declares 20x20 images; this "
                                   "data set has 28x28")):
        data = tmp_path / f"data-{name}"
        _write_split_dataset(data / "fashion-mnist", *sizes)
        monkeypatch.setenv("FASTNN_DATA", str(data))
        check(["train", "--model", "mlp", "--out", tmp_path / f"run-{name}"], 1, fragment)
    assert not any((tmp_path / f"run-{n}" / "model.safetensors").exists()
                   for n in ("zero", "mixed"))


def test_subprocess_errors_have_no_traceback(world, tmp_path):
    """The same promise through the real entry point (python -m fastnn)."""
    _, env, _, _ = world
    offline = {"FASTNN_DATA": str(tmp_path / "none"), "HOME": str(tmp_path)}
    res = run_cli("train", "--dataset", "mnist", "--out", str(tmp_path / "r"), env_extra=offline)
    one_line_error(res.returncode, res.stderr, 1, "fastnn: error: mnist:", "were not found in",
                   "download")
    res = run_cli("train", "--seed", "-1")
    one_line_error(res.returncode, res.stderr, 2, "--seed: must be >= 0")
