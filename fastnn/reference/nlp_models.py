"""Reference versions of vol. 2's chapter models, built from the reference layers: the
BetterRnnlm language model (ch06), Seq2seq in its plain and "peeky" forms (ch07),
AttentionSeq2seq (ch08) and CBOW with negative sampling (ch04).

Written apart from fastnn.dlfs2's models (one class per family, the decoder's variants as
branches), so a test training both from one np.random seed checks the models' wiring as well as
their layers. Weights are drawn in the book's order and way (np.random.randn, scaled, float32),
so both start from the same numbers.
"""

import numpy as np

from .time_layers import (Embedding, TimeAffine, TimeDropout, TimeEmbedding, TimeLSTM,
                          TimeSoftmaxWithLoss)
from .word_layers import NegativeSamplingLoss, TimeAttention


def _randn(rows, cols, scale):
    return (np.random.randn(rows, cols) / scale).astype(np.float32)


def _lstm(D, H, stateful):
    """A TimeLSTM with the book's initialisation: Wx ~ N(0, 1/D), Wh ~ N(0, 1/H), b = 0."""
    Wx, Wh = _randn(D, 4 * H, np.sqrt(D)), _randn(H, 4 * H, np.sqrt(H))
    return TimeLSTM(Wx, Wh, np.zeros(4 * H, np.float32), stateful=stateful)


def _collect(layers):
    return ([p for layer in layers for p in layer.params],
            [g for layer in layers for g in layer.grads])


class BetterRnnlm:
    """Embedding -> dropout -> LSTM -> dropout -> LSTM -> dropout -> Affine(embed_W.T)."""

    def __init__(self, vocab_size=10000, wordvec_size=650, hidden_size=650, dropout_ratio=0.5):
        V, D, H = vocab_size, wordvec_size, hidden_size
        embed_W = _randn(V, D, 100)
        self.lstms = [_lstm(D, H, True), _lstm(H, H, True)]
        self.drops = [TimeDropout(dropout_ratio) for _ in range(3)]
        self.embed = TimeEmbedding(embed_W)
        self.affine = TimeAffine(embed_W.T, np.zeros(V, np.float32))
        self.loss_layer = TimeSoftmaxWithLoss()
        self.stack = [self.embed, self.drops[0], self.lstms[0], self.drops[1], self.lstms[1],
                      self.drops[2], self.affine]
        self.params, self.grads = _collect(self.stack)

    def forward(self, xs, ts, train_flg=True):
        for d in self.drops:
            d.train_flg = train_flg
        for layer in self.stack:
            xs = layer.forward(xs)
        return self.loss_layer.forward(xs, ts)

    def backward(self, dout=1):
        d = self.loss_layer.backward(dout)
        for layer in self.stack[::-1]:
            d = layer.backward(d)
        return d

    def reset_state(self):
        for lstm in self.lstms:
            lstm.reset_state()


class Seq2seq:
    """Encoder LSTM -> its last state starts the decoder LSTM. ``decoder``: 'plain', 'peeky'
    (the state is also concatenated before the decoder's LSTM input and its Affine input) or
    'attention' (the Affine reads [attention context, LSTM output])."""

    def __init__(self, vocab_size, wordvec_size, hidden_size, decoder="plain"):
        V, D, H = vocab_size, wordvec_size, hidden_size
        self.kind, self.H = decoder, H
        self.enc_embed = TimeEmbedding(_randn(V, D, 100))
        self.enc_lstm = _lstm(D, H, False)
        self.dec_embed = TimeEmbedding(_randn(V, D, 100))
        self.dec_lstm = _lstm(D + H if decoder == "peeky" else D, H, True)
        A = H if decoder == "plain" else 2 * H
        self.affine = TimeAffine(_randn(A, V, np.sqrt(A)), np.zeros(V, np.float32))
        self.attention = TimeAttention() if decoder == "attention" else None
        self.loss_layer = TimeSoftmaxWithLoss()
        self.params, self.grads = _collect([self.enc_embed, self.enc_lstm, self.dec_embed,
                                            self.dec_lstm, self.affine])
        self.cache = None

    def _scores(self, dec_xs, enc_hs, h):
        """Decoder scores for ids dec_xs, continuing from the decoder LSTM's current state."""
        e = self.dec_embed.forward(dec_xs)
        T = dec_xs.shape[1]
        peek = np.broadcast_to(h[:, np.newaxis, :], (h.shape[0], T, self.H))
        if self.kind == "peeky":
            e = np.concatenate([peek, e], axis=2)
        out = self.dec_lstm.forward(e)
        if self.kind == "peeky":
            out = np.concatenate([peek, out], axis=2)
        elif self.kind == "attention":
            out = np.concatenate([self.attention.forward(enc_hs, out), out], axis=2)
        return self.affine.forward(out)

    def forward(self, xs, ts):
        enc_hs = self.enc_lstm.forward(self.enc_embed.forward(xs))
        h = enc_hs[:, -1, :]
        self.dec_lstm.set_state(h)
        self.cache = enc_hs
        return self.loss_layer.forward(self._scores(ts[:, :-1], enc_hs, h), ts[:, 1:])

    def backward(self, dout=1):
        H, enc_hs = self.H, self.cache
        d = self.affine.backward(self.loss_layer.backward(dout))
        d_enc_hs = np.zeros_like(enc_hs)
        d_h = 0
        if self.kind == "peeky":
            d_h = d[:, :, :H].sum(axis=1)
            d = d[:, :, H:]
        elif self.kind == "attention":
            d_enc_hs, d_dec = self.attention.backward(d[:, :, :H])
            d = d[:, :, H:] + d_dec
        d = self.dec_lstm.backward(d)
        if self.kind == "peeky":
            d_h = d_h + d[:, :, :H].sum(axis=1)
            d = d[:, :, H:]
        self.dec_embed.backward(d)
        d_enc_hs[:, -1, :] += self.dec_lstm.dh + d_h
        self.enc_embed.backward(self.enc_lstm.backward(d_enc_hs))

    def generate(self, xs, start_id, sample_size):
        """Greedy decoding of ``sample_size`` ids for one question."""
        enc_hs = self.enc_lstm.forward(self.enc_embed.forward(xs))
        h = enc_hs[:, -1, :]
        self.dec_lstm.set_state(h)
        ids, cur = [], start_id
        for _ in range(sample_size):
            cur = int(np.argmax(self._scores(np.array([[cur]]), enc_hs, h)))
            ids.append(cur)
        return ids


class CBOW:
    """The mean of the ``2 * window_size`` context words' embeddings predicts the target through
    negative sampling."""

    def __init__(self, vocab_size, hidden_size, window_size, corpus):
        V, H = vocab_size, hidden_size
        W_in = 0.01 * np.random.randn(V, H).astype(np.float32)
        W_out = 0.01 * np.random.randn(V, H).astype(np.float32)
        self.in_layers = [Embedding(W_in) for _ in range(2 * window_size)]
        self.ns_loss = NegativeSamplingLoss(W_out, corpus, power=0.75, sample_size=5)
        self.params, self.grads = _collect(self.in_layers + [self.ns_loss])
        self.word_vecs = W_in

    def forward(self, contexts, target):
        n = len(self.in_layers)
        h = sum(layer.forward(contexts[:, i]) for i, layer in enumerate(self.in_layers))
        return self.ns_loss.forward(h * (1 / n), target)

    def backward(self, dout=1):
        dh = self.ns_loss.backward(dout) * (1 / len(self.in_layers))
        for layer in self.in_layers:
            layer.backward(dh)
