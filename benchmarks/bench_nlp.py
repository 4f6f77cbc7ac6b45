"""Vol. 2 (natural language) workloads: the word-embedding gather and scatter-add, negative
sampling's EmbeddingDot, time attention, and a training step of the book's BetterRnnlm.

- embedding: TimeEmbedding over V=10,000 x D=650 with a batch of 20 x 35 ids (the BetterRnnlm's
  input), forward + backward (dW zeroed, then the scatter-add);
- embedding_dot: word2vec's negative sampling (V=10,000, D=100, batch 100, 5 negative samples):
  EmbeddingDot forward + backward on 100 rows, 6 times (the target and 5 negatives);
- attention: the book's ch. 8 date-format seq2seq (batch 128, encoder 29 steps, decoder 11,
  H=256), TimeAttention forward + backward;
- BetterRnnlm training step (ch. 6): V=10,000, wordvec = hidden = 650, batch 20, time 35,
  dropout 0.5, 2 LSTM layers, the affine tied to the embedding (W.T), gradient clipping at 0.25,
  SGD: forward, backward, the tied gradients summed, clipping and the update.

Contenders: fastnn (fastnn.time_layers and fastnn.ops), the book-style NumPy reference
(fastnn.reference, with the book's remove_duplicate and clip_grads), and PyTorch eager with
the same weights (torch.nn.Embedding, nn.LSTM with 2 layers, a Linear sharing the embedding's
weight, cross-entropy, clip_grad_norm_, SGD).

    PYTHONPATH=. python benchmarks/bench_nlp.py [--quick] [--threads N] [--json out.json]
"""

import os
import sys

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.harness import Workload  # noqa: E402

SUITE = "bench_nlp"
RNNLM = dict(V=10000, D=650, N=20, T=35)
W2V = dict(V=10000, D=100, N=100, samples=6)
ATTN = dict(N=128, Te=29, Td=11, H=256)


# ------------------------------------------------------------------ embedding

def _embedding(contender, quick=False, data=None):
    V, D, N, T = RNNLM["V"], RNNLM["D"], RNNLM["N"], RNNLM["T"]
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((V, D)) / 100).astype(np.float32)
    ids = rng.integers(0, V, size=(N, T))
    dout = rng.standard_normal((N, T, D)).astype(np.float32)
    if contender in ("fastnn", "reference"):
        if contender == "fastnn":
            from fastnn.time_layers import TimeEmbedding
        else:
            from fastnn.reference.time_layers import TimeEmbedding
        layer = TimeEmbedding(W)

        def step():
            layer.forward(ids)
            layer.backward(dout)
        return step
    if contender == "torch":
        import torch
        emb = torch.nn.Embedding(V, D)
        with torch.no_grad():
            emb.weight.copy_(torch.from_numpy(W))
        it, dt = torch.from_numpy(ids), torch.from_numpy(dout)

        def step():
            emb.weight.grad = None  # a dense gradient made anew, as the book zeroes dW
            emb(it).backward(dt)
        return step
    raise ValueError(f"unknown contender {contender!r}")


# ------------------------------------------------------------------ negative sampling

def _embedding_dot(contender, quick=False, data=None):
    V, D, N, S = W2V["V"], W2V["D"], W2V["N"], W2V["samples"]
    rng = np.random.default_rng(0)
    W = (0.01 * rng.standard_normal((V, D))).astype(np.float32)
    h = rng.standard_normal((N, D)).astype(np.float32)
    ids = [rng.integers(0, V, size=N) for _ in range(S)]
    dout = rng.standard_normal(N).astype(np.float32)
    if contender == "fastnn":
        from fastnn import ops
        dWs = [np.zeros_like(W) for _ in range(S)]  # one EmbeddingDot layer (and grad) each

        def step():
            for idx, dW in zip(ids, dWs):
                ops.embedding_dot_forward(W, idx, h)
                ops.embedding_dot_backward(dW, idx, h, dout, W)
        return step
    if contender == "reference":
        from fastnn.reference.negative_sampling_layer import EmbeddingDot
        layers = [EmbeddingDot(W) for _ in range(S)]

        def step():
            for idx, layer in zip(ids, layers):
                layer.forward(h, idx)
                layer.backward(dout)
        return step
    if contender == "torch":
        import torch
        Wt = torch.from_numpy(W.copy()).requires_grad_()
        ht, dt = torch.from_numpy(h), torch.from_numpy(dout)
        it = [torch.from_numpy(i) for i in ids]

        def step():
            for idx in it:
                Wt.grad = None
                out = (torch.nn.functional.embedding(idx, Wt) * ht).sum(dim=1)
                out.backward(dt)
        return step
    raise ValueError(f"unknown contender {contender!r}")


