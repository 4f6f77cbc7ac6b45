"""Atomic file writes: a reader sees the old file or the complete new one, never a torn one."""

import contextlib
import os
import tempfile


def _default_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path):
    """Binary file object whose content replaces ``path`` only when the block completes.

    The data goes to a temporary file in the same folder, is fsync'ed, gets the permissions a
    plain ``open`` would give, and is renamed over ``path``; on any error the temporary file
    is removed and ``path`` is left as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
