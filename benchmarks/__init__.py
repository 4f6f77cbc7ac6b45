"""fastnn benchmarks: `python -m benchmarks [--quick] [--json FILE]`."""

import os

# NumPy's OpenBLAS threads spin for ~0.1 s after every call (OpenBLAS's default thread timeout,
# 2^28 cycles): measured 0.107 s of CPU during a 0.2 s sleep after three 512^3 matmuls, none with
# this setting. In a process that interleaves contenders, that spin takes the cores from
# whichever contender runs after the reference. Read when NumPy loads OpenBLAS, so set before.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
