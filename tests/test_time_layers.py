"""The book's vol. 2 time layers: Embedding, TimeEmbedding, TimeAffine, TimeSoftmaxWithLoss,
TimeDropout, TimeBiLSTM against fastnn.reference, and book-style model code run unchanged."""

import numpy as np
import pytest

import fastnn.time_layers as fast
import fastnn.reference.time_layers as ref
from conftest import assert_parity, gradcheck


def test_module_exports_the_books_classes():
    for name in ["RNN", "TimeRNN", "LSTM", "TimeLSTM", "GRU", "TimeGRU", "Embedding",
                 "TimeEmbedding", "TimeAffine", "TimeSoftmaxWithLoss", "TimeDropout",
                 "TimeBiLSTM"]:
        assert hasattr(fast, name) and hasattr(ref, name), name


def test_embedding_and_time_embedding(rng, dtype):
    W = rng.standard_normal((10, 4)).astype(dtype)
    idx = np.array([1, 3, 3, 0])
    a, r = fast.Embedding(W), ref.Embedding(W.copy())
    assert_parity(a.forward(idx), r.forward(idx), dtype)
    d = rng.standard_normal((4, 4)).astype(dtype)
    assert a.backward(d) is None and r.backward(d) is None
    assert_parity(a.grads[0], r.grads[0], dtype)
    assert_parity(a.grads[0][3], d[1] + d[2], dtype)  # repeated ids accumulate

    ids = rng.integers(0, 10, size=(3, 5))
    a, r = fast.TimeEmbedding(W), ref.TimeEmbedding(W.copy())
    assert_parity(a.forward(ids), r.forward(ids), dtype)
    d = rng.standard_normal((3, 5, 4)).astype(dtype)
    a.backward(d)
    r.backward(d)
    assert_parity(a.grads[0], r.grads[0], dtype, reduce_len=15)


def test_time_affine(rng, dtype):
    W = rng.standard_normal((6, 7)).astype(dtype)
    b = rng.standard_normal(7).astype(dtype)
    a, r = fast.TimeAffine(W, b), ref.TimeAffine(W.copy(), b.copy())
    x = rng.standard_normal((3, 4, 6)).astype(dtype)
    assert_parity(a.forward(x), r.forward(x), dtype, reduce_len=6)
    d = rng.standard_normal((3, 4, 7)).astype(dtype)
    assert_parity(a.backward(d), r.backward(d), dtype, reduce_len=7)
    for ga, gr in zip(a.grads, r.grads):
        assert_parity(ga, gr, dtype, reduce_len=12)


def test_time_affine_gradients(rng):
    W, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    layer = fast.TimeAffine(W, b)
    x, d = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 3, 4))

    def loss():
        return float(np.sum(layer.forward(x) * d))

    loss()
    dx = layer.backward(d)
    dW, db = (g.copy() for g in layer.grads)
    gradcheck(loss, x, dx)
    gradcheck(loss, W, dW)
    gradcheck(loss, b, db)


