"""Reference im2col/col2im and the book's small utilities, in plain NumPy."""

import numpy as np


def conv_output_size(input_size, filter_size, stride=1, pad=0):
    """Positions a window of filter_size takes along an axis of input_size (integer division)."""
    return (input_size + 2 * pad - filter_size) // stride + 1


def float_dtype(a):
    """The dtype reference kernels compute in for a: its own when float, else float64."""
    return a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """Unfold (N, C, H, W) images into a matrix of shape (N*out_h*out_w, C*filter_h*filter_w).

    Row (n, i, j) holds, channel by channel, the filter_h x filter_w patch of image n that the
    filter covers at output position (i, j); the image is zero-padded by ``pad`` on each side.
    """
    x = np.asarray(input_data)
    N, C, H, W = x.shape
    out_h = conv_output_size(H, filter_h, stride, pad)
    out_w = conv_output_size(W, filter_w, stride, pad)
    padded = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    # patches[n, c, dy, dx, i, j] = padded[n, c, i*stride + dy, j*stride + dx]
    patches = np.empty((N, C, filter_h, filter_w, out_h, out_w), dtype=float_dtype(x))
    for dy in range(filter_h):
        rows = slice(dy, dy + stride * out_h, stride)
        for dx in range(filter_w):
            cols = slice(dx, dx + stride * out_w, stride)
            patches[:, :, dy, dx] = padded[:, :, rows, cols]
    rows = patches.transpose(0, 4, 5, 1, 2, 3)
    return rows.reshape(N * out_h * out_w, C * filter_h * filter_w)  # also when N == 0


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """The adjoint of im2col: add every entry of col back onto the pixel it was read from.

    Pixels covered by several windows receive the sum; what fell on the padding is dropped.
    Returns an array of ``input_shape`` (N, C, H, W).
    """
    col = np.asarray(col)
    N, C, H, W = input_shape
    out_h = conv_output_size(H, filter_h, stride, pad)
    out_w = conv_output_size(W, filter_w, stride, pad)
    patches = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    padded = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=float_dtype(col))
    for dy in range(filter_h):
        rows = slice(dy, dy + stride * out_h, stride)
        for dx in range(filter_w):
            cols = slice(dx, dx + stride * out_w, stride)
            padded[:, :, rows, cols] += patches[:, :, dy, dx]
    return padded[:, :, pad:pad + H, pad:pad + W]


def shuffle_dataset(x, t):
    """Shuffle samples x and labels t with one permutation of axis 0 (NumPy's global RNG)."""
    order = np.random.permutation(x.shape[0])
    return x[order], t[order]


def smooth_curve(x):
    """Smooth a 1-D curve (e.g. a loss history) with an 11-point Kaiser window (beta = 2).

    Each point becomes the window-weighted mean of itself and its 5 neighbours on each side;
    at the ends the curve is mirrored (without repeating the first point on the left, repeating
    the last point on the right), which gives the book's values for curves of 11 or more points.
    Shorter curves keep their length.
    """
    x = np.asarray(x)
    if x.size == 0:
        return x.astype(np.float64)
    half = 5
    weights = np.kaiser(2 * half + 1, 2)
    weights /= weights.sum()
    extended = np.concatenate([np.pad(x, (half, 0), mode="reflect")[:half],
                               x,
                               np.pad(x, (0, half), mode="symmetric")[-half:]])
    return np.convolve(extended, weights, mode="valid")
