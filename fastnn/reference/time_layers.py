"""Reference time layers in plain NumPy, with the behaviour of the book's vol. 2 time_layers.

Sequences are batch-major (N, T, D). A Time* layer runs one cell object per time step and sums
their weight gradients; ``grads`` arrays are overwritten in place so optimizers holding them see
the new values. Weight layout: Wx (D, gH), Wh (H, gH), b (gH,), gates in H-wide blocks.
"""

import numpy as np


def _sigmoid(x):
    with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x: the result is 0
        return 1.0 / (1.0 + np.exp(-x))


def _softmax_rows(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class RNN:
    """One tanh RNN step: h_next = tanh(h_prev @ Wh + x @ Wx + b)."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        h_next = np.tanh(h_prev @ Wh + x @ Wx + b)
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next):
        Wx, Wh, b = self.params
        x, h_prev, h_next = self.cache
        dpre = dh_next * (1 - h_next ** 2)
        self.grads[0][...] = x.T @ dpre
        self.grads[1][...] = h_prev.T @ dpre
        self.grads[2][...] = dpre.sum(axis=0)
        return dpre @ Wx.T, dpre @ Wh.T


class LSTM:
    """One LSTM step; A = x @ Wx + h_prev @ Wh + b holds the gates f, g, i, o in that order."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        H = h_prev.shape[1]
        A = x @ Wx + h_prev @ Wh + b
        f = _sigmoid(A[:, :H])
        g = np.tanh(A[:, H:2 * H])
        i = _sigmoid(A[:, 2 * H:3 * H])
        o = _sigmoid(A[:, 3 * H:])
        c_next = f * c_prev + g * i
        h_next = o * np.tanh(c_next)
        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next

    def backward(self, dh_next, dc_next):
        Wx, Wh, b = self.params
        x, h_prev, c_prev, i, f, g, o, c_next = self.cache
        tc = np.tanh(c_next)
        dc = dc_next + dh_next * o * (1 - tc ** 2)
        dA = np.hstack((dc * c_prev * f * (1 - f),   # f
                        dc * i * (1 - g ** 2),       # g
                        dc * g * i * (1 - i),        # i
                        dh_next * tc * o * (1 - o)))  # o
        self.grads[0][...] = x.T @ dA
        self.grads[1][...] = h_prev.T @ dA
        self.grads[2][...] = dA.sum(axis=0)
        return dA @ Wx.T, dA @ Wh.T, dc * f


class GRU:
    """One GRU step with blocks z, r, h~: h_next = (1 - z) * h_prev + z * h~, where
    h~ = tanh(x @ Wxh + (r * h_prev) @ Whh + bh)."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        H = Wh.shape[0]
        zr = _sigmoid(x @ Wx[:, :2 * H] + h_prev @ Wh[:, :2 * H] + b[:2 * H])
        z, r = zr[:, :H], zr[:, H:]
        h_hat = np.tanh(x @ Wx[:, 2 * H:] + (r * h_prev) @ Wh[:, 2 * H:] + b[2 * H:])
        self.cache = (x, h_prev, z, r, h_hat)
        return (1 - z) * h_prev + z * h_hat

    def backward(self, dh_next):
        Wx, Wh, b = self.params
        H = Wh.shape[0]
        x, h_prev, z, r, h_hat = self.cache
        dn = dh_next * z * (1 - h_hat ** 2)
        d_rh = dn @ Wh[:, 2 * H:].T
        dz = dh_next * (h_hat - h_prev) * z * (1 - z)
        dr = d_rh * h_prev * r * (1 - r)
        dzr = np.hstack((dz, dr))
        dWh = np.hstack((h_prev.T @ dzr, (r * h_prev).T @ dn))
        dA = np.hstack((dzr, dn))
        self.grads[0][...] = x.T @ dA
        self.grads[1][...] = dWh
        self.grads[2][...] = dA.sum(axis=0)
        dh_prev = dh_next * (1 - z) + r * d_rh + dzr @ Wh[:, :2 * H].T
        return dA @ Wx.T, dh_prev


class _TimeRecurrent:
    """The time loop shared by TimeRNN, TimeLSTM and TimeGRU (has_cell: LSTM's c state)."""

    cell = None
    has_cell = False

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h, self.c, self.dh = None, None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        dtype = np.result_type(xs, Wx)
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=dtype)
        if self.has_cell and (not self.stateful or self.c is None):
            self.c = np.zeros((N, H), dtype=dtype)
        hs = np.empty((N, T, H), dtype=dtype)
        self.layers = []
        for t in range(T):
            layer = self.cell(*self.params)
            if self.has_cell:
                self.h, self.c = layer.forward(xs[:, t, :], self.h, self.c)
            else:
                self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx = self.params[0]
        N, T, H = dhs.shape
        dxs = np.empty((N, T, Wx.shape[0]), dtype=np.result_type(dhs, Wx))
        dh, dc = 0, 0
        total = [np.zeros_like(g) for g in self.grads]
        for t in reversed(range(T)):
            layer = self.layers[t]
            if self.has_cell:
                dx, dh, dc = layer.backward(dhs[:, t, :] + dh, dc)
            else:
                dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx
            for acc, g in zip(total, layer.grads):
                acc += g
        for g, acc in zip(self.grads, total):
            g[...] = acc
        self.dh = dh
        return dxs

    def reset_state(self):
        self.h, self.c = None, None


class TimeRNN(_TimeRecurrent):
    cell = RNN

    def set_state(self, h):
        self.h = h


class TimeLSTM(_TimeRecurrent):
    cell = LSTM
    has_cell = True

    def set_state(self, h, c=None):
        self.h, self.c = h, c


class TimeGRU(_TimeRecurrent):
    cell = GRU

    def set_state(self, h):
        self.h = h


class Embedding:
    """Rows of W picked by integer ids; backward scatters dout back into those rows."""

    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx = None

    def forward(self, idx):
        self.idx = idx
        return self.params[0][idx]

    def backward(self, dout):
        dW = self.grads[0]
        dW[...] = 0
        np.add.at(dW, self.idx, dout)
        return None


class TimeEmbedding:
    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.W = W
        self.idx = None

    def forward(self, xs):
        self.idx = xs
        return self.W[xs]

    def backward(self, dout):
        dW = self.grads[0]
        dW[...] = 0
        np.add.at(dW, self.idx, dout)
        return None


class TimeAffine:
    """x (N, T, D) @ W (D, M) + b applied at every time step at once."""

    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        N, T, D = x.shape
        W, b = self.params
        out = x.reshape(N * T, D) @ W + b
        self.x = x
        return out.reshape(N, T, -1)

    def backward(self, dout):
        x = self.x
        N, T, D = x.shape
        W, b = self.params
        dout = dout.reshape(N * T, -1)
        self.grads[0][...] = x.reshape(N * T, D).T @ dout
        self.grads[1][...] = dout.sum(axis=0)
        return (dout @ W.T).reshape(N, T, D)


class TimeSoftmaxWithLoss:
    """Mean cross-entropy of softmax(xs) over all (n, t) whose label is not ignore_label (-1)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None
        self.ignore_label = -1

    def forward(self, xs, ts):
        N, T, V = xs.shape
        if ts.ndim == 3:  # one-hot labels
            ts = ts.argmax(axis=2)
        ts = ts.reshape(N * T)
        mask = ts != self.ignore_label
        ys = _softmax_rows(xs.reshape(N * T, V))
        picked = np.log(ys[np.arange(N * T), ts]) * mask
        loss = -picked.sum() / mask.sum()
        self.cache = (ts, ys, mask, (N, T, V))
        return loss

    def backward(self, dout=1):
        ts, ys, mask, (N, T, V) = self.cache
        dx = ys.copy()
        dx[np.arange(N * T), ts] -= 1
        dx *= dout / mask.sum()
        dx *= mask[:, np.newaxis]
        return dx.reshape(N, T, V)


class TimeDropout:
    """Inverted dropout: zero each element with probability dropout_ratio, scale the rest."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = dropout_ratio
        self.mask = None
        self.train_flg = True

    def forward(self, xs):
        if not self.train_flg:
            return xs
        keep = np.random.rand(*xs.shape) > self.dropout_ratio
        self.mask = keep.astype(np.float32) * (1.0 / (1.0 - self.dropout_ratio))
        return xs * self.mask

    def backward(self, dout):
        return dout * self.mask


class TimeBiLSTM:
    """Two TimeLSTMs, one reading the sequence backwards; outputs concatenated (N, T, 2H)."""

    def __init__(self, Wx1, Wh1, b1, Wx2, Wh2, b2, stateful=False):
        self.forward_lstm = TimeLSTM(Wx1, Wh1, b1, stateful)
        self.backward_lstm = TimeLSTM(Wx2, Wh2, b2, stateful)
        self.params = self.forward_lstm.params + self.backward_lstm.params
        self.grads = self.forward_lstm.grads + self.backward_lstm.grads

    def forward(self, xs):
        out_f = self.forward_lstm.forward(xs)
        out_b = self.backward_lstm.forward(xs[:, ::-1])[:, ::-1]
        return np.concatenate((out_f, out_b), axis=2)

    def backward(self, dhs):
        H = dhs.shape[2] // 2
        dxs = self.forward_lstm.backward(dhs[:, :, :H])
        dxs = dxs + self.backward_lstm.backward(dhs[:, :, H:][:, ::-1])[:, ::-1]
        return dxs
