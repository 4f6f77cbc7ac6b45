"""The book's CPU/GPU switch (common/config.py): set ``GPU = True`` before importing the other
modules of fastnn.dlfs2 to make their ``np`` CuPy."""

GPU = False
