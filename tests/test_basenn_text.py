"""fastnn.basenn's word-level language model: load_npz_data with a vocabulary, em_lstm,
next-word inference with a carried hidden state, checkpoints, and hostile .npz files."""

import os

import numpy as np
import pytest

from fastnn._safeio import ParamsError
from fastnn.basenn import nn
from test_basenn_grad import _check

pytestmark = pytest.mark.usefixtures("one_kernel_thread")

POEM = ("the moon over the river the wind over the hill the moon over the hill "
        "the wind over the river ").split() * 6


def corpus_npz(path, T=6):
    words = sorted(set(POEM))
    word2idx = {w: i for i, w in enumerate(words)}
    ids = np.array([word2idx[w] for w in POEM])
    n = (len(ids) - 1) // T
    x = ids[:n * T].reshape(n, T)
    y = ids[1:n * T + 1].reshape(n, T)
    np.savez(path, data=x, label=y, word2idx=word2idx)
    return word2idx


def test_trains_and_predicts_the_next_word(tmp_path):
    word2idx = corpus_npz(tmp_path / "poem.npz")
    m = nn("cls")
    m.set_seed(0)
    m.load_npz_data(str(tmp_path / "poem.npz"), batch_size=8)
    assert m.word2idx == word2idx
    m.add("em_lstm", size=(16, 32), num_layers=2)
    m.add(optimizer="Adam")
    m.save_fold = str(tmp_path / "ckpt")
    m.train(lr=0.02, epochs=60, verbose=False)
    assert m.history[-1]["loss"] < 0.5 * m.history[0]["loss"]
    probs, hidden = m.inference(data="over")
    assert probs.shape == (len(word2idx),) and abs(probs.sum() - 1) < 1e-5
    assert probs.argmax() == word2idx["the"]
    h, c = hidden
    assert h.shape == c.shape == (2, 1, 32)
    # the state carries: "the" after "over" is followed by a place, not by "the"
    probs2, _ = m.inference(data="the", hidden=hidden)
    idx2word = {i: w for w, i in word2idx.items()}
    assert idx2word[int(probs2.argmax())] in ("moon", "wind", "river", "hill")
    # a fresh model reads the vocabulary and weights from the checkpoint
    again = nn()
    p, _ = again.inference(data="over", checkpoint=str(tmp_path / "ckpt" / "basenn.pth"))
    np.testing.assert_allclose(p, probs, rtol=1e-5)
    with pytest.raises(ValueError, match="'sun' is not in the model's vocabulary"):
        again.inference(data="sun")


def test_step_matches_torch_and_the_sequence_forward(rng):
    torch = pytest.importorskip("torch")
    m = nn(dtype=np.float64)
    m.load_dataset(np.zeros((1, 4), np.int64), np.zeros((1, 4), np.int64),
                   word2idx={w: i for i, w in enumerate("abcde")})
    m.add("em_lstm", size=(3, 4), num_layers=2)
    mod = m.layers[0].module
    p = mod.params
    emb = torch.nn.Embedding(5, 3).double()
    lstm = torch.nn.LSTM(3, 4, num_layers=2).double()
    lin = torch.nn.Linear(4, 5).double()
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(p["embedding.W"]))
        for k, v in lstm.named_parameters():
            v.copy_(torch.tensor(p[f"lstm.{k}"]))
        lin.weight.copy_(torch.tensor(p["linear.W"].T))
        lin.bias.copy_(torch.tensor(p["linear.b"]))
    hidden, th = None, None
    for w in "cab":
        probs, hidden = m.inference(data=w, hidden=hidden)
        with torch.no_grad():
            out, th = lstm(emb(torch.tensor([[m.word2idx[w]]])), th)
            expect = torch.softmax(lin(out.reshape(1, -1))[0], 0).numpy()
        np.testing.assert_allclose(probs, expect, rtol=1e-10)
        np.testing.assert_allclose(hidden[0], th[0].numpy(), rtol=1e-10)
    # the step equals the last position of the whole-sequence forward
    seq = np.array([[m.word2idx[w] for w in "cab"]])
    scores = mod.forward(seq, False)[0, -1]
    e = np.exp(scores - scores.max())
    np.testing.assert_allclose(probs, e / e.sum(), rtol=1e-10)


def test_gradients(rng):
    x = rng.integers(0, 6, (3, 5))
    y = rng.integers(0, 6, (3, 5))
    m = nn(dtype=np.float64)
    m.set_seed(1)
    m.load_dataset(x, y, word2idx={str(i): i for i in range(6)})
    m.add("em_lstm", size=(3, 4))
    m.loss = "CrossEntropyLoss"
    _check(m, x, y, rtol=1e-4, atol=1e-7)


def test_bad_vocabularies_and_files(tmp_path):
    with pytest.raises(ValueError, match="vocabulary size comes from the data's word2idx"):
        nn().add("em_lstm", size=(4, 4))
    with pytest.raises(ValueError, match="token ids 0 .. n-1"):
        nn().load_dataset(np.zeros((1, 2)), word2idx={"a": 0, "b": 5})

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    np.savez(tmp_path / "evil.npz", data=np.zeros((2, 3), np.int64),
             word2idx=np.array(Evil(), dtype=object))
    with pytest.raises(ParamsError, match="refusing to load: the pickle asks for posix.system"):
        nn().load_npz_data(str(tmp_path / "evil.npz"))
    np.savez(tmp_path / "nodata.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="no array named 'data' \\(it has x\\)"):
        nn().load_npz_data(str(tmp_path / "nodata.npz"))
