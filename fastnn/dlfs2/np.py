"""``from fastnn.dlfs2.np import *`` hands over ``np`` (NumPy, or CuPy when ``config.GPU`` is
true, as the book's common/np.py) and ``GPU``."""

from .config import GPU

if GPU:
    import cupy as np
else:
    import numpy as np
