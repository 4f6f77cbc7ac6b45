"""Progress bars for training loops: live on a terminal and in a notebook, sparse in logs and CI."""

import sys


def progress_bar(iterable=None, **kwargs):
    """A ``tqdm.auto`` bar (a widget in Jupyter, text elsewhere). Written to a log file or a
    pipe rather than a terminal it redraws at most every 30 s, so logs get a few lines per epoch
    instead of one per batch. Callers update it with ``update``/``set_postfix(...,
    refresh=False)`` and let tqdm decide when to redraw."""
    from tqdm.auto import tqdm
    from tqdm.autonotebook import tqdm as notebook_or_std
    from tqdm.std import tqdm as std

    in_notebook = notebook_or_std is not std
    if not in_notebook and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        kwargs.setdefault("mininterval", 30.0)
    return tqdm(iterable, **kwargs)
