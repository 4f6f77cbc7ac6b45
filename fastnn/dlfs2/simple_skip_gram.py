"""The book's ch03/simple_skip_gram.py: skip-gram on one-hot words (window 1) with MatMul layers
and a full softmax for each of the two context words."""

import numpy as np

from .layers import MatMul, SoftmaxWithLoss

__all__ = ["SimpleSkipGram"]


class SimpleSkipGram:
    def __init__(self, vocab_size, hidden_size):
        V, H = vocab_size, hidden_size
        W_in = 0.01 * np.random.randn(V, H).astype('f')
        W_out = 0.01 * np.random.randn(H, V).astype('f')
        self.in_layer = MatMul(W_in)
        self.out_layer = MatMul(W_out)
        self.loss_layer1 = SoftmaxWithLoss()
        self.loss_layer2 = SoftmaxWithLoss()
        layers = [self.in_layer, self.out_layer]
        self.params = [p for layer in layers for p in layer.params]
        self.grads = [g for layer in layers for g in layer.grads]
        self.word_vecs = W_in

    def forward(self, contexts, target):
        s = self.out_layer.forward(self.in_layer.forward(target))
        return (self.loss_layer1.forward(s, contexts[:, 0])
                + self.loss_layer2.forward(s, contexts[:, 1]))

    def backward(self, dout=1):
        ds = self.loss_layer1.backward(dout) + self.loss_layer2.backward(dout)
        self.in_layer.backward(self.out_layer.backward(ds))
        return None