@pytest.mark.parametrize("one_hot", [False, True])
def test_time_softmax_with_loss_ignores_minus_one(rng, dtype, one_hot):
    N, T, V = 3, 4, 5
    xs = rng.standard_normal((N, T, V)).astype(dtype)
    ts = rng.integers(0, V, size=(N, T))
    ts[0, 1] = ts[2, 3] = -1
    labels = ts
    if one_hot:
        ts = ts.clip(0)  # argmax of the one-hot rows; -1 has no one-hot form
        labels = np.eye(V, dtype=int)[ts]
    a, r = fast.TimeSoftmaxWithLoss(), ref.TimeSoftmaxWithLoss()
    assert a.ignore_label == -1
    la, lr = a.forward(xs, labels), r.forward(xs, labels)
    np.testing.assert_allclose(la, lr, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_parity(a.backward(), r.backward(), dtype)
    if not one_hot:
        # direct computation: mean over the 10 labelled positions
        p = np.exp(xs) / np.exp(xs).sum(axis=2, keepdims=True)
        keep = ts != -1
        expected = -np.log(p[keep, ts[keep]]).mean()
        np.testing.assert_allclose(la, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
        np.testing.assert_array_equal(a.backward()[0, 1], 0)


def test_time_dropout_train_and_eval(rng):
    xs = rng.standard_normal((4, 5, 6)).astype(np.float32)
    a, r = fast.TimeDropout(0.3), ref.TimeDropout(0.3)
    np.random.seed(3)
    ya = a.forward(xs)
    np.random.seed(3)
    yr = r.forward(xs)
    assert_parity(ya, yr, np.float32)
    kept = ya != 0
    np.testing.assert_allclose(ya[kept], xs[kept] / 0.7, rtol=1e-6)
    d = rng.standard_normal(xs.shape).astype(np.float32)
    assert_parity(a.backward(d), r.backward(d), np.float32)
    a.train_flg = False
    assert a.forward(xs) is xs


def test_time_bilstm(rng, dtype):
    N, T, D, H = 2, 5, 3, 4
    ps = [p.astype(dtype) for p in (rng.standard_normal((D, 4 * H)) * 0.5,
                                    rng.standard_normal((H, 4 * H)) * 0.5,
                                    rng.standard_normal(4 * H),
                                    rng.standard_normal((D, 4 * H)) * 0.5,
                                    rng.standard_normal((H, 4 * H)) * 0.5,
                                    rng.standard_normal(4 * H))]
    a, r = fast.TimeBiLSTM(*ps), ref.TimeBiLSTM(*[p.copy() for p in ps])
    # the drop-in runs both directions on the compiled TimeLSTM, the reference on its own
    assert type(a.forward_lstm) is fast.TimeLSTM and type(a.backward_lstm) is fast.TimeLSTM
    assert type(r.forward_lstm) is ref.TimeLSTM
    xs = rng.standard_normal((N, T, D)).astype(dtype)
    out = a.forward(xs)
    assert out.shape == (N, T, 2 * H)
    assert_parity(out, r.forward(xs), dtype, reduce_len=D + H)
    d = rng.standard_normal((N, T, 2 * H)).astype(dtype)
    assert_parity(a.backward(d), r.backward(d), dtype, reduce_len=T * (D + H))
    assert len(a.grads) == 6
    for ga, gr in zip(a.grads, r.grads):
        assert_parity(ga, gr, dtype, reduce_len=N * T * 4 * H)


class _BookRnnlm:
    """A vol. 2 ch. 6 style language model written against a time_layers module, unchanged."""

    def __init__(self, layers_module, V, D, H, rng, cell="TimeLSTM", gates=4):
        m = layers_module
        f = np.float32
        embed_W = (rng.standard_normal((V, D)) / 100).astype(f)
        Wx = (rng.standard_normal((D, gates * H)) / np.sqrt(D)).astype(f)
        Wh = (rng.standard_normal((H, gates * H)) / np.sqrt(H)).astype(f)
        b = np.zeros(gates * H).astype(f)
        affine_W = (rng.standard_normal((H, V)) / np.sqrt(H)).astype(f)
        affine_b = np.zeros(V).astype(f)
        self.layers = [m.TimeEmbedding(embed_W), getattr(m, cell)(Wx, Wh, b, stateful=True),
                       m.TimeDropout(0.0), m.TimeAffine(affine_W, affine_b)]
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


@pytest.mark.parametrize("cell,gates", [("TimeLSTM", 4), ("TimeGRU", 3), ("TimeRNN", 1)])
def test_book_model_code_runs_unchanged(cell, gates):
    V, D, H, N, T = 12, 6, 8, 4, 5
    models = [_BookRnnlm(mod, V, D, H, np.random.default_rng(7), cell, gates)
              for mod in (fast, ref)]
    data = np.random.default_rng(8).integers(0, V, size=(3, N, T + 1))
    for step in range(3):  # SGD as the book's optimizer does it: params[i] -= lr * grads[i]
        xs, ts = data[step, :, :-1], data[step, :, 1:]
        losses = [m.forward(xs, ts) for m in models]
        for m in models:
            m.backward()
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
        for ga, gr in zip(models[0].grads, models[1].grads):
            assert_parity(ga, gr, np.float32, reduce_len=N * T * gates * H)
        for m in models:
            for p, g in zip(m.params, m.grads):
                p -= 0.5 * g


# ------------------------------------------------------------------ what the layers keep
# As the book's: TimeRNN/TimeLSTM/TimeGRU return a new hs, separate from what backward reads
# (their per-step caches), and those caches hold views of xs (an in-place edit of xs before
# backward is seen there: dWx scales with it, nothing else changes).

def _recurrent(kind, rng, D=3, H=4):
    g = {"TimeRNN": 1, "TimeLSTM": 4, "TimeGRU": 3}[kind]
    return getattr(fast, kind)(rng.standard_normal((D, g * H)), rng.standard_normal((H, g * H)),
                               rng.standard_normal(g * H))


def _run(layer, xs, d, edit=None):
    hs = layer.forward(xs)
    if edit == "hs":
        hs *= 0.5
    elif edit == "xs":
        xs *= 0.5
    dx = layer.backward(d)
    return hs, dx, [g.copy() for g in layer.grads]


@pytest.mark.parametrize("kind", ["TimeRNN", "TimeLSTM", "TimeGRU"])
@pytest.mark.parametrize("N,T", [(2, 5), (1, 5), (2, 1)])
def test_editing_hs_in_place_leaves_backward_alone(rng, kind, N, T):
    layer = _recurrent(kind, rng)
    xs, d = rng.standard_normal((N, T, 3)), rng.standard_normal((N, T, 4))
    hs, dx, grads = _run(layer, xs, d)
    assert hs.flags.c_contiguous and hs.shape == (N, T, 4)
    _, dx2, grads2 = _run(layer, xs, d, edit="hs")
    np.testing.assert_array_equal(dx2, dx)
    for g, g2 in zip(grads, grads2):
        np.testing.assert_array_equal(g2, g)


@pytest.mark.parametrize("kind", ["TimeRNN", "TimeLSTM", "TimeGRU"])
@pytest.mark.parametrize("N,T", [(2, 5), (1, 5)])
def test_editing_xs_in_place_is_seen_by_dWx_as_in_the_book(rng, kind, N, T):
    layer = _recurrent(kind, rng)
    xs, d = rng.standard_normal((N, T, 3)), rng.standard_normal((N, T, 4))
    _, dx, (dWx, dWh, db) = _run(layer, xs.copy(), d)
    _, dx2, (dWx2, dWh2, db2) = _run(layer, xs.copy(), d, edit="xs")
    np.testing.assert_allclose(dWx2, 0.5 * dWx, rtol=1e-12)
    np.testing.assert_array_equal(dWh2, dWh)
    np.testing.assert_array_equal(db2, db)
    np.testing.assert_array_equal(dx2, dx)


def test_time_bilstm_output_is_separate_from_its_caches(rng):
    H, D = 4, 3
    args = [rng.standard_normal(s) for s in ((D, 4 * H), (H, 4 * H), (4 * H,))] * 2
    layer = fast.TimeBiLSTM(*args)
    xs, d = rng.standard_normal((2, 5, D)), rng.standard_normal((2, 5, 2 * H))
    layer.forward(xs)
    dx = layer.backward(d)
    grads = [g.copy() for g in layer.grads]
    layer.forward(xs)[...] = 0
    np.testing.assert_array_equal(layer.backward(d), dx)
    for g, g2 in zip(grads, layer.grads):
        np.testing.assert_array_equal(g2, g)


# ------------------------------------------------------------------ backward before forward

def _time_layer_cases():
    z = np.zeros
    W4, Wh4, b4 = z((3, 8)), z((2, 8)), z(8)
    return {
        "RNN": (lambda: fast.RNN(z((3, 2)), z((2, 2)), z(2)), lambda l: l.backward(z((1, 2)))),
        "LSTM": (lambda: fast.LSTM(W4, Wh4, b4), lambda l: l.backward(z((1, 2)), z((1, 2)))),
        "GRU": (lambda: fast.GRU(z((3, 6)), z((2, 6)), z(6)), lambda l: l.backward(z((1, 2)))),
        "TimeRNN": (lambda: fast.TimeRNN(z((3, 2)), z((2, 2)), z(2)),
                    lambda l: l.backward(z((1, 2, 2)))),
        "TimeLSTM": (lambda: fast.TimeLSTM(W4, Wh4, b4), lambda l: l.backward(z((1, 2, 2)))),
        "TimeGRU": (lambda: fast.TimeGRU(z((3, 6)), z((2, 6)), z(6)),
                    lambda l: l.backward(z((1, 2, 2)))),
        "TimeAffine": (lambda: fast.TimeAffine(z((3, 2)), z(2)),
                       lambda l: l.backward(z((1, 2, 2)))),
        "TimeSoftmaxWithLoss": (fast.TimeSoftmaxWithLoss, lambda l: l.backward()),
        "Embedding": (lambda: fast.Embedding(z((5, 3))), lambda l: l.backward(z((2, 3)))),
        "TimeEmbedding": (lambda: fast.TimeEmbedding(z((5, 3))),
                          lambda l: l.backward(z((1, 2, 3)))),
        "TimeDropout": (fast.TimeDropout, lambda l: l.backward(z((1, 2, 3)))),
        "TimeBiLSTM": (lambda: fast.TimeBiLSTM(W4, Wh4, b4, W4, Wh4, b4),
                       lambda l: l.backward(z((1, 2, 4)))),
    }


TIME_CASES = _time_layer_cases()


@pytest.mark.parametrize("name", sorted(TIME_CASES))
def test_backward_before_forward_raises_runtime_error(name):
    make, backward = TIME_CASES[name]
    with pytest.raises(RuntimeError, match=rf"^{name}\.backward called before forward$"):
        backward(make())


def test_every_time_layer_is_covered():
    import inspect

    classes = {n for n, c in vars(fast).items()
               if inspect.isclass(c) and hasattr(c, "backward")}
    assert classes == set(TIME_CASES)


def test_time_affine_with_tied_weights(rng, dtype):
    """The book's BetterRnnlm ties TimeAffine(embed_W.T, b) to the embedding: W is a transposed
    view, its grad made by np.zeros_like, and an update of embed_W is seen by the next forward."""
    V, D = 11, 6
    embed_W = rng.standard_normal((V, D)).astype(dtype)
    b = rng.standard_normal(V).astype(dtype)
    a, r = fast.TimeAffine(embed_W.T, b), ref.TimeAffine(embed_W.T.copy(), b.copy())
    x = rng.standard_normal((3, 4, D)).astype(dtype)
    d = rng.standard_normal((3, 4, V)).astype(dtype)
    for _ in range(2):
        assert_parity(a.forward(x), r.forward(x), dtype, reduce_len=D)
        assert_parity(a.backward(d), r.backward(d), dtype, reduce_len=V)
        for ga, gr in zip(a.grads, r.grads):
            assert_parity(ga, gr, dtype, reduce_len=12)
        embed_W *= 0.5
        r.params[0][...] = embed_W.T
