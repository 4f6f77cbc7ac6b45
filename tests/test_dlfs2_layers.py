"""fastnn.dlfs2's own layers (vol. 2 layers.py/time_layers.py additions, negative sampling,
attention) against fastnn.reference in float64, numerical gradients for the batched attention,
and the trainers' helpers (remove_duplicate, clip_grads)."""

import numpy as np
import pytest

from conftest import gradcheck
from fastnn.dlfs2 import attention_layer as att
from fastnn.dlfs2 import layers as L
from fastnn.dlfs2 import negative_sampling_layer as ns
from fastnn.dlfs2 import time_layers as TL
from fastnn.dlfs2.trainer import remove_duplicate
from fastnn.dlfs2.util import clip_grads
from fastnn.reference import word_layers as R

TOL = dict(rtol=1e-10, atol=1e-12)


def test_matmul_and_sigmoid_with_loss_match_the_reference(rng):
    W, x = rng.standard_normal((4, 3)), rng.standard_normal((5, 4))
    a, b = L.MatMul(W), R.MatMul(W)
    np.testing.assert_allclose(a.forward(x), b.forward(x), **TOL)
    dout = rng.standard_normal((5, 3))
    np.testing.assert_allclose(a.backward(dout), b.backward(dout), **TOL)
    np.testing.assert_allclose(a.grads[0], b.grads[0], **TOL)

    s, t = rng.standard_normal(6), np.array([1, 0, 0, 1, 1, 0])
    a, b = L.SigmoidWithLoss(), R.SigmoidWithLoss()
    np.testing.assert_allclose(a.forward(s, t), b.forward(s, t), **TOL)
    np.testing.assert_allclose(a.backward(2.0), b.backward(2.0), **TOL)


def test_affine_softmax_and_their_losses(rng):
    W, b, x = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((5, 4))
    layer = L.Affine(W, b)
    np.testing.assert_allclose(layer.forward(x), x @ W + b, **TOL)
    dout = rng.standard_normal((5, 3))
    np.testing.assert_allclose(layer.backward(dout), dout @ W.T, **TOL)
    np.testing.assert_allclose(layer.grads[0], x.T @ dout, **TOL)
    np.testing.assert_allclose(layer.grads[1], dout.sum(axis=0), **TOL)

    sm = L.Softmax()
    y = sm.forward(x)
    np.testing.assert_allclose(y.sum(axis=1), 1, **TOL)
    gradcheck(lambda: float(np.sum(L.Softmax().forward(x) * dout[:, :1])), x,
              sm.backward(np.repeat(dout[:, :1], 4, axis=1)))

    t = np.array([0, 2, 1, 3, 0])
    loss = L.SoftmaxWithLoss()
    expected = -np.mean(np.log(y[np.arange(5), t] + 1e-7))
    np.testing.assert_allclose(loss.forward(x, t), expected, **TOL)
    np.testing.assert_allclose(loss.forward(x, np.eye(4)[t]), expected, **TOL)  # one-hot t
    assert loss.params == [] and loss.grads == []


def test_dropout_is_the_books_unscaled_form():
    np.random.seed(0)
    d = L.Dropout(0.3)
    x = np.ones((4, 5))
    out = d.forward(x)
    np.random.seed(0)
    np.testing.assert_array_equal(out, x * (np.random.rand(4, 5) > 0.3))
    np.testing.assert_allclose(d.forward(x, train_flg=False), 0.7 * x)


def test_embedding_dot_matches_the_reference(rng):
    W, h = rng.standard_normal((7, 3)), rng.standard_normal((4, 3))
    idx = np.array([0, 3, 3, 6])
    a, b = ns.EmbeddingDot(W), R.EmbeddingDot(W)
    np.testing.assert_allclose(a.forward(h, idx), b.forward(h, idx), **TOL)
    dout = rng.standard_normal(4)
    np.testing.assert_allclose(a.backward(dout), b.backward(dout), **TOL)
    np.testing.assert_allclose(a.grads[0], b.grads[0], **TOL)


