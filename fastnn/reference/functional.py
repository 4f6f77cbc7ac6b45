"""Reference functions shared by the reference layers (softmax, cross-entropy, ...)."""

import numpy as np
