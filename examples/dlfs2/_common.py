"""What the vol. 2 examples share: fastnn importable from a source checkout, and the choice of
text (the Penn Treebank when it is on this machine, else the generated corpus)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import corpus as generated  # noqa: E402
from fastnn.dlfs2.dataset import ptb  # noqa: E402


def ptb_present():
    folder = ptb.dataset_dir()
    return all((folder / name).exists() or (folder / ptb.save_file[split]).exists()
               for split, name in ptb.key_file.items())


def load_text(which, data_type="train"):
    """(corpus, word_to_id, id_to_word, name) of 'ptb' (downloaded when missing), 'generated',
    or 'auto' (the PTB when present, else generated)."""
    if which == "ptb" or (which == "auto" and ptb_present()):
        return (*ptb.load_data(data_type), "ptb")
    return (*generated.load_data(data_type), "generated")
