"""Progress bars for training loops: live on a terminal, sparse in logs and CI."""

import sys


def progress_bar(iterable=None, **kwargs):
    """A tqdm bar; when stderr is not a terminal it redraws at most every 30 s, so log files
    get a few lines per epoch instead of one per batch."""
    from tqdm.auto import tqdm

    if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        kwargs.setdefault("mininterval", 30.0)
    return tqdm(iterable, **kwargs)
