"""The book's ch04/skip_gram.py: skip-gram predicting each of the ``2 * window_size`` context
ids from the target's Embedding, with one negative-sampling loss per context position."""

from .layers import Embedding
from .negative_sampling_layer import NegativeSamplingLoss
from .np import np

__all__ = ["SkipGram"]


class SkipGram:
    def __init__(self, vocab_size, hidden_size, window_size, corpus):
        V, H = vocab_size, hidden_size
        W_in = 0.01 * np.random.randn(V, H).astype('f')
        W_out = 0.01 * np.random.randn(V, H).astype('f')
        self.in_layer = Embedding(W_in)
        self.loss_layers = [NegativeSamplingLoss(W_out, corpus, power=0.75, sample_size=5)
                            for _ in range(2 * window_size)]
        layers = [self.in_layer] + self.loss_layers
        self.params = [p for layer in layers for p in layer.params]
        self.grads = [g for layer in layers for g in layer.grads]
        self.word_vecs = W_in

    def forward(self, contexts, target):
        h = self.in_layer.forward(target)
        loss = 0
        for i, layer in enumerate(self.loss_layers):
            loss += layer.forward(h, contexts[:, i])
        return loss

    def backward(self, dout=1):
        dh = 0
        for layer in self.loss_layers:
            dh += layer.backward(dout)
        self.in_layer.backward(dh)
        return None
