"""examples/addition_seq2seq.py learns: 2-digit addition, a few seconds of training."""

import os
import sys

import pytest

import fastnn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import addition_seq2seq as example  # noqa: E402


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_seq2seq_learns_addition(cell):
    threads = fastnn.get_num_threads()
    fastnn.set_num_threads(1)  # tiny GEMMs: one thread is fastest and robust on a busy machine
    try:
        acc, loss, _ = example.train(digits=2, cell=cell, hidden=64, epochs=6, n_train=6000,
                                     n_test=500, batch=64, lr=0.01, seed=0, verbose=False)
    finally:
        fastnn.set_num_threads(threads)
    # chance is 1 in ~200 answers; ~83% of unseen sums come out exactly right
    assert acc >= 0.7, acc
    assert loss < 0.4, loss
