"""Drop-in replacements for the layers of *Deep Learning from Scratch* vol. 1 (common/layers.py).

Same constructors, same forward/backward signatures, same public attributes after a call; the
work runs in fastnn's compiled kernels (fastnn._ops). Layers keep references to the caller's
W and b, so an optimizer's in-place update is seen by the next forward, as in the book.
"""

import numpy as np

from . import _ops

# ------------------------------------------------------------------ activations, affine, loss,
# ------------------------------------------------------------------ dropout, batch normalization


# ------------------------------------------------------------------ convolution and pooling
