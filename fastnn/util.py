"""Drop-ins for the book's common/util.py: im2col/col2im on fastnn's kernels, and the small
NumPy helpers conv_output_size, shuffle_dataset and smooth_curve.

im2col/col2im return the book's values in the input's float dtype (ints become float64);
the book always returns float64.
"""

import numpy as np

from . import ops

__all__ = ["im2col", "col2im", "conv_output_size", "shuffle_dataset", "smooth_curve"]


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """(N, C, H, W) images -> (N*out_h*out_w, C*filter_h*filter_w) columns, zero-padded."""
    return ops.im2col(input_data, filter_h, filter_w, stride, pad)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """Columns back to images of input_shape, summing where windows overlap."""
    return ops.col2im(col, input_shape, filter_h, filter_w, stride, pad)


def conv_output_size(input_size, filter_size, stride=1, pad=0):
    """How many positions a window of filter_size takes along an axis of input_size."""
    return (input_size + 2 * pad - filter_size) // stride + 1


def shuffle_dataset(x, t):
    """x and t with their samples (axis 0) in one random order (NumPy's global RNG)."""
    order = np.random.permutation(x.shape[0])
    return x[order], t[order]


def smooth_curve(x):
    """A 1-D curve (a loss history) smoothed by an 11-point Kaiser window (beta 2): each point
    the weighted mean of itself and 5 neighbours a side, the curve mirrored at its ends (the
    left end without repeating the first point, the right end repeating the last), as the
    book. Curves shorter than 11 points keep their length."""
    x = np.asarray(x)
    if not x.size:
        return x.astype(np.float64)
    w = np.kaiser(11, 2)
    left = x[1:6][::-1]
    right = x[::-1][:5]
    if len(left) < 5:  # a short curve: mirror as far as it goes, then keep mirroring
        left = np.pad(x, (5, 0), mode="reflect")[:5]
    if len(right) < 5:
        right = np.pad(x, (0, 5), mode="symmetric")[-5:]
    return np.convolve(np.concatenate([left, x, right]), w / w.sum(), mode="valid")
