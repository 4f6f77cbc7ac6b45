"""The book's ch04/negative_sampling_layer.py: EmbeddingDot, UnigramSampler and
NegativeSamplingLoss.

NegativeSamplingLoss scores the target and its ``sample_size`` negative samples of a batch in
one gather and one product (the book runs sample_size + 1 EmbeddingDot/SigmoidWithLoss pairs);
the loss is the same sum of sample_size + 1 batch means, and ``params``/``grads`` hold W once.
The samples are drawn as the book draws them, so a seeded program sees the book's samples.
"""

import collections

from .. import ops
from .layers import Embedding, SigmoidWithLoss  # noqa: F401
from .np import GPU, np

__all__ = ["np", "GPU", "Embedding", "SigmoidWithLoss", "EmbeddingDot", "UnigramSampler",
           "NegativeSamplingLoss"]


class EmbeddingDot:
    """out[i] = W[idx[i]] . h[i]: the score of word idx[i] for hidden vector h[i], gathered and
    multiplied in one kernel (``cache`` holds h and idx; the rows of W are read again by
    backward, which scatter-adds into the embedding's dW as the book's does)."""

    def __init__(self, W):
        self.embed = Embedding(W)
        self.params = self.embed.params
        self.grads = self.embed.grads
        self.cache = None

    def forward(self, h, idx):
        self.cache = (h, idx)
        return ops.embedding_dot_forward(self.params[0], idx, h)

    def backward(self, dout):
        if self.cache is None:
            raise RuntimeError("EmbeddingDot.backward called before forward")
        h, idx = self.cache
        return ops.embedding_dot_backward(self.grads[0], idx, h, dout, self.params[0])


class UnigramSampler:
    """Negative samples drawn from the corpus' unigram distribution raised to ``power``.

    ``word_p[i]`` is the probability of word id i (ids 0 .. vocab_size - 1, vocab_size being the
    number of distinct ids in the corpus). On the CPU each row's ``sample_size`` samples are
    distinct and never its target (``np.random.choice(..., replace=False)`` per row, as the
    book); on the GPU they are drawn with replacement, targets included, as the book does."""

    def __init__(self, corpus, power, sample_size):
        self.sample_size = sample_size
        counts = collections.Counter()
        for word_id in corpus:
            counts[word_id] += 1
        self.vocab_size = len(counts)
        self.word_p = np.zeros(self.vocab_size)
        for i in range(self.vocab_size):
            self.word_p[i] = counts[i]
        self.word_p = np.power(self.word_p, power)
        self.word_p /= np.sum(self.word_p)

    def get_negative_sample(self, target):
        batch_size = target.shape[0]
        if GPU:
            return np.random.choice(self.vocab_size, size=(batch_size, self.sample_size),
                                    replace=True, p=self.word_p)
        negative_sample = np.zeros((batch_size, self.sample_size), dtype=np.int32)
        for i in range(batch_size):
            p = self.word_p.copy()
            p[target[i]] = 0
            p /= p.sum()
            negative_sample[i, :] = np.random.choice(self.vocab_size, size=self.sample_size,
                                                     replace=False, p=p)
        return negative_sample


class NegativeSamplingLoss:
    """Binary cross-entropy of the target's score (label 1) plus that of each of
    ``sample_size`` negative samples (label 0), each averaged over the batch:
    loss = -sum log(p + 1e-7) / N with p = sigmoid(score) for the target and
    1 - sigmoid(score) for the samples. backward returns dh."""

    def __init__(self, W, corpus, power=0.75, sample_size=5):
        self.sample_size = sample_size
        self.sampler = UnigramSampler(corpus, power, sample_size)
        self.embed = Embedding(W)
        self.params, self.grads = self.embed.params, self.embed.grads
        self.cache = None

    def forward(self, h, target):
        batch_size = target.shape[0]
        negative_sample = self.sampler.get_negative_sample(target)
        idx = np.concatenate([np.asarray(target).reshape(batch_size, 1).astype(np.int32),
                              negative_sample.astype(np.int32)], axis=1)     # (N, 1 + S)
        label = np.zeros(idx.shape, dtype=np.int32)
        label[:, 0] = 1
        rows = np.repeat(h, idx.shape[1], axis=0)                             # (N (1 + S), D)
        W = self.params[0]
        score = ops.embedding_dot_forward(W, idx.ravel(), rows).reshape(idx.shape)
        y = 1 / (1 + np.exp(-score))
        picked = np.where(label == 1, y, 1 - y)
        self.cache = (rows, idx, y, label)
        return -np.sum(np.log(picked + 1e-7)) / batch_size

    def backward(self, dout=1):
        if self.cache is None:
            raise RuntimeError("NegativeSamplingLoss.backward called before forward")
        rows, idx, y, label = self.cache
        dscore = (y - label) * dout / label.shape[0]                         # (N, 1 + S)
        drows = ops.embedding_dot_backward(self.grads[0], idx.ravel(), rows,
                                            dscore.ravel().astype(rows.dtype, copy=False),
                                            self.params[0])
        return drows.reshape(idx.shape + (-1,)).sum(axis=1)
