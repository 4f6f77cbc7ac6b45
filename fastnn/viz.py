"""Pictures of a training run: accuracy/loss curves, first-layer filters, a confusion matrix
and misclassified images (matplotlib Agg).

Figures are drawn on matplotlib's Agg canvas directly, so importing this module never changes
the pyplot backend of the caller. Files are written atomically (fastnn._files.atomic_write),
in the format their extension names (.png, .pdf, .svg, .jpg, ...).
"""

import math
import os

import numpy as np

from ._files import atomic_write


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def image_formats():
    """The file extensions matplotlib can write (png, pdf, svg, jpg, ...)."""
    return sorted(_figure((1, 1)).canvas.get_supported_filetypes())


def check_image_path(file_name):
    """``file_name`` if matplotlib can write its format and its folder exists; else
    ValueError saying why (checked before any work is done)."""
    ext = os.path.splitext(str(file_name))[1][1:].lower()
    formats = image_formats()
    if ext not in formats:
        what = f".{ext} files" if ext else "a name without an extension"
        raise ValueError(f"{file_name}: cannot write a picture as {what} (use one of "
                         f"{', '.join('.' + f for f in formats)})")
    folder = os.path.dirname(os.path.abspath(str(file_name)))
    if not os.path.isdir(folder):
        raise ValueError(f"{file_name}: the folder {folder} does not exist")
    return file_name


def save_figure(fig, file_name, dpi=100):
    """Write ``fig`` to ``file_name`` atomically, in the format of its extension."""
    ext = os.path.splitext(str(file_name))[1][1:].lower() or "png"
    with atomic_write(file_name) as f:
        fig.savefig(f, format=ext, dpi=dpi)


def _run_title(history):
    s = history.get("settings") or {}
    if not s:
        return None
    lr = s.get("lr")
    return (f"{s.get('model')} on {s.get('dataset')}: {s.get('optimizer')} lr={lr:g}, "
            f"batch {s.get('batch_size')}, {s.get('dtype')}" if isinstance(lr, (int, float))
            else f"{s.get('model')} on {s.get('dataset')}")


def plot_curves(history, file_name):
    """Train/test accuracy per epoch (as the book's train_convnet.py) and the training loss.
    After a single epoch the accuracies are drawn as two labelled bars."""
    fig = _figure((10, 4.4))
    ax_acc, ax_loss = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["train_acc"]) + 1)
    if len(epochs) == 1:
        values = [history["train_acc"][0], history["test_acc"][0]]
        bars = ax_acc.bar(["train", "test"], values, color=["C0", "C1"], width=0.5)
        for bar, v in zip(bars, values):
            ax_acc.text(bar.get_x() + bar.get_width() / 2, v + 0.02, f"{v:.4f}",
                        ha="center", va="bottom")
        ax_acc.set_title("Accuracy after 1 epoch")
    else:
        ax_acc.plot(epochs, history["train_acc"], marker="o", label="train",
                    markevery=max(1, len(epochs) // 10))
        ax_acc.plot(epochs, history["test_acc"], marker="s", label="test",
                    markevery=max(1, len(epochs) // 10))
        from matplotlib.ticker import MaxNLocator
        ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_acc.set_xlabel("epochs")
        ax_acc.legend(loc="lower right")
        ax_acc.set_title("Accuracy per epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.05)
    ax_acc.grid(True, alpha=0.3)
    loss = np.asarray(history["train_loss"], dtype=float)
    iters_per_epoch = max(len(loss) // max(len(epochs), 1), 1)
    ax_loss.plot(np.arange(1, len(loss) + 1) / iters_per_epoch, loss, lw=0.6, label="mini-batch")
    if len(loss) >= 20:  # a moving average makes the trend readable
        k = max(len(loss) // 50, 5)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax_loss.plot((np.arange(len(smooth)) + k) / iters_per_epoch, smooth, lw=1.5,
                     label=f"mean of {k}")
    ax_loss.set_xlabel("epochs")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Training loss (mini-batches)")
    ax_loss.grid(True, alpha=0.3)
    if len(loss):
        ax_loss.legend(loc="upper right")
    title = _run_title(history)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, file_name)
    return fig


def show_filters(W, file_name, nx=8):
    """Draw filters ``W`` (FN, C, FH, FW), first channel, in a grid of ``nx`` columns,
    grey-scale with dark = large, as the book's visualize_filter.py."""
    W = np.asarray(W)
    if W.ndim != 4:
        raise ValueError(f"show_filters: expected convolution weights (FN, C, FH, FW), got "
                         f"shape {W.shape}")
    FN = W.shape[0]
    ny = max(math.ceil(FN / nx), 1)
    fig = _figure((nx * 0.8, ny * 0.8))
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1, hspace=0.05, wspace=0.05)
    for i in range(FN):
        ax = fig.add_subplot(ny, nx, i + 1, xticks=[], yticks=[])
        ax.imshow(W[i, 0], cmap="gray_r", interpolation="nearest")
    save_figure(fig, file_name)
    return fig


def confusion_matrix(t, y, n_classes):
    """counts[i, j]: images of class i predicted as class j."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(t, dtype=np.int64), np.asarray(y, dtype=np.int64)), 1)
    return counts


def plot_confusion(counts, class_names, file_name, title="Confusion matrix"):
    """The confusion matrix ``counts`` (true class per row, prediction per column), each row
    coloured by its fraction, with the counts written in the cells."""
    n = len(class_names)
    size = max(5.0, 0.6 * n + 2.5)
    fig = _figure((size, size))
    ax = fig.subplots()
    rows = counts.sum(axis=1, keepdims=True)
    frac = counts / np.maximum(rows, 1)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), labels=class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), labels=class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, file_name)
    return fig


def plot_misclassified(images, true, pred, prob, class_names, file_name, nx=6,
                       title="Misclassified test images"):
    """A grid of ``images`` (N, C, H, W or N, H, W) with their true and predicted classes
    (and the predicted class's probability)."""
    images = np.asarray(images)
    n = len(images)
    ny = max(math.ceil(n / nx), 1)
    fig = _figure((nx * 1.7, ny * 1.9 + 0.6))
    for i in range(n):
        ax = fig.add_subplot(ny, nx, i + 1, xticks=[], yticks=[])
        img = images[i]
        if img.ndim == 3:
            img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"true: {class_names[true[i]]}\npred: {class_names[pred[i]]} "
                     f"({prob[i]:.2f})", fontsize=7, color="firebrick")
    if n == 0:
        ax = fig.add_subplot(1, 1, 1, xticks=[], yticks=[])
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, file_name)
    return fig
