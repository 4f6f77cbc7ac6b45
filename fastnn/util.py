"""Drop-ins for the book's common/util.py: im2col/col2im on fastnn's kernels, and the small
NumPy helpers conv_output_size, shuffle_dataset and smooth_curve.

im2col/col2im return the book's values in the input's float dtype (ints become float64);
the book always returns float64.
"""

from . import _ops
from .reference.util import conv_output_size, shuffle_dataset, smooth_curve

__all__ = ["im2col", "col2im", "conv_output_size", "shuffle_dataset", "smooth_curve"]


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """(N, C, H, W) images -> (N*out_h*out_w, C*filter_h*filter_w) columns, zero-padded."""
    return _ops.im2col(input_data, filter_h, filter_w, stride, pad)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """Columns back to images of input_shape, summing where windows overlap."""
    return _ops.col2im(col, input_shape, filter_h, filter_w, stride, pad)
