"""Reference im2col/col2im and the book's small utilities, in plain NumPy."""

import numpy as np
