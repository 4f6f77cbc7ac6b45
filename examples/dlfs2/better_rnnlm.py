"""A language model: the book's BetterRnnlm (two LSTM layers, dropout, weight tying; ch06),
trained with fastnn.dlfs2's RnnlmTrainer and SGD as the book's train_better_rnnlm.py does:
after each epoch the validation perplexity is measured; the best parameters are saved, and the
learning rate is divided by 4 when it gets worse. Finally the test perplexity.

Trains on the Penn Treebank when its files are in fastnn's data folder (``--text ptb`` downloads
them; the book's settings, ``--text ptb --hidden 650 --epochs 40``, need hours), else on a
generated corpus (53 words), where the defaults reach a test perplexity of about 3.3 in half a
minute on two cores (a model that learnt nothing scores about 53).

    python examples/dlfs2/better_rnnlm.py [--text auto|ptb|generated] [--epochs 4]
"""

import argparse
import os
import tempfile
import time

import _common  # noqa: F401  (fastnn importable from a checkout)
from _common import load_text
from fastnn.dlfs2.better_rnnlm import BetterRnnlm
from fastnn.dlfs2.np import np
from fastnn.dlfs2.optimizer import SGD
from fastnn.dlfs2.trainer import RnnlmTrainer
from fastnn.dlfs2.util import eval_perplexity


def train(text="auto", wordvec_size=100, hidden_size=100, dropout=0.5, batch_size=20,
          time_size=35, lr=20.0, max_epoch=4, max_grad=0.25, max_words=None, seed=0,
          eval_interval=None, params_file=None):
    """Returns (model, trainer, list of validation perplexities, test perplexity)."""
    corpus, word_to_id, _, _ = load_text(text, "train")
    corpus_val = load_text(text, "val")[0]
    corpus_test = load_text(text, "test")[0]
    if max_words is not None:
        corpus, corpus_val, corpus_test = (c[:max_words] for c in
                                           (corpus, corpus_val, corpus_test))
    params_file = params_file or os.path.join(tempfile.mkdtemp(), "BetterRnnlm.pkl")
    np.random.seed(seed)
    model = BetterRnnlm(len(word_to_id), wordvec_size, hidden_size, dropout)
    optimizer = SGD(lr)
    trainer = RnnlmTrainer(model, optimizer)

    best_ppl, val_ppls = float("inf"), []
    for _ in range(max_epoch):
        trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=batch_size,
                    time_size=time_size, max_grad=max_grad, eval_interval=eval_interval)
        model.reset_state()
        ppl = float(eval_perplexity(model, corpus_val))
        val_ppls.append(ppl)
        if ppl < best_ppl:
            best_ppl = ppl
            model.save_params(params_file)
        else:
            optimizer.lr /= 4.0
        model.reset_state()
        print(f"valid perplexity {ppl:.2f} (lr {optimizer.lr:g})")

    model.load_params(params_file)
    model.reset_state()
    test_ppl = float(eval_perplexity(model, corpus_test))
    return model, trainer, val_ppls, test_ppl


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", choices=["auto", "ptb", "generated"], default="auto")
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    start = time.perf_counter()
    _, _, _, test_ppl = train(args.text, args.hidden, args.hidden, max_epoch=args.epochs,
                              eval_interval=20)
    print(f"test perplexity {test_ppl:.2f} ({time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