# ------------------------------------------------------------------ attention

def _attention(contender, quick=False, data=None):
    N, Te, Td, H = ATTN["N"], ATTN["Te"], ATTN["Td"], ATTN["H"]
    rng = np.random.default_rng(0)
    hs_enc = rng.standard_normal((N, Te, H)).astype(np.float32)
    hs_dec = rng.standard_normal((N, Td, H)).astype(np.float32)
    dout = rng.standard_normal((N, Td, H)).astype(np.float32)
    if contender == "fastnn":
        from fastnn import ops

        def step():
            _, a = ops.attention_forward(hs_enc, hs_dec)
            ops.attention_backward(hs_enc, hs_dec, a, dout)
        return step
    if contender == "reference":
        from fastnn.reference.attention_layer import TimeAttention
        layer = TimeAttention()

        def step():
            layer.forward(hs_enc, hs_dec)
            layer.backward(dout)
        return step
    if contender == "torch":
        import torch
        e = torch.from_numpy(hs_enc).requires_grad_()
        d = torch.from_numpy(hs_dec).requires_grad_()
        g = torch.from_numpy(dout)

        def step():
            e.grad = d.grad = None
            a = torch.softmax(torch.bmm(d, e.transpose(1, 2)), dim=2)
            torch.bmm(a, e).backward(g)
        return step
    raise ValueError(f"unknown contender {contender!r}")


def attention_flops(N, Te, Td, H):
    return 5 * 2 * N * Td * Te * H   # 2 GEMMs forward, 3 backward


# ------------------------------------------------------------------ BetterRnnlm

def _rnnlm_weights(V, D, H, seed=0):
    """The book's BetterRnnlm initialisation (float32), NumPy only."""
    rng = np.random.default_rng(seed)
    f = np.float32
    embed_W = (rng.standard_normal((V, D)) / 100).astype(f)
    lstm = []
    for d_in in (D, H):
        lstm += [(rng.standard_normal((d_in, 4 * H)) / np.sqrt(d_in)).astype(f),
                 (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(f),
                 np.zeros(4 * H, dtype=f)]
    return embed_W, lstm, np.zeros(V, dtype=f)


def _rnnlm_batch(V, N, T, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, size=(N, T)), rng.integers(0, V, size=(N, T))


class _BookBetterRnnlm:
    """The book's BetterRnnlm (ch06/better_rnnlm.py) over a time_layers module."""

    def __init__(self, m, embed_W, lstm, affine_b, dropout_ratio=0.5):
        self.layers = [m.TimeEmbedding(embed_W), m.TimeDropout(dropout_ratio),
                       m.TimeLSTM(*lstm[:3], stateful=True), m.TimeDropout(dropout_ratio),
                       m.TimeLSTM(*lstm[3:], stateful=True), m.TimeDropout(dropout_ratio),
                       m.TimeAffine(embed_W.T, affine_b)]  # weight tying
        self.loss_layer = m.TimeSoftmaxWithLoss()
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, xs, ts):
        for layer in self.layers:
            xs = layer.forward(xs)
        return self.loss_layer.forward(xs, ts)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


def _book_remove_duplicate(params, grads):
    """The book's common/trainer.py remove_duplicate: shared (or transposed) weights counted
    once, their gradients summed."""
    params, grads = params[:], grads[:]
    while True:
        find_flg = False
        L = len(params)
        for i in range(0, L - 1):
            for j in range(i + 1, L):
                if params[i] is params[j]:
                    grads[i] += grads[j]
                    find_flg = True
                    params.pop(j)
                    grads.pop(j)
                elif params[i].ndim == 2 and params[j].ndim == 2 and \
                        params[i].T.shape == params[j].shape and np.all(params[i].T == params[j]):
                    grads[i] += grads[j].T
                    find_flg = True
                    params.pop(j)
                    grads.pop(j)
                if find_flg:
                    break
            if find_flg:
                break
        if not find_flg:
            break
    return params, grads


def _book_clip_grads(grads, max_norm):
    total_norm = 0
    for grad in grads:
        total_norm += np.sum(grad ** 2)
    total_norm = np.sqrt(total_norm)
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for grad in grads:
            grad *= rate


