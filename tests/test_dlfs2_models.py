"""Step-by-step parity of vol. 2's chapter models (better_rnnlm, seq2seq, peeky_seq2seq,
attention_seq2seq, cbow with negative sampling) trained by fastnn.dlfs2's trainers and
optimizers against fastnn.reference.nlp_models (the same models written apart, on the reference
layers) trained by a plain NumPy loop written here (the vol. 2 Adam/SGD, gradient clipping,
shared-weight folding).

Both runs start from one np.random seed and draw the same numbers (initial weights, shuffles,
dropout masks, negative samples), so every step's loss, and the trained weights, must agree to
float32 precision.
"""

import numpy as np
import pytest

from fastnn.dlfs2 import (attention_seq2seq, better_rnnlm, cbow, peeky_seq2seq, seq2seq)
from fastnn.dlfs2.optimizer import SGD, Adam
from fastnn.dlfs2.trainer import RnnlmTrainer, Trainer
from fastnn.dlfs2.util import create_contexts_target
from fastnn.reference import nlp_models as ref

RTOL = 1e-5  # float32 losses, as the book's vol. 2 computes them


class RefAdam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.iter, self.m, self.v = lr, beta1, beta2, 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.iter += 1
        lr_t = self.lr * np.sqrt(1 - self.beta2 ** self.iter) / (1 - self.beta1 ** self.iter)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m += (1 - self.beta1) * (g - m)
            v += (1 - self.beta2) * (g ** 2 - v)
            p -= lr_t * m / (np.sqrt(v) + 1e-7)


class RefSGD:
    def __init__(self, lr):
        self.lr = lr

    def update(self, params, grads):
        for p, g in zip(params, grads):
            p -= self.lr * g


def fold_shared(params, grads):
    """Each array once: a repeated array's gradients summed, a transposed copy's (weight
    tying) added transposed."""
    out_p, out_g = [], []
    for p, g in zip(params, grads):
        for i, q in enumerate(out_p):
            if p is q:
                out_g[i] += g
                break
            if p.ndim == 2 and q.ndim == 2 and p.T.shape == q.shape and np.all(p.T == q):
                out_g[i] += g.T
                break
        else:
            out_p.append(p)
            out_g.append(g)
    return out_p, out_g


def clip(grads, max_norm):
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    rate = max_norm / (norm + 1e-6)
    if rate < 1:
        for g in grads:
            g *= rate


def ref_step(model, opt, x, t, max_grad):
    loss = model.forward(x, t)
    model.backward()
    params, grads = fold_shared(model.params, model.grads)
    if max_grad is not None:
        clip(grads, max_grad)
    opt.update(params, grads)
    return float(loss)


