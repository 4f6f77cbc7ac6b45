"""fastnn.viz: titled, gridded pictures written atomically in the format their name says."""

import os

import numpy as np
import pytest

from fastnn import viz

SETTINGS = {"model": "mlp", "dataset": "digits", "optimizer": "adam", "lr": 0.001,
            "batch_size": 64, "dtype": "float32"}


def _history(epochs):
    return {"train_acc": list(np.linspace(0.5, 0.9, epochs)),
            "test_acc": list(np.linspace(0.45, 0.85, epochs)),
            "train_loss": list(np.linspace(2, 0.3, 20 * epochs)), "settings": SETTINGS}


def test_one_epoch_accuracy_is_two_labelled_bars(tmp_path):
    fig = viz.plot_curves(_history(1), tmp_path / "c.png")
    ax_acc, ax_loss = fig.axes
    assert len(ax_acc.patches) == 2                                   # train and test bars
    assert [t.get_text() for t in ax_acc.texts] == ["0.5000", "0.4500"]
    assert [t.get_text() for t in ax_acc.get_xticklabels()] == ["train", "test"]
    assert ax_acc.get_title() == "Accuracy after 1 epoch"
    assert fig._suptitle.get_text() == "mlp on digits: adam lr=0.001, batch 64, float32"
    for ax in fig.axes:
        assert any(line.get_visible() for line in ax.get_xgridlines())
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert os.listdir(tmp_path) == ["c.png"]


def test_several_epochs_are_curves(tmp_path):
    fig = viz.plot_curves(_history(5), tmp_path / "c.svg")
    ax_acc, ax_loss = fig.axes
    assert len(ax_acc.lines) == 2 and ax_acc.get_title() == "Accuracy per epoch"
    assert ax_loss.get_title() == "Training loss (mini-batches)"
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:500]


def test_picture_paths_are_checked(tmp_path):
    assert viz.check_image_path(str(tmp_path / "f.pdf")).endswith("f.pdf")
    with pytest.raises(ValueError, match=r"cannot write a picture as .xyz files \(use one of "
                                         r".*\.png"):
        viz.check_image_path(str(tmp_path / "f.xyz"))
    with pytest.raises(ValueError, match="a name without an extension"):
        viz.check_image_path(str(tmp_path / "f"))
    with pytest.raises(ValueError, match="does not exist"):
        viz.check_image_path(str(tmp_path / "nope" / "f.png"))


def test_confusion_and_misclassified_pictures(tmp_path):
    t = np.array([0, 0, 1, 2, 2, 2])
    y = np.array([0, 1, 1, 2, 0, 2])
    counts = viz.confusion_matrix(t, y, 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    fig = viz.plot_confusion(counts, ["a", "b", "c"], tmp_path / "cm.png")
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1", "1", "1", "1", "2"]
    fig = viz.plot_misclassified(np.random.rand(2, 1, 8, 8), [0, 2], [1, 0], [0.7, 0.6],
                                 ["a", "b", "c"], tmp_path / "mis.png")
    assert fig.axes[0].get_title() == "true: a\npred: b (0.70)"
    assert sorted(os.listdir(tmp_path)) == ["cm.png", "mis.png"]