def test_unigram_sampler_draws_distinct_non_target_words():
    corpus = np.array([0, 1, 2, 3, 4, 1, 1, 2, 0, 5])
    sampler = ns.UnigramSampler(corpus, 0.75, 3)
    assert sampler.vocab_size == 6
    np.testing.assert_allclose(sampler.word_p.sum(), 1)
    counts = np.bincount(corpus) ** 0.75
    np.testing.assert_allclose(sampler.word_p, counts / counts.sum())
    target = np.array([1, 2, 5, 0])
    np.random.seed(3)
    s = sampler.get_negative_sample(target)
    assert s.shape == (4, 3) and s.dtype == np.int32
    for row, t in zip(s, target):
        assert len(set(row)) == 3 and t not in row
    np.random.seed(3)
    np.testing.assert_array_equal(R.UnigramSampler(corpus, 0.75, 3).get_negative_sample(target), s)


def test_negative_sampling_loss_matches_the_per_sample_reference(rng):
    corpus = rng.integers(0, 12, 200)
    corpus[:12] = np.arange(12)
    W, h = rng.standard_normal((12, 5)), rng.standard_normal((8, 5))
    target = rng.integers(0, 12, 8)
    a, b = ns.NegativeSamplingLoss(W, corpus), R.NegativeSamplingLoss(W, corpus)
    np.random.seed(7)
    la = a.forward(h, target)
    np.random.seed(7)
    lb = b.forward(h, target)
    np.testing.assert_allclose(la, lb, **TOL)
    np.testing.assert_allclose(a.backward(1.5), b.backward(1.5), **TOL)
    assert len(a.params) == 1 and a.params[0] is W
    np.testing.assert_allclose(a.grads[0], sum(b.grads), **TOL)  # the reference's 6 copies
    # with the samples held fixed the loss is a function of h, whose gradient backward returns
    # (up to the 1e-7 the loss adds inside its logs, which backward leaves out, as the book)
    np.random.seed(7)
    samples = a.sampler.get_negative_sample(target)
    a.sampler.get_negative_sample = lambda t: samples
    a.forward(h, target)
    dh = a.backward()
    gradcheck(lambda: float(a.forward(h, target)), h, dh, rtol=1e-4)


def test_attention_layers_match_the_reference(rng):
    N, T, H = 3, 5, 4
    hs, h = rng.standard_normal((N, T, H)), rng.standard_normal((N, H))
    for mine, ref, args in [(att.AttentionWeight(), R.AttentionWeight(), (hs, h)),
                            (att.Attention(), R.Attention(), (hs, h)),
                            (att.WeightSum(), R.WeightSum(), (hs, rng.random((N, T))))]:
        out = mine.forward(*args)
        np.testing.assert_allclose(out, ref.forward(*args), **TOL)
        dout = rng.standard_normal(out.shape)
        for d1, d2 in zip(mine.backward(dout), ref.backward(dout)):
            np.testing.assert_allclose(d1, d2, **TOL)


def test_time_attention_matches_the_per_step_reference_and_numerical_grads(rng):
    hs_enc, hs_dec = rng.standard_normal((2, 6, 4)), rng.standard_normal((2, 3, 4))
    mine, ref = att.TimeAttention(), R.TimeAttention()
    out = mine.forward(hs_enc, hs_dec)
    np.testing.assert_allclose(out, ref.forward(hs_enc, hs_dec), **TOL)
    assert len(mine.attention_weights) == 3 and mine.attention_weights[0].shape == (2, 6)
    np.testing.assert_allclose(np.array(mine.attention_weights), np.array(ref.attention_weights),
                               **TOL)
    dout = rng.standard_normal(out.shape)
    d_enc, d_dec = mine.backward(dout)
    r_enc, r_dec = ref.backward(dout)
    np.testing.assert_allclose(d_enc, r_enc, **TOL)
    np.testing.assert_allclose(d_dec, r_dec, **TOL)

    def loss():
        return float(np.sum(att.TimeAttention().forward(hs_enc, hs_dec) * dout))
    gradcheck(loss, hs_enc, d_enc)
    gradcheck(loss, hs_dec, d_dec)


