"""Learn integer addition ("57+68" -> "125") with a seq2seq model built from fastnn.time_layers.

The data is generated here. The question is fed reversed (the book's trick), and the decoder
"peeks" at the encoder's last state at every step (it is concatenated to the decoder's input
and to its output). Trained with fastnn's Adam and clip_grads (gradient clipping). With the
defaults (3-digit operands, LSTM, H=128, 50000 questions, 10 epochs; about 100 s on one core)
90% of 1000 unseen questions are answered exactly (87-97% over the last epochs). The test trains on 2-digit sums
for a few seconds (about 83% exact) and requires >= 70%.

    python examples/addition_seq2seq.py [--digits 3] [--cell lstm|gru] [--epochs 20]
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from fastnn.dlfs2.util import clip_grads  # noqa: E402
from fastnn.optim import Adam  # noqa: E402
from fastnn.time_layers import (TimeAffine, TimeEmbedding, TimeGRU, TimeLSTM,  # noqa: E402
                                TimeSoftmaxWithLoss)

CHARS = "0123456789+ _"
CHAR_ID = {c: i for i, c in enumerate(CHARS)}


def make_dataset(n, digits, rng):
    """n questions "a+b" (padded) and answers "_sum" (padded), as id arrays."""
    hi = 10 ** digits
    a, b = rng.integers(0, hi, n), rng.integers(0, hi, n)
    q_len, a_len = 2 * digits + 1, digits + 2
    questions = [f"{x}+{y}".ljust(q_len) for x, y in zip(a, b)]
    answers = [f"_{x + y}".ljust(a_len) for x, y in zip(a, b)]
    to_ids = lambda rows: np.array([[CHAR_ID[c] for c in r] for r in rows])  # noqa: E731
    return to_ids(questions)[:, ::-1].copy(), to_ids(answers)


class PeekySeq2seq:
    """Encoder (embedding + RNN) -> last state h -> decoder fed [embedding, h] at every step."""

    def __init__(self, V, D, H, cell, rng):
        Time, gates = {"lstm": (TimeLSTM, 4), "gru": (TimeGRU, 3)}[cell]
        f = np.float32

        def w(*shape):
            return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(f)

        self.enc_embed = TimeEmbedding((rng.standard_normal((V, D)) * 0.01).astype(f))
        self.enc_rnn = Time(w(D, gates * H), w(H, gates * H), np.zeros(gates * H, f))
        self.dec_embed = TimeEmbedding((rng.standard_normal((V, D)) * 0.01).astype(f))
        self.dec_rnn = Time(w(D + H, gates * H), w(H, gates * H), np.zeros(gates * H, f),
                            stateful=True)
        self.affine = TimeAffine(w(2 * H, V), np.zeros(V, f))
        self.loss_layer = TimeSoftmaxWithLoss()
        layers = [self.enc_embed, self.enc_rnn, self.dec_embed, self.dec_rnn, self.affine]
        self.params = [p for layer in layers for p in layer.params]
        self.grads = [g for layer in layers for g in layer.grads]
        self.H = H

    def encode(self, xs):
        self._enc_T = xs.shape[1]
        return self.enc_rnn.forward(self.enc_embed.forward(xs))[:, -1, :]

    def decode_scores(self, h, ts_in):
        N, T = ts_in.shape
        self.dec_rnn.set_state(h)
        peek = np.repeat(h[:, np.newaxis, :], T, axis=1)
        out = self.dec_rnn.forward(np.concatenate([self.dec_embed.forward(ts_in), peek], axis=2))
        return self.affine.forward(np.concatenate([out, peek], axis=2))

    def forward(self, xs, ts):
        self._h = self.encode(xs)
        return self.loss_layer.forward(self.decode_scores(self._h, ts[:, :-1]), ts[:, 1:])

    def backward(self):
        H = self.H
        d = self.affine.backward(self.loss_layer.backward())
        d_dec, dh = d[:, :, :H], d[:, :, H:].sum(axis=1)
        dx = self.dec_rnn.backward(d_dec)
        self.dec_embed.backward(dx[:, :, :-H])
        dh = dh + dx[:, :, -H:].sum(axis=1) + self.dec_rnn.dh
        dhs = np.zeros((dh.shape[0], self._enc_T, H), dtype=dh.dtype)
        dhs[:, -1, :] = dh
        self.enc_embed.backward(self.enc_rnn.backward(dhs))

    def generate(self, xs, start_id, length):
        """Greedy decoding, one step at a time, for a whole batch."""
        h = self.encode(xs)
        self.dec_rnn.set_state(h)
        ids = np.full((xs.shape[0], 1), start_id)
        out = []
        for _ in range(length):
            peek = h[:, np.newaxis, :]
            y = self.dec_rnn.forward(np.concatenate([self.dec_embed.forward(ids), peek], axis=2))
            ids = self.affine.forward(np.concatenate([y, peek], axis=2)).argmax(axis=2)
            out.append(ids[:, 0])
        return np.stack(out, axis=1)


def accuracy(model, xs, ts):
    """Fraction of questions whose whole answer is generated exactly."""
    pred = model.generate(xs, CHAR_ID["_"], ts.shape[1] - 1)
    return float(np.mean(np.all(pred == ts[:, 1:], axis=1)))


def train(digits=3, cell="lstm", hidden=128, embed=16, epochs=20, n_train=50000, n_test=1000,
          batch=64, lr=0.01, seed=0, time_budget=None, verbose=True):
    """Train; returns (test accuracy, final mean loss, seconds). Stops early at time_budget s."""
    rng = np.random.default_rng(seed)
    x_train, t_train = make_dataset(n_train, digits, rng)
    x_test, t_test = make_dataset(n_test, digits, rng)
    model = PeekySeq2seq(len(CHARS), embed, hidden, cell, rng)
    opt = Adam(lr)
    start = time.perf_counter()
    loss = float("nan")
    for epoch in range(epochs):
        order = rng.permutation(n_train)
        losses = []
        for i in range(0, n_train - batch + 1, batch):
            idx = order[i:i + batch]
            losses.append(model.forward(x_train[idx], t_train[idx]))
            model.backward()
            clip_grads(model.grads, 5.0)
            opt.update(model.params, model.grads)
        loss = float(np.mean(losses))
        elapsed = time.perf_counter() - start
        if verbose:
            print(f"epoch {epoch + 1:3d}  loss {loss:.4f}  "
                  f"test acc {accuracy(model, x_test, t_test):.3f}  {elapsed:.1f}s")
        if time_budget is not None and elapsed > time_budget:
            break
    return accuracy(model, x_test, t_test), loss, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits", type=int, default=3)
    ap.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--n-train", type=int, default=50000)
    args = ap.parse_args()
    acc, loss, secs = train(args.digits, args.cell, args.hidden, epochs=args.epochs,
                            n_train=args.n_train)
    print(f"final test accuracy {acc:.3f} (loss {loss:.4f}, {secs:.1f}s)")


if __name__ == "__main__":
    main()