def ref_fit(model, opt, x, t, max_epoch, batch_size, max_grad=None):
    losses = []
    for _ in range(max_epoch):
        idx = np.random.permutation(np.arange(len(x)))
        x, t = x[idx], t[idx]
        for i in range(len(x) // batch_size):
            b = slice(i * batch_size, (i + 1) * batch_size)
            losses.append(ref_step(model, opt, x[b], t[b], max_grad))
    return losses


def ref_rnnlm_fit(model, opt, xs, ts, max_epoch, batch_size, time_size, max_grad):
    ppl, pos0 = [], 0
    jump = len(xs) // batch_size
    for _ in range(max_epoch):
        for _ in range(len(xs) // (batch_size * time_size)):
            pos = (np.arange(batch_size)[:, None] * jump + pos0 + np.arange(time_size)) % len(xs)
            pos0 += time_size
            loss = ref_step(model, opt, xs[pos].astype(np.int32), ts[pos].astype(np.int32),
                            max_grad)
            ppl.append(float(np.exp(loss)))
    return ppl


def assert_losses_equal(got, expected):
    assert len(got) == len(expected) > 10
    np.testing.assert_allclose(got, expected, rtol=RTOL)
    assert not np.allclose(got[0], got[-1], rtol=1e-3), "training should move the loss"


def assert_params_equal(model, twin):
    """The trained weights agree too (float32 rounding, grown over the steps)."""
    assert len(model.params) == len(twin.params)
    for i, (p, q) in enumerate(zip(model.params, twin.params)):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5 * float(np.abs(q).max()),
                                   err_msg=f"params[{i}]")


def test_better_rnnlm_steps_match_the_reference(capsys):
    V = 40
    np.random.seed(0)
    corpus = np.random.randint(0, V, size=400)
    xs, ts = corpus[:-1], corpus[1:]

    np.random.seed(1)
    model = better_rnnlm.BetterRnnlm(V, 16, 16, 0.5)
    trainer = RnnlmTrainer(model, SGD(20.0))
    trainer.fit(xs, ts, max_epoch=4, batch_size=4, time_size=6, max_grad=0.25, eval_interval=1)
    got = trainer.ppl_list
    assert "| epoch 1 |  iter 1 / 16 | time 0[s] | perplexity" in capsys.readouterr().out

    np.random.seed(1)
    twin = ref.BetterRnnlm(V, 16, 16, 0.5)
    expected = ref_rnnlm_fit(twin, RefSGD(20.0), xs, ts, 4, 4, 6, 0.25)
    assert_losses_equal(got, expected)
    assert_params_equal(model, twin)
    # inference: every dropout layer off, the LSTM states started afresh
    model.reset_state()
    twin.reset_state()
    batch_x, batch_t = xs[:60].reshape(3, 20), ts[:60].reshape(3, 20)
    np.testing.assert_allclose(model.forward(batch_x, batch_t, train_flg=False),
                               twin.forward(batch_x, batch_t, train_flg=False), rtol=RTOL)


SEQ2SEQ_CASES = {
    "seq2seq": (seq2seq, "Seq2seq", "plain"),
    "peeky_seq2seq": (peeky_seq2seq, "PeekySeq2seq", "peeky"),
    "attention_seq2seq": (attention_seq2seq, "AttentionSeq2seq", "attention"),
}


@pytest.mark.parametrize("case", list(SEQ2SEQ_CASES))
def test_seq2seq_models_steps_match_the_reference(capsys, case):
    module, cls, decoder = SEQ2SEQ_CASES[case]
    np.random.seed(2)
    x, t = np.random.randint(0, 13, size=(96, 7)), np.random.randint(0, 13, size=(96, 5))

    np.random.seed(3)
    model = getattr(module, cls)(13, 16, 32)
    trainer = Trainer(model, Adam(0.01))
    trainer.fit(x, t, max_epoch=4, batch_size=16, max_grad=5.0, eval_interval=1)
    got = trainer.loss_list
    assert "| epoch 4 |  iter 6 / 6 | time" in capsys.readouterr().out
    answer = model.generate(x[:1], int(t[0, 0]), 4)

    np.random.seed(3)
    twin = ref.Seq2seq(13, 16, 32, decoder=decoder)
    expected = ref_fit(twin, RefAdam(0.01), x, t, 4, 16, 5.0)
    assert twin.generate(x[:1], int(t[0, 0]), 4) == answer
    assert_losses_equal(got, expected)
    assert_params_equal(model, twin)


def test_cbow_with_negative_sampling_steps_match_the_reference():
    np.random.seed(4)
    corpus = np.random.randint(0, 30, size=300)
    corpus[:30] = np.arange(30)  # every id occurs: the sampler's vocabulary is 0..29
    contexts, target = create_contexts_target(corpus, 2)

    np.random.seed(5)
    model = cbow.CBOW(30, 10, 2, corpus)
    trainer = Trainer(model, Adam(0.01))
    trainer.fit(contexts, target, max_epoch=3, batch_size=20, eval_interval=1)

    np.random.seed(5)
    twin = ref.CBOW(30, 10, 2, corpus)
    assert len(twin.ns_loss.embed_dot_layers) == 6  # the reference: one layer per sample
    expected = ref_fit(twin, RefAdam(0.01), contexts, target, 3, 20)
    assert_losses_equal(trainer.loss_list, expected)
    # W_in (shared by the 4 context layers) and W_out (once here, 6 times in the reference)
    assert len(model.params) == 5 and len(twin.params) == 10
    for p, q in [(model.params[0], twin.params[0]), (model.params[4], twin.params[4])]:
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5 * float(np.abs(q).max()))


def test_base_model_says_subclasses_define_forward_and_backward():
    """The book's BaseModel leaves forward/backward to its subclasses; calling them on a model
    that defines neither names the class and what is missing."""
    from fastnn.dlfs2.base_model import BaseModel

    class Empty(BaseModel):
        pass

    with pytest.raises(NotImplementedError, match=r"Empty.forward: a model built on BaseModel "
                                                  r"defines its own forward"):
        Empty().forward(None)
    with pytest.raises(NotImplementedError, match=r"Empty.backward: .* defines its own backward"):
        Empty().backward()