def _rnnlm(contender, quick=False, data=None):
    V, D, N, T = RNNLM["V"], RNNLM["D"], RNNLM["N"], RNNLM["T"]
    H, lr, max_grad = D, 20.0, 0.25
    embed_W, lstm, affine_b = _rnnlm_weights(V, D, H)
    xs, ts = _rnnlm_batch(V, N, T)
    if contender == "reference":
        from fastnn.reference import time_layers as m
        model = _BookBetterRnnlm(m, embed_W, lstm, affine_b)

        def step():
            model.forward(xs, ts)
            model.backward()
            params, grads = _book_remove_duplicate(model.params, model.grads)
            _book_clip_grads(grads, max_grad)
            for p, g in zip(params, grads):  # the book's SGD
                p -= lr * g
        return step
    if contender == "fastnn":
        from fastnn import ops
        from fastnn import time_layers as m
        model = _BookBetterRnnlm(m, embed_W, lstm, affine_b)
        # The tie is known from the model: params[7] is params[0].T (no element-wise compare).
        params = model.params[:7] + model.params[8:]
        grads = model.grads[:7] + model.grads[8:]
        g_embed, g_tied = model.grads[0], model.grads[7]

        def step():
            model.forward(xs, ts)
            model.backward()
            np.add(g_embed, g_tied.T, out=g_embed)
            total = np.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads))
            rate = max_grad / (total + 1e-6)
            if rate < 1:
                for g in grads:
                    g *= rate
            for p, g in zip(params, grads):
                ops.sgd_update(p, g, lr)
        return step
    if contender == "torch":
        import torch
        import torch.nn as nn

        class BetterRnnlm(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(V, D)
                self.drop = nn.Dropout(0.5)
                self.lstm = nn.LSTM(D, H, num_layers=2, dropout=0.5, batch_first=True)
                self.affine = nn.Linear(H, V)
                self.affine.weight = self.embed.weight  # tying: the same (V, D) parameter

            def forward(self, x, state):
                hs, state = self.lstm(self.drop(self.embed(x)), state)
                return self.affine(self.drop(hs)), state

        model = BetterRnnlm()
        with torch.no_grad():
            model.embed.weight.copy_(torch.from_numpy(embed_W))
            model.affine.bias.copy_(torch.from_numpy(affine_b))
            for layer in range(2):
                Wx, Wh, b = lstm[3 * layer: 3 * layer + 3]
                H4 = 4 * H
                # The book's gates f, g, i, o -> torch's i, f, g, o.
                order = np.concatenate([np.arange(2 * H, 3 * H), np.arange(0, H),
                                        np.arange(H, 2 * H), np.arange(3 * H, H4)])
                getattr(model.lstm, f"weight_ih_l{layer}").copy_(torch.from_numpy(
                    np.ascontiguousarray(Wx.T[order])))
                getattr(model.lstm, f"weight_hh_l{layer}").copy_(torch.from_numpy(
                    np.ascontiguousarray(Wh.T[order])))
                getattr(model.lstm, f"bias_ih_l{layer}").copy_(torch.from_numpy(b[order]))
                getattr(model.lstm, f"bias_hh_l{layer}").zero_()
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        x_t, t_t = torch.from_numpy(xs), torch.from_numpy(ts).reshape(-1)
        state = [None]

        def step():
            opt.zero_grad()
            logits, st = model(x_t, state[0])
            state[0] = tuple(s.detach() for s in st)  # stateful, truncated BPTT
            loss = nn.functional.cross_entropy(logits.reshape(-1, V), t_t)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_grad)
            opt.step()
        return step
    raise ValueError(f"unknown contender {contender!r}")


def rnnlm_flops(V, D, N, T):
    H = D
    lstm = 2 * 3 * 2 * N * T * 4 * H * (D + H)   # two layers, forward once, backward twice
    affine = 3 * 2 * N * T * H * V
    return lstm + affine


def workloads():
    r, w, a = RNNLM, W2V, ATTN
    return [
        Workload(SUITE, "embedding", f"TimeEmbedding V={r['V']} D={r['D']}, ids {r['N']}x"
                 f"{r['T']} fwd+bwd", _embedding),
        Workload(SUITE, "embedding_dot", f"EmbeddingDot word2vec V={w['V']} D={w['D']} "
                 f"N={w['N']}, x{w['samples']} fwd+bwd", _embedding_dot),
        Workload(SUITE, "attention", f"TimeAttention N={a['N']} Te={a['Te']} Td={a['Td']} "
                 f"H={a['H']} fwd+bwd", _attention, flops=attention_flops(**a)),
        Workload(SUITE, "better_rnnlm", f"BetterRnnlm train step V={r['V']} D=H={r['D']} "
                 f"N={r['N']} T={r['T']} (dropout, tying, clip, SGD)", _rnnlm,
                 flops=rnnlm_flops(**r), max_samples={"reference": 3}),
    ]


if __name__ == "__main__":
    from benchmarks.__main__ import main
    main(["--only", SUITE] + sys.argv[1:])
