"""Reference layers of vol. 2's word2vec and attention chapters (and the two vol. 2 layers the
other reference modules lack), in plain NumPy, one object per step as the book explains them.

MatMul, SigmoidWithLoss; EmbeddingDot, UnigramSampler, NegativeSamplingLoss (one EmbeddingDot
and one SigmoidWithLoss per target and per negative sample, all sharing W); WeightSum,
AttentionWeight, Attention and TimeAttention (one Attention per decoder step). Every layer has
``params``/``grads`` lists, grads overwritten in place.
"""

import collections

import numpy as np

from .time_layers import Embedding


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


class MatMul:
    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.x = None

    def forward(self, x):
        self.x = x
        return x @ self.params[0]

    def backward(self, dout):
        self.grads[0][...] = self.x.T @ dout
        return dout @ self.params[0].T


class SigmoidWithLoss:
    """y = sigmoid(x); loss = mean over the batch of -log(p + 1e-7), p = y where t is 1 and
    1 - y where t is 0."""

    def __init__(self):
        self.params, self.grads = [], []
        self.y = self.t = None

    def forward(self, x, t):
        self.t, self.y = t, _sigmoid(x)
        p = np.where(t == 1, self.y, 1 - self.y)
        return -np.sum(np.log(p + 1e-7)) / len(t)

    def backward(self, dout=1):
        return (self.y - self.t) * dout / len(self.t)


class EmbeddingDot:
    """score[i] = W[idx[i]] . h[i]."""

    def __init__(self, W):
        self.embed = Embedding(W)
        self.params, self.grads = self.embed.params, self.embed.grads
        self.cache = None

    def forward(self, h, idx):
        rows = self.embed.forward(idx)
        self.cache = (h, rows)
        return (rows * h).sum(axis=1)

    def backward(self, dout):
        h, rows = self.cache
        dout = dout[:, np.newaxis]
        self.embed.backward(dout * h)
        return dout * rows


class UnigramSampler:
    """Draws, for each target, sample_size distinct other words with probability proportional
    to count ** power, one np.random.choice call per target."""

    def __init__(self, corpus, power, sample_size):
        self.sample_size = sample_size
        counts = collections.Counter(int(w) for w in corpus)
        self.vocab_size = len(counts)
        p = np.array([counts[i] for i in range(self.vocab_size)], dtype=np.float64) ** power
        self.word_p = p / p.sum()

    def get_negative_sample(self, target):
        samples = np.zeros((len(target), self.sample_size), dtype=np.int32)
        for i, word in enumerate(target):
            p = self.word_p.copy()
            p[word] = 0
            p /= p.sum()
            samples[i] = np.random.choice(self.vocab_size, size=self.sample_size, replace=False,
                                          p=p)
        return samples


class NegativeSamplingLoss:
    """The target scored against label 1 and each negative sample against label 0, each by its
    own EmbeddingDot + SigmoidWithLoss (all sharing W); the loss is the sum of their losses."""

    def __init__(self, W, corpus, power=0.75, sample_size=5):
        self.sample_size = sample_size
        self.sampler = UnigramSampler(corpus, power, sample_size)
        self.loss_layers = [SigmoidWithLoss() for _ in range(sample_size + 1)]
        self.embed_dot_layers = [EmbeddingDot(W) for _ in range(sample_size + 1)]
        self.params = [p for layer in self.embed_dot_layers for p in layer.params]
        self.grads = [g for layer in self.embed_dot_layers for g in layer.grads]

    def forward(self, h, target):
        negative = self.sampler.get_negative_sample(target)
        words = [target] + [negative[:, i] for i in range(self.sample_size)]
        loss = 0
        for k, (dot, sig) in enumerate(zip(self.embed_dot_layers, self.loss_layers)):
            label = np.full(len(target), 1 if k == 0 else 0, dtype=np.int32)
            loss += sig.forward(dot.forward(h, words[k]), label)
        return loss

    def backward(self, dout=1):
        dh = 0
        for dot, sig in zip(self.embed_dot_layers, self.loss_layers):
            dh = dh + dot.backward(sig.backward(dout))
        return dh


def _softmax_rows(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class WeightSum:
    """c = sum over t of a[:, t] * hs[:, t]."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs, a):
        self.cache = (hs, a)
        return (hs * a[:, :, np.newaxis]).sum(axis=1)

    def backward(self, dc):
        hs, a = self.cache
        dhs = dc[:, np.newaxis, :] * a[:, :, np.newaxis]
        da = (dc[:, np.newaxis, :] * hs).sum(axis=2)
        return dhs, da


class AttentionWeight:
    """a = softmax over t of hs[:, t] . h."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs, h):
        a = _softmax_rows((hs * h[:, np.newaxis, :]).sum(axis=2))
        self.cache = (hs, h, a)
        return a

    def backward(self, da):
        hs, h, a = self.cache
        ds = a * (da - (a * da).sum(axis=1, keepdims=True))
        dhs = ds[:, :, np.newaxis] * h[:, np.newaxis, :]
        dh = (ds[:, :, np.newaxis] * hs).sum(axis=1)
        return dhs, dh


class Attention:
    def __init__(self):
        self.params, self.grads = [], []
        self.attention_weight_layer = AttentionWeight()
        self.weight_sum_layer = WeightSum()
        self.attention_weight = None

    def forward(self, hs, h):
        self.attention_weight = self.attention_weight_layer.forward(hs, h)
        return self.weight_sum_layer.forward(hs, self.attention_weight)

    def backward(self, dout):
        dhs0, da = self.weight_sum_layer.backward(dout)
        dhs1, dh = self.attention_weight_layer.backward(da)
        return dhs0 + dhs1, dh


class TimeAttention:
    """One Attention per decoder step t over all encoder states."""

    def __init__(self):
        self.params, self.grads = [], []
        self.layers = None
        self.attention_weights = None

    def forward(self, hs_enc, hs_dec):
        T = hs_dec.shape[1]
        self.layers = [Attention() for _ in range(T)]
        out = np.empty_like(hs_dec)
        for t, layer in enumerate(self.layers):
            out[:, t, :] = layer.forward(hs_enc, hs_dec[:, t, :])
        self.attention_weights = [layer.attention_weight for layer in self.layers]
        return out

    def backward(self, dout):
        dhs_enc = 0
        dhs_dec = np.empty_like(dout)
        for t, layer in enumerate(self.layers):
            dhs, dh = layer.backward(dout[:, t, :])
            dhs_enc = dhs_enc + dhs
            dhs_dec[:, t, :] = dh
        return dhs_enc, dhs_dec
