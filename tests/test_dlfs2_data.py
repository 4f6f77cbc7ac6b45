"""fastnn.dlfs2's data sets (ptb from small generated files and a mocked download, sequence,
spiral), util's text and evaluation helpers, and BaseModel's parameter files."""

import hashlib
import pickle
import urllib.error

import numpy as np
import pytest

from fastnn.dlfs2 import util
from fastnn.dlfs2.base_model import BaseModel
from fastnn.dlfs2.dataset import ptb, sequence, spiral

TEXT = "You say goodbye and I say hello."


# ------------------------------------------------------------------ util

def test_preprocess_co_matrix_and_contexts():
    corpus, word_to_id, id_to_word = util.preprocess(TEXT)
    np.testing.assert_array_equal(corpus, [0, 1, 2, 3, 4, 1, 5, 6])
    assert id_to_word[6] == "." and word_to_id["say"] == 1
    C = util.create_co_matrix(corpus, 7)
    assert C.dtype == np.int32
    np.testing.assert_array_equal(C[0], [0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(C[1], [1, 0, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(util.create_co_matrix(corpus, 7, window_size=2)[0],
                                  [0, 1, 1, 0, 0, 0, 0])
    contexts, target = util.create_contexts_target(corpus, 1)
    np.testing.assert_array_equal(target, [1, 2, 3, 4, 1, 5])
    np.testing.assert_array_equal(contexts[:2], [[0, 2], [1, 3]])
    one_hot = util.convert_one_hot(target, 7)
    assert one_hot.shape == (6, 7) and one_hot.dtype == np.int32
    np.testing.assert_array_equal(one_hot.argmax(axis=1), target)
    np.testing.assert_array_equal(util.convert_one_hot(contexts, 7).argmax(axis=2), contexts)


def test_ppmi_is_the_elementwise_formula(capsys):
    corpus, _, _ = util.preprocess(TEXT)
    C = util.create_co_matrix(corpus, 7)
    M = util.ppmi(C, verbose=True)
    assert M.dtype == np.float32
    N, S = C.sum(), C.sum(axis=0)
    for i in range(7):
        for j in range(7):
            pmi = np.log2(C[i, j] * N / (S[j] * S[i]) + 1e-8)
            assert M[i, j] == np.float32(max(0, pmi))
    out = capsys.readouterr().out
    assert out.startswith("2.0% done") and "100.0% done" in out


def test_similarity_queries_print_the_nearest_words(capsys):
    corpus, word_to_id, id_to_word = util.preprocess(TEXT)
    C = util.create_co_matrix(corpus, 7).astype(np.float64)
    np.testing.assert_allclose(util.cos_similarity(C[0], C[4]), 1 / np.sqrt(2), rtol=1e-7)
    util.most_similar("you", word_to_id, id_to_word, C, top=2)
    util.most_similar("nobody", word_to_id, id_to_word, C)
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "[query] you" and out[2].startswith(" goodbye: 0.7071") and len(out) == 5
    assert out[4] == "nobody is not found"
    util.analogy("you", "say", "i", word_to_id, id_to_word, C.copy(), top=1, answer="hello")
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "[analogy] you:say = i:?" and out[2].startswith("==>hello:")
    np.testing.assert_allclose(np.linalg.norm(util.normalize(C.copy()), axis=1)[:6], 1)


class _ConstantLM:
    def __init__(self):
        self.seen = []

    def forward(self, xs, ts, train_flg=True):
        assert train_flg is False
        self.seen.append((xs.copy(), ts.copy()))
        return 2.0


def test_eval_perplexity_reads_parallel_streams(capsys):
    corpus = np.arange(101)
    model = _ConstantLM()
    ppl = util.eval_perplexity(model, corpus, batch_size=2, time_size=10)
    np.testing.assert_allclose(ppl, np.exp(2.0))
    assert len(model.seen) == 5  # (101 - 1) // (2 * 10)
    xs, ts = model.seen[1]
    assert xs.dtype == np.int32
    np.testing.assert_array_equal(xs[0], np.arange(10, 20))
    np.testing.assert_array_equal(xs[1], np.arange(60, 70))  # jump = 100 // 2
    np.testing.assert_array_equal(ts, xs + 1)
    assert capsys.readouterr().out.startswith("evaluating perplexity ...")


def test_eval_seq2seq_compares_the_generated_answer(capsys):
    id_to_char = dict(enumerate("0123456789+_ "))

    class Echo:
        def generate(self, question, start_id, size):
            assert start_id == 11
            return [1, 2, 12]

    q, good, bad = np.array([[1, 10, 1]]), np.array([[11, 1, 2, 12]]), np.array([[11, 3, 2, 12]])
    assert util.eval_seq2seq(Echo(), q, good, id_to_char, verbose=True, is_reverse=True) == 1
    assert util.eval_seq2seq(Echo(), q, bad, id_to_char) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["Q 1+1", "T 12 "] and out[2].endswith("12 ") and out[3] == "---"


# ------------------------------------------------------------------ BaseModel

class _Model(BaseModel):
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.params = [rng.standard_normal((3, 4)).astype("f"), np.zeros(4, "f")]
        self.grads = [np.zeros_like(p) for p in self.params]


def test_save_and_load_params_in_the_books_format(tmp_path):
    a, b = _Model(0), _Model(1)
    held = b.params[0]
    path = str(tmp_path / "m.pkl")
    a.save_params(path)
    with open(path, "rb") as f:
        raw = pickle.load(f)  # the book's format: a list of float16 arrays
    assert [p.dtype for p in raw] == [np.float16, np.float16]
    b.load_params(path)
    assert b.params[0] is held and held.dtype == np.float32
    np.testing.assert_allclose(b.params[0], a.params[0], rtol=1e-3)


def test_load_params_refuses_what_is_not_the_models(tmp_path, monkeypatch):
    m = _Model()
    with pytest.raises(IOError, match="No file"):
        m.load_params(str(tmp_path / "missing.pkl"))
    few = tmp_path / "few.pkl"
    few.write_bytes(pickle.dumps([np.zeros((3, 4), np.float16)]))
    with pytest.raises(ValueError, match="holds 1 arrays but _Model has 2 parameters"):
        m.load_params(str(few))
    shape = tmp_path / "shape.pkl"
    shape.write_bytes(pickle.dumps([np.zeros((4, 3), np.float16), np.zeros(4, np.float16)]))
    with pytest.raises(ValueError, match=r"array 0 has shape \(4, 3\)"):
        m.load_params(str(shape))

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(ValueError, match="refusing to load"):
        m.load_params(str(evil))
    monkeypatch.chdir(tmp_path)
    m.save_params()  # the book's default name
    assert (tmp_path / "_Model.pkl").exists()


# ------------------------------------------------------------------ ptb

PTB = {"train": " the cat sat on the mat \n the dog sat \n",
       "valid": " the dog sat on the cat \n",
       "test": " the mat \n"}


@pytest.fixture
def ptb_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    return tmp_path / "ptb"


def _write_ptb(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in PTB.items():
        (folder / f"ptb.{split}.txt").write_text(text)


def test_ptb_reads_the_books_files_from_the_data_folder(ptb_dir):
    _write_ptb(ptb_dir)
    corpus, word_to_id, id_to_word = ptb.load_data("train")
    assert [id_to_word[i] for i in corpus[:7]] == "the cat sat on the mat <eos>".split()
    assert word_to_id == {"the": 0, "cat": 1, "sat": 2, "on": 3, "mat": 4, "<eos>": 5, "dog": 6}
    assert len(corpus) == 11
    val, w2, _ = ptb.load_data("val")
    assert w2 == word_to_id and [id_to_word[i] for i in val] == \
        "the dog sat on the cat <eos>".split()
    test, _, _ = ptb.load_data("test")
    np.testing.assert_array_equal(test, [0, 4, 5])
    # cached: the arrays and vocabulary are read back without the text files
    for split in PTB:
        (ptb_dir / f"ptb.{split}.txt").unlink()
    again, w3, i3 = ptb.load_data("train")
    np.testing.assert_array_equal(again, corpus)
    assert w3 == word_to_id and i3 == id_to_word
    with pytest.raises(ValueError, match="'train', 'val' or 'test'"):
        ptb.load_data("dev")


def test_ptb_download_keeps_only_files_with_the_right_digest(ptb_dir, monkeypatch, capsys):
    served = {name: PTB[split].encode() for split, name in ptb.key_file.items()}
    urls = []

    def fake_fetch(url, path):
        urls.append(url)
        with open(path, "wb") as f:
            f.write(served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(ptb, "_fetch", fake_fetch)
    monkeypatch.setattr(ptb, "DIGESTS", {
        name: {"sha256": hashlib.sha256(data).hexdigest()} for name, data in served.items()})
    corpus, _, _ = ptb.load_data("test")
    assert urls == [ptb.url_base + "ptb.train.txt", ptb.url_base + "ptb.test.txt"]
    assert (ptb_dir / "ptb.test.txt").read_bytes() == served["ptb.test.txt"]
    assert len(corpus) == 3 and "Downloading ptb.test.txt" in capsys.readouterr().out

    served["ptb.valid.txt"] = b" the cat \n"  # not the file the digest describes
    with pytest.raises(ptb.DatasetError, match="ptb.valid.txt.*sha256.*not kept"):
        ptb.load_data("val")
    assert not (ptb_dir / "ptb.valid.txt").exists()
    assert [p.name for p in ptb_dir.iterdir() if p.name.endswith(".part")] == []


def test_ptb_offline_says_where_to_put_the_files(ptb_dir, monkeypatch):
    def offline(url, path):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(ptb, "_fetch", offline)
    with pytest.raises(ptb.DatasetNotFound) as e:
        ptb.load_data("train")
    msg = str(e.value)
    assert "ptb.train.txt" in msg and str(ptb_dir) in msg and "no network" in msg
    assert isinstance(e.value, FileNotFoundError)


def test_ptb_digests_include_git_blob_ids(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    # `git hash-object` of "hello\n"
    assert ptb._digest(path, "git-blob-sha1") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert ptb._digest(path, "sha256") == hashlib.sha256(b"hello\n").hexdigest()
    assert all(d for d in ptb.DIGESTS.values()) and set(ptb.DIGESTS) == set(ptb.key_file.values())


# ------------------------------------------------------------------ sequence, spiral

def test_addition_is_generated_in_the_books_format(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    (x_train, t_train), (x_test, t_test) = sequence.load_data("addition.txt")
    assert x_train.shape == (45000, 7) and t_train.shape == (45000, 5)
    assert x_test.shape == (5000, 7) and t_test.shape == (5000, 5)
    char_to_id, id_to_char = sequence.get_vocab()
    for q, a in zip(x_train[:50], t_train[:50]):
        question = "".join(id_to_char[int(c)] for c in q)
        answer = "".join(id_to_char[int(c)] for c in a)
        left, right = question.split("+")
        assert answer[0] == "_" and int(answer[1:]) == int(left) + int(right.strip())
        assert 1 <= len(left) <= 3
    (x2, _), _ = sequence.load_data("addition.txt")
    np.testing.assert_array_equal(x2, x_train)  # same seed, same data
    assert sequence.addition_lines(2) == sequence.addition_lines(2)


def test_date_is_read_from_the_users_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    lines = ["september 27, 1994 _1994-09-27\n", "August 19, 2003    _2003-08-19\n",
             "2/10/93            _1993-02-10\n"] * 10
    with pytest.raises(FileNotFoundError, match="date.txt"):
        sequence.load_data("date.txt")
    folder = tmp_path / "sequence"
    folder.mkdir()
    (folder / "date.txt").write_text("".join(lines))
    (x_train, t_train), (x_test, t_test) = sequence.load_data("date.txt", seed=None)
    assert x_train.shape == (27, 19) and t_test.shape == (3, 11)
    _, id_to_char = sequence.get_vocab()
    answers = {"".join(id_to_char[int(c)] for c in t) for t in t_train}
    assert answers == {"_1994-09-27", "_2003-08-19", "_1993-02-10"}
    (tmp_path / "ragged.txt").write_text("ab_c\nabc_d\n")
    with pytest.raises(ValueError, match="same length"):
        sequence.load_data(str(tmp_path / "ragged.txt"))


def test_spiral_is_the_books_spiral():
    x, t = spiral.load_data()
    assert x.shape == (300, 2) and t.shape == (300, 3) and t.dtype == np.int32
    np.testing.assert_array_equal(t.sum(axis=1), 1)
    np.testing.assert_array_equal(t.argmax(axis=1), np.repeat([0, 1, 2], 100))
    np.random.seed(1984)
    theta = 4.0 * 0.5 + np.random.randn(51)[-1] * 0.2  # class 0, point 50: radius 0.5
    np.testing.assert_allclose(x[50], [0.5 * np.sin(theta), 0.5 * np.cos(theta)])
    np.testing.assert_array_equal(spiral.load_data(seed=3)[0], spiral.load_data(seed=3)[0])
    assert not np.array_equal(spiral.load_data(seed=3)[0], x)
