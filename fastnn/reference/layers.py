"""Reference layers in plain NumPy, with the behaviour of the book's common/layers.py."""

import numpy as np

from .util import im2col, col2im  # noqa: F401

# ------------------------------------------------------------------ activations, affine, loss,
# ------------------------------------------------------------------ dropout, batch normalization


# ------------------------------------------------------------------ convolution and pooling