def test_time_attention_keeps_float32(rng):
    hs_enc = rng.standard_normal((2, 6, 4)).astype(np.float32)
    hs_dec = rng.standard_normal((2, 3, 4)).astype(np.float32)
    layer = att.TimeAttention()
    assert layer.forward(hs_enc, hs_dec).dtype == np.float32
    assert all(d.dtype == np.float32 for d in layer.backward(np.ones((2, 3, 4), np.float32)))


def test_simple_time_layers_agree_with_the_fast_ones(rng):
    xs, ts = rng.standard_normal((3, 4, 5)), rng.integers(0, 5, (3, 4))
    a, b = TL.Simple_TimeSoftmaxWithLoss(), TL.TimeSoftmaxWithLoss()
    np.testing.assert_allclose(a.forward(xs, ts), b.forward(xs, ts), rtol=1e-6)  # 1e-7 eps
    np.testing.assert_allclose(a.backward(), b.backward(), rtol=1e-6)

    W, bias = rng.standard_normal((5, 2)), rng.standard_normal(2)
    a, b = TL.Simple_TimeAffine(W, bias), TL.TimeAffine(W, bias)
    np.testing.assert_allclose(a.forward(xs), b.forward(xs), **TOL)
    dout = rng.standard_normal((3, 4, 2))
    np.testing.assert_allclose(a.backward(dout), b.backward(dout), **TOL)
    np.testing.assert_allclose(a.dW, b.grads[0], **TOL)
    np.testing.assert_allclose(a.db, b.grads[1], **TOL)

    x2, t2 = rng.standard_normal((3, 4)), rng.integers(0, 2, (3, 4))
    tsl = TL.TimeSigmoidWithLoss()
    per_step = [L.SigmoidWithLoss() for _ in range(4)]
    expected = sum(p.forward(x2[:, t], t2[:, t]) for t, p in enumerate(per_step)) / 4
    np.testing.assert_allclose(tsl.forward(x2, t2), expected, **TOL)
    dx = tsl.backward()
    for t, p in enumerate(per_step):
        np.testing.assert_allclose(dx[:, t], p.backward(1 / 4), **TOL)


def test_remove_duplicate_folds_shared_and_tied_weights(rng):
    W, V = rng.standard_normal((3, 4)), rng.standard_normal((4, 4))
    b = np.zeros(4)
    gW1, gW2, gWT, gV, gb = (rng.standard_normal(s) for s in [(3, 4), (3, 4), (4, 3), (4, 4), 4])
    expected_W = gW1 + gW2 + gWT.T
    params, grads = remove_duplicate([W, V, W, b, W.T], [gW1, gV, gW2, gb, gWT])
    assert len(params) == 3 and params[0] is W and params[1] is V and params[2] is b
    np.testing.assert_allclose(grads[0], expected_W)
    assert grads[1] is gV


def test_clip_grads_scales_to_the_max_norm(rng):
    grads = [rng.standard_normal((3, 3)) * 10, rng.standard_normal(4) * 10]
    before = [g.copy() for g in grads]
    clip_grads(grads, 1.0)
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    np.testing.assert_allclose(norm, 1.0, rtol=1e-5)
    np.testing.assert_allclose(grads[0] / before[0], grads[1][0] / before[1][0])
    small = [np.full(2, 0.1)]
    clip_grads(small, 1.0)
    np.testing.assert_array_equal(small[0], 0.1)


@pytest.mark.parametrize("cls", [att.WeightSum, att.AttentionWeight, att.TimeAttention,
                                 ns.NegativeSamplingLoss, TL.TimeSigmoidWithLoss, L.MatMul])
def test_backward_before_forward_says_so(cls):
    args = {ns.NegativeSamplingLoss: (np.ones((3, 2)), np.array([0, 1, 2])),
            L.MatMul: (np.ones((2, 2)),)}.get(cls, ())
    with pytest.raises(RuntimeError, match="before forward"):
        cls(*args).backward(np.ones((1, 2)))
