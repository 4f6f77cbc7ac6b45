"""Seq2seq with attention (the book's ch08 AttentionSeq2seq), trained with fastnn.dlfs2's
Trainer and Adam on the book's data sets: dates in many formats -> "YYYY-MM-DD" when the book's
date.txt is in fastnn's data folder (``$FASTNN_DATA/sequence`` or ``~/.cache/fastnn/sequence``)
or given with ``--data path/to/date.txt``, else the generated additions ("57+68" -> "125").
Questions are fed reversed, as the book does. Prints the exact-answer accuracy on the held-out
10% after each epoch and a few decoded examples.

    python examples/dlfs2/attention_seq2seq.py [--data date.txt|addition.txt] [--epochs 10]
"""

import argparse
import os
import time

import _common  # noqa: F401  (fastnn importable from a checkout)
from fastnn.dlfs2.attention_seq2seq import AttentionSeq2seq
from fastnn.dlfs2.dataset import sequence
from fastnn.dlfs2.np import np
from fastnn.dlfs2.optimizer import Adam
from fastnn.dlfs2.trainer import Trainer
from fastnn.dlfs2.util import eval_seq2seq


def default_data():
    """date.txt when the user has put the book's file in the data folder, else addition.txt."""
    if os.path.isfile(os.path.join(sequence.dataset_dir(), "date.txt")):
        return "date.txt"
    return "addition.txt"


def accuracy(model, x, t, id_to_char, verbose=0):
    """Fraction of questions answered exactly; prints the first ``verbose`` of them."""
    correct = 0
    for i in range(len(x)):
        correct += eval_seq2seq(model, x[[i]], t[[i]], id_to_char, verbose=i < verbose,
                                is_reverse=True)
    return correct / max(len(x), 1)


def train(data=None, wordvec_size=16, hidden_size=256, batch_size=128, max_epoch=10,
          max_grad=5.0, lr=0.001, n_train=None, n_test=None, seed=0, eval_interval=None,
          show=0):
    """Returns (model, trainer, accuracy after each epoch)."""
    (x_train, t_train), (x_test, t_test) = sequence.load_data(data or default_data())
    char_to_id, id_to_char = sequence.get_vocab()
    x_train, x_test = x_train[:, ::-1], x_test[:, ::-1]  # reversed questions
    x_train, t_train = x_train[:n_train], t_train[:n_train]
    x_test, t_test = x_test[:n_test], t_test[:n_test]

    np.random.seed(seed)
    model = AttentionSeq2seq(len(char_to_id), wordvec_size, hidden_size)
    trainer = Trainer(model, Adam(lr))
    accs = []
    for epoch in range(max_epoch):
        trainer.fit(x_train, t_train, max_epoch=1, batch_size=batch_size, max_grad=max_grad,
                    eval_interval=eval_interval)
        accs.append(accuracy(model, x_test, t_test, id_to_char, verbose=show))
        print(f"epoch {epoch + 1}: test accuracy {accs[-1] * 100:.1f}%")
    return model, trainer, accs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="date.txt (the book's file) or addition.txt")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=256)
    args = ap.parse_args()
    start = time.perf_counter()
    train(args.data, hidden_size=args.hidden, max_epoch=args.epochs, eval_interval=50, show=3)
    print(f"{time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
