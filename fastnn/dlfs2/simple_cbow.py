"""The book's ch03/simple_cbow.py: CBOW on one-hot contexts (window 1) with MatMul layers and
a full softmax."""

import numpy as np

from .layers import MatMul, SoftmaxWithLoss

__all__ = ["SimpleCBOW"]


class SimpleCBOW:
    def __init__(self, vocab_size, hidden_size):
        V, H = vocab_size, hidden_size
        W_in = 0.01 * np.random.randn(V, H).astype('f')
        W_out = 0.01 * np.random.randn(H, V).astype('f')
        self.in_layer0 = MatMul(W_in)
        self.in_layer1 = MatMul(W_in)
        self.out_layer = MatMul(W_out)
        self.loss_layer = SoftmaxWithLoss()
        layers = [self.in_layer0, self.in_layer1, self.out_layer]
        self.params = [p for layer in layers for p in layer.params]
        self.grads = [g for layer in layers for g in layer.grads]
        self.word_vecs = W_in

    def forward(self, contexts, target):
        h = (self.in_layer0.forward(contexts[:, 0]) + self.in_layer1.forward(contexts[:, 1])) * 0.5
        return self.loss_layer.forward(self.out_layer.forward(h), target)

    def backward(self, dout=1):
        da = self.out_layer.backward(self.loss_layer.backward(dout))
        da *= 0.5
        self.in_layer1.backward(da)
        self.in_layer0.backward(da)
        return None
