"""word2vec: the book's CBOW with negative sampling (ch04), trained with fastnn.dlfs2, then the
words nearest to a few queries.

Trains on the Penn Treebank when its files are in fastnn's data folder (``--text ptb`` downloads
them), else on a generated corpus whose words of one kind share contexts. The book's settings
(window 5, 100 dimensions, batch 100, Adam(0.001), 10 epochs on PTB) take hours on two cores;
the defaults here (window 2, 50 dimensions, Adam(0.01), 3 epochs) train the generated text in
about 90 s and put animals next to animals, foods next to foods (one epoch already does).

    python examples/dlfs2/word2vec_cbow.py [--text auto|ptb|generated] [--epochs 10]
"""

import argparse
import time

import _common  # noqa: F401  (fastnn importable from a checkout)
from _common import load_text
from fastnn.dlfs2.cbow import CBOW
from fastnn.dlfs2.np import np
from fastnn.dlfs2.optimizer import Adam
from fastnn.dlfs2.trainer import Trainer
from fastnn.dlfs2.util import cos_similarity, create_contexts_target, most_similar


def train(text="auto", window_size=2, hidden_size=50, batch_size=100, max_epoch=3, lr=0.01,
          max_words=None, seed=0, eval_interval=None):
    """Returns (model, trainer, word_to_id, id_to_word)."""
    corpus, word_to_id, id_to_word, _ = load_text(text)
    if max_words is not None:
        corpus = corpus[:max_words]
    np.random.seed(seed)
    contexts, target = create_contexts_target(corpus, window_size)
    model = CBOW(len(word_to_id), hidden_size, window_size, corpus)
    trainer = Trainer(model, Adam(lr))
    trainer.fit(contexts, target, max_epoch, batch_size, eval_interval=eval_interval)
    return model, trainer, word_to_id, id_to_word


def similarity(model, word_to_id, a, b):
    vecs = model.word_vecs
    return float(cos_similarity(vecs[word_to_id[a]], vecs[word_to_id[b]]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", choices=["auto", "ptb", "generated"], default="auto")
    ap.add_argument("--window", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.01)
    args = ap.parse_args()
    start = time.perf_counter()
    model, _, word_to_id, id_to_word = train(args.text, args.window, args.hidden,
                                             max_epoch=args.epochs, lr=args.lr,
                                             eval_interval=200)
    print(f"trained in {time.perf_counter() - start:.0f}s")
    queries = ["you", "year", "car", "toyota"] if "toyota" in word_to_id else \
        ["cat", "bread", "school", "eats"]
    for query in queries:
        most_similar(query, word_to_id, id_to_word, model.word_vecs, top=5)


if __name__ == "__main__":
    main()
