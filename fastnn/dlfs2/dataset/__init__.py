"""The book's vol. 2 data sets: ``ptb`` (Penn Treebank, downloaded once into the cache folder),
``sequence`` (addition.txt generated, date.txt read from the user's file) and ``spiral``."""

import os
from pathlib import Path


def data_dir(name):
    """The folder of data set ``name``: ``$FASTNN_DATA/<name>`` when FASTNN_DATA is set, else
    ``~/.cache/fastnn/<name>`` (where fastnn.datasets keeps MNIST)."""
    env = os.environ.get("FASTNN_DATA")
    if env:
        return Path(env) / name
    return Path(os.path.expanduser("~")) / ".cache" / "fastnn" / name
