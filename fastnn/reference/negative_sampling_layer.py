"""Reference EmbeddingDot in plain NumPy, with the behaviour of the book's vol. 2
ch04/negative_sampling_layer.py: the score of each context vector h[i] against the word vector
of its target id, for negative sampling."""

import numpy as np

from .time_layers import Embedding


class EmbeddingDot:
    """out[i] = W[idx[i]] . h[i]; W's gradient goes through an Embedding (zeroed, then the rows
    of dout[:, None] * h added at idx)."""

    def __init__(self, W):
        self.embed = Embedding(W)
        self.params = self.embed.params
        self.grads = self.embed.grads
        self.cache = None

    def forward(self, h, idx):
        target_W = self.embed.forward(idx)       # (N, D), a copy of the rows
        out = np.sum(target_W * h, axis=1)
        self.cache = (h, target_W)
        return out

    def backward(self, dout):
        h, target_W = self.cache
        dout = dout.reshape(dout.shape[0], 1)
        self.embed.backward(dout * h)            # dW = 0; np.add.at(dW, idx, dout * h)
        return dout * target_W                   # dh
