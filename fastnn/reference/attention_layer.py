"""Reference attention layers in plain NumPy, with the behaviour of the book's vol. 2
ch08/attention_layer.py. hs (N, T, H) are the encoder's hidden states, h (N, H) one decoder
state; TimeAttention runs one Attention per decoder step."""

import numpy as np


class Softmax:
    """Softmax over the last axis (max-subtracted); backward through the Jacobian."""

    def __init__(self):
        self.params, self.grads = [], []
        self.out = None

    def forward(self, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        self.out = e / e.sum(axis=-1, keepdims=True)
        return self.out

    def backward(self, dout):
        dx = self.out * dout
        return dx - self.out * dx.sum(axis=-1, keepdims=True)


class WeightSum:
    """c = sum over T of hs weighted by a (N, T): the context vector (N, H)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs, a):
        N, T, H = hs.shape
        ar = a.reshape(N, T, 1)
        c = np.sum(hs * ar, axis=1)
        self.cache = (hs, ar)
        return c

    def backward(self, dc):
        hs, ar = self.cache
        N, T, H = hs.shape
        dt = dc.reshape(N, 1, H).repeat(T, axis=1)
        dhs = dt * ar
        da = np.sum(dt * hs, axis=2)
        return dhs, da


class AttentionWeight:
    """a = softmax over T of the scores hs . h (N, T)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.softmax = Softmax()
        self.cache = None

    def forward(self, hs, h):
        N, T, H = hs.shape
        hr = h.reshape(N, 1, H)
        s = np.sum(hs * hr, axis=2)
        a = self.softmax.forward(s)
        self.cache = (hs, hr)
        return a

    def backward(self, da):
        hs, hr = self.cache
        N, T, H = hs.shape
        ds = self.softmax.backward(da)
        dt = ds.reshape(N, T, 1).repeat(H, axis=2)
        dhs = dt * hr
        dh = np.sum(dt * hs, axis=1)
        return dhs, dh


class Attention:
    """AttentionWeight then WeightSum: the context vector of one decoder step."""

    def __init__(self):
        self.params, self.grads = [], []
        self.attention_weight_layer = AttentionWeight()
        self.weight_sum_layer = WeightSum()
        self.attention_weight = None

    def forward(self, hs, h):
        a = self.attention_weight_layer.forward(hs, h)
        out = self.weight_sum_layer.forward(hs, a)
        self.attention_weight = a
        return out

    def backward(self, dout):
        dhs0, da = self.weight_sum_layer.backward(dout)
        dhs1, dh = self.attention_weight_layer.backward(da)
        return dhs0 + dhs1, dh


class TimeAttention:
    """One Attention per decoder step t over hs_dec (N, Td, H); the encoder's gradient is the
    sum over the steps."""

    def __init__(self):
        self.params, self.grads = [], []
        self.layers = None
        self.attention_weights = None

    def forward(self, hs_enc, hs_dec):
        N, T, H = hs_dec.shape
        out = np.empty_like(hs_dec, dtype=np.result_type(hs_enc, hs_dec))
        self.layers = []
        self.attention_weights = []
        for t in range(T):
            layer = Attention()
            out[:, t, :] = layer.forward(hs_enc, hs_dec[:, t, :])
            self.layers.append(layer)
            self.attention_weights.append(layer.attention_weight)
        return out

    def backward(self, dout):
        N, T, H = dout.shape
        dhs_enc = 0
        dhs_dec = np.empty_like(dout)
        for t in range(T):
            dhs, dh = self.layers[t].backward(dout[:, t, :])
            dhs_enc += dhs
            dhs_dec[:, t, :] = dh
        return dhs_enc, dhs_dec
