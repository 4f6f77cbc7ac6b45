"""Pictures of a training run: accuracy/loss curves and first-layer filters (matplotlib Agg).

Figures are drawn on matplotlib's Agg canvas directly, so importing this module never changes
the pyplot backend of the caller.
"""

import math

import numpy as np


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_curves(history, file_name):
    """Train/test accuracy per epoch (as the book's train_convnet.py) and the training loss."""
    fig = _figure((10, 4))
    ax_acc, ax_loss = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["train_acc"]) + 1)
    ax_acc.plot(epochs, history["train_acc"], marker="o", label="train",
                markevery=max(1, len(epochs) // 10))
    ax_acc.plot(epochs, history["test_acc"], marker="s", label="test",
                markevery=max(1, len(epochs) // 10))
    from matplotlib.ticker import MaxNLocator
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.set_xlabel("epochs")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.0)
    ax_acc.legend(loc="lower right")
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
    ax_loss.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(file_name, dpi=100)


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
    fig.savefig(file_name, dpi=100)
