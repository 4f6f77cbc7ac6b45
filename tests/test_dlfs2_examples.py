"""examples/dlfs2 learn, each on a small budget: word2vec CBOW with negative sampling and the
BetterRnnlm language model on the generated corpus, attention seq2seq on a user's date file."""

import datetime
import os
import sys

import numpy as np
import pytest

import fastnn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "dlfs2"))
import attention_seq2seq  # noqa: E402
import better_rnnlm  # noqa: E402
import word2vec_cbow  # noqa: E402

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]


@pytest.fixture(autouse=True)
def one_thread(tmp_path, monkeypatch):
    """Tiny GEMMs: one kernel thread is fastest on a busy machine; PTB never looked up."""
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    threads = fastnn.get_num_threads()
    fastnn.set_num_threads(1)
    yield
    fastnn.set_num_threads(threads)


def test_cbow_learns_which_words_share_contexts():
    model, trainer, word_to_id, _ = word2vec_cbow.train(
        text="generated", window_size=2, hidden_size=30, max_epoch=1, lr=0.01, max_words=20000,
        eval_interval=20)
    losses = trainer.loss_list
    assert abs(losses[0] - 6 * np.log(2)) < 0.01  # sigmoid(0) for the target and 5 samples
    assert losses[-1] < 1.6, losses[-5:]
    # every animal closer to the other animals than to any food, and the other way round
    vecs = model.word_vecs / np.linalg.norm(model.word_vecs, axis=1, keepdims=True)
    sim = vecs @ vecs.T
    animals = [word_to_id[w] for w in "cat dog horse cow".split()]
    foods = [word_to_id[w] for w in "bread apple cheese rice".split()]
    within = min(sim[a, b] for a in animals for b in animals if a != b)
    across = max(sim[a, f] for a in animals for f in foods)
    assert within > across, (within, across)


def test_better_rnnlm_beats_the_uniform_perplexity(capsys):
    model, trainer, val_ppls, test_ppl = better_rnnlm.train(
        text="generated", wordvec_size=50, hidden_size=50, max_epoch=2, max_words=30000)
    vocab = len(model.params[0])
    assert vocab == 53
    assert trainer.ppl_list == []  # eval_interval None: nothing printed while training
    assert val_ppls[-1] < val_ppls[0] and test_ppl < 5.0, (val_ppls, test_ppl)
    assert "valid perplexity" in capsys.readouterr().out


def _date_lines(n, seed):
    rng = np.random.RandomState(seed)
    first = datetime.date(1970, 1, 1).toordinal()
    lines = []
    for _ in range(n):
        d = datetime.date.fromordinal(first + rng.randint(0, 365 * 50))
        m = MONTHS[d.month - 1]
        question = [f"{m} {d.day}, {d.year}", f"{d.month}/{d.day}/{d.year % 100:02d}",
                    f"{m[:3].upper()} {d.day}, {d.year}", f"{d.day} {m.upper()} {d.year}",
                    f"{d.year}-{d.month}-{d.day}"][rng.randint(5)]
        lines.append(question.ljust(29) + "_" + d.isoformat() + "\n")
    return lines


def test_attention_seq2seq_learns_dates_from_the_users_file(tmp_path):
    folder = tmp_path / "sequence"
    folder.mkdir()
    (folder / "date.txt").write_text("".join(_date_lines(6000, 0)))
    assert attention_seq2seq.default_data() == "date.txt"
    model, trainer, accs = attention_seq2seq.train(
        hidden_size=128, batch_size=32, max_epoch=4, lr=0.01, n_test=200)
    assert accs[-1] >= 0.8, accs  # attention "clicks" in the third epoch
    assert len(model.decoder.attention.attention_weights) == 1  # the last generate: one step
