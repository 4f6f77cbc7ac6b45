"""The fastnn command end to end (python -m fastnn) on a few hundred synthetic IDX images."""

import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import fastnn
from idxfiles import write_dataset

# Where the fastnn under test was imported from: the working tree in development, or
# site-packages after `pip install .` (whose source tree has no compiled _C).
FASTNN_PARENT = Path(fastnn.__file__).resolve().parents[1]


def run_cli(*args, env_extra=None, cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FASTNN_PARENT)] + [p for p in
                                                                [env.get("PYTHONPATH")] if p])
    env.update(env_extra or {})
    # `python -m` puts the working directory first on sys.path: never run it from the repo.
    return subprocess.run([sys.executable, "-m", "fastnn", *args], capture_output=True,
                          text=True, env=env, cwd=cwd or tempfile.gettempdir(), timeout=120)


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


def test_train_writes_params_history_and_curves(world):
    root, env, out, res = world
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("fastnn ")
    assert ("training simple_convnet on fashion-mnist (400 train / 100 test images), adam "
            "lr=0.01, batch 50, float32, 1 thread") in lines[0]
    epochs = [ln for ln in lines if ln.startswith("=== epoch:")]
    assert len(epochs) == 2 and "train acc:" in epochs[0] and "img/s" in epochs[0]
    assert "epoch 1/2" in res.stderr  # tqdm progress bar

    hist = json.loads((out / "history.json").read_text())
    assert len(hist["train_loss"]) == 16 and len(hist["train_acc"]) == 2
    assert len(hist["test_acc"]) == 2 and len(hist["epoch_time"]) == 2
    assert hist["settings"]["model"] == "simple_convnet" and hist["settings"]["lr"] == 0.01
    assert hist["settings"]["dtype"] == "float32" and hist["settings"]["batch_size"] == 50
    assert hist["test_acc"][-1] > 0.5  # the synthetic classes are easy
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with open(out / "params.pkl", "rb") as f:
        params = pickle.load(f)
    assert type(params) is dict and params["W1"].shape == (30, 1, 5, 5)
    assert params["W2"].dtype == np.float32


def test_evaluate_reproduces_the_final_accuracy(world):
    root, env, out, _ = world
    hist = json.loads((out / "history.json").read_text())
    res = run_cli("evaluate", "--model", "simple_convnet", "--params", str(out / "params.pkl"),
                  "--dataset", "fashion-mnist", env_extra=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == (f"test accuracy: {hist['final_test_acc']:.4f} (100 "
                                  "fashion-mnist test images, simple_convnet)")


def test_show_filters(world, tmp_path):
    _, env, out, _ = world
    png = tmp_path / "filters.png"
    res = run_cli("show-filters", "--params", str(out / "params.pkl"), "--out", str(png),
                  env_extra=env)
    assert res.returncode == 0, res.stderr
    assert "30 filters of W1 (30, 1, 5, 5)" in res.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_mlp_on_digits_with_sgd(tmp_path):
    res = run_cli("--threads", "1", "train", "--model", "mlp", "--dataset", "digits",
                  "--epochs", "8",
                  "--optimizer", "SGD", "--lr", "0.1", "--batch-size", "64", "--quiet",
                  "--dtype", "float64", "--out", str(tmp_path / "mlp"))
    assert res.returncode == 0, res.stderr
    hist = json.loads((tmp_path / "mlp" / "history.json").read_text())
    assert hist["settings"]["optimizer"] == "sgd" and hist["test_acc"][-1] > 0.8
    assert "=== epoch" not in res.stdout


def one_line_error(res, code, *fragments):
    assert res.returncode == code
    assert "Traceback" not in res.stderr
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, err


def test_user_errors_are_one_line(world, tmp_path):
    root, env, out, _ = world
    offline = {"FASTNN_DATA": str(tmp_path / "none"), "HOME": str(tmp_path)}
    res = run_cli("train", "--dataset", "mnist", "--out", str(tmp_path / "r"),
                  env_extra=offline)
    one_line_error(res, 1, "fastnn: error: mnist:", "were not found in", "download")
    one_line_error(run_cli("train", "--model", "resnet"), 2, "invalid choice: 'resnet'")
    one_line_error(run_cli("train", "--epochs", "0"), 2, "must be > 0")
    one_line_error(run_cli("train", "--lr", "fast"), 2, "'fast' is not a float")
    one_line_error(run_cli("evaluate"), 2, "--params")
    res = run_cli("evaluate", "--params", str(tmp_path / "nope.pkl"), env_extra=env)
    one_line_error(res, 1, "nope.pkl", "No such file")
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"garbage")
    res = run_cli("evaluate", "--params", str(junk), env_extra=env)
    one_line_error(res, 1, "not a readable parameter pickle")
    res = run_cli("evaluate", "--model", "mlp", "--params", str(out / "params.pkl"),
                  env_extra=env)
    one_line_error(res, 1, "does not fit this network", "unexpected W3, b3")
    res = run_cli("show-filters", "--params", str(out / "params.pkl"), "--key", "W2",
                  "--out", str(tmp_path / "f.png"))
    one_line_error(res, 1, "W2 is not a convolution weight")
