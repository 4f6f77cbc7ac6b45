"""Pure-NumPy reference implementations of every fastnn layer.

Readable, written for this project, and never importing fastnn._C: the oracle that every
compiled kernel is tested against, and the explanation of what each kernel computes.
"""
