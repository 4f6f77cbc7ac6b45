"""The book's ch08/attention_layer.py: WeightSum, AttentionWeight, Attention (one decoder step)
and TimeAttention (every decoder step of a sequence).

TimeAttention computes all T_dec steps at once with batched matrix products, where the book runs
one Attention per step; ``attention_weights`` is the book's list of per-step (N, T_enc) weights.
"""

from .. import ops
from .layers import Softmax
from .np import GPU, np  # noqa: F401

__all__ = ["np", "GPU", "Softmax", "WeightSum", "AttentionWeight", "Attention", "TimeAttention"]


def _forward_first(state, name):
    if state is None:
        raise RuntimeError(f"{name}.backward called before forward")


class WeightSum:
    """Context vector c (N, H) = sum over t of a[:, t] * hs[:, t, :]."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs, a):
        N, T, H = hs.shape
        ar = a.reshape(N, T, 1)
        self.cache = (hs, ar)
        return np.sum(hs * ar, axis=1)

    def backward(self, dc):
        _forward_first(self.cache, "WeightSum")
        hs, ar = self.cache
        N, T, H = hs.shape
        dt = dc.reshape(N, 1, H)
        dhs = dt * ar
        da = np.sum(dt * hs, axis=2)
        return dhs, da


class AttentionWeight:
    """Attention weights a (N, T) = softmax over t of hs[:, t, :] . h."""

    def __init__(self):
        self.params, self.grads = [], []
        self.softmax = Softmax()
        self.cache = None

    def forward(self, hs, h):
        N, T, H = hs.shape
        hr = h.reshape(N, 1, H)
        self.cache = (hs, hr)
        return self.softmax.forward(np.sum(hs * hr, axis=2))

    def backward(self, da):
        _forward_first(self.cache, "AttentionWeight")
        hs, hr = self.cache
        N, T, H = hs.shape
        ds = self.softmax.backward(da).reshape(N, T, 1)
        dhs = ds * hr
        dh = np.sum(ds * hs, axis=1)
        return dhs, dh


class Attention:
    """One decoder step: the weights of h against the encoder states hs, then their weighted
    sum. backward returns (dhs, dh)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.attention_weight_layer = AttentionWeight()
        self.weight_sum_layer = WeightSum()
        self.attention_weight = None

    def forward(self, hs, h):
        a = self.attention_weight_layer.forward(hs, h)
        self.attention_weight = a
        return self.weight_sum_layer.forward(hs, a)

    def backward(self, dout):
        dhs0, da = self.weight_sum_layer.backward(dout)
        dhs1, dh = self.attention_weight_layer.backward(da)
        return dhs0 + dhs1, dh


class TimeAttention:
    """Attention of every decoder state hs_dec[:, t] over the encoder states hs_enc:
    a = softmax(hs_dec @ hs_enc^T) over the encoder steps, out = a @ hs_enc (N, T_dec, H).
    backward returns (dhs_enc, dhs_dec)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.layers = None
        self.attention_weights = None
        self.cache = None

    def forward(self, hs_enc, hs_dec):
        out, a = ops.attention_forward(hs_enc, hs_dec)           # a: (N, T_dec, T_enc)
        self.cache = (hs_enc, hs_dec, a)
        self.attention_weights = [a[:, t, :] for t in range(a.shape[1])]
        return out

    def backward(self, dout):
        _forward_first(self.cache, "TimeAttention")
        hs_enc, hs_dec, a = self.cache
        return ops.attention_backward(hs_enc, hs_dec, a, dout)
