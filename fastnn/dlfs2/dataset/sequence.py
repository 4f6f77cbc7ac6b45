"""The book's dataset/sequence.py: character sequences for seq2seq.

``load_data('addition.txt')`` gives 50,000 additions "a+b" -> "_sum" in the book's format
(questions padded to 7 characters, answers "_" + sum padded to 5), generated with a fixed seed
unless a file of that name is found; ``load_data('date.txt')`` (or any other name) reads the
user's file. A file name is looked up as given, then in :func:`dataset_dir`
(``$FASTNN_DATA/sequence`` or ``~/.cache/fastnn/sequence``). Each line is a question, '_' and
its answer; all questions have one length, all answers another.

Characters get ids in order of first appearance, in ``char_to_id``/``id_to_char``, shared by
every call as the book's module does (``get_vocab()`` returns them).
"""

import os

import numpy

from . import data_dir

__all__ = ["load_data", "get_vocab", "dataset_dir"]

id_to_char = {}
char_to_id = {}

ADDITION_SIZE = 50000
ADDITION_SEED = 1984


def dataset_dir():
    return data_dir('sequence')


def _update_vocab(txt):
    for char in txt:
        if char not in char_to_id:
            char_to_id[char] = len(char_to_id)
            id_to_char[char_to_id[char]] = char


def _operand(rng):
    """A number of 1 to 3 digits, each length equally likely."""
    digits = rng.randint(1, 4)
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10 ** digits)


def addition_lines(size=ADDITION_SIZE, seed=ADDITION_SEED):
    """``size`` lines "a+b" (7 wide) "_" "a+b's sum" (4 wide) with a newline, a and b of 1 to 3
    digits, drawn by numpy.random.RandomState(seed)."""
    rng = numpy.random.RandomState(seed)
    lines = []
    for _ in range(size):
        a, b = _operand(rng), _operand(rng)
        lines.append(f"{a}+{b}".ljust(7) + "_" + str(a + b).ljust(4) + "\n")
    return lines


def _find(file_name):
    for path in (file_name, os.path.join(dataset_dir(), file_name)):
        if os.path.isfile(path):
            return path
    return None


def load_data(file_name='addition.txt', seed=1984):
    """((x_train, t_train), (x_test, t_test)): character ids of the questions (x) and of the
    answers with their leading '_' (t), shuffled by numpy.random seeded with ``seed`` (no
    reseeding when None) and split 90% / 10%."""
    path = _find(file_name)
    if path is not None:
        with open(path, 'r', encoding='utf-8') as f:
            lines = f.readlines()
    elif os.path.basename(file_name) == 'addition.txt':
        lines = addition_lines()
    else:
        raise FileNotFoundError(
            f"sequence.load_data: no file {file_name!r} (looked in the current folder and in "
            f"{dataset_dir()}); the book's date.txt is not generated: put it there")

    questions, answers = [], []
    for n, line in enumerate(lines, 1):
        idx = line.find('_')
        if idx < 0:
            raise ValueError(f"{path or file_name}: line {n} has no '_' between question "
                             f"and answer: {line!r}")
        questions.append(line[:idx])
        answers.append(line[idx:-1] if line.endswith('\n') else line[idx:])
    for q, a in zip(questions, answers):
        _update_vocab(q)
        _update_vocab(a)
    for name, rows in (("question", questions), ("answer", answers)):
        if len({len(r) for r in rows}) > 1:
            raise ValueError(f"{path or file_name}: every {name} must have the same length "
                             f"(pad with spaces); found lengths {sorted({len(r) for r in rows})}")

    x = numpy.array([[char_to_id[c] for c in q] for q in questions], dtype=int)
    t = numpy.array([[char_to_id[c] for c in a] for a in answers], dtype=int)

    indices = numpy.arange(len(x))
    if seed is not None:
        numpy.random.seed(seed)
    numpy.random.shuffle(indices)
    x, t = x[indices], t[indices]

    split_at = len(x) - len(x) // 10
    return (x[:split_at], t[:split_at]), (x[split_at:], t[split_at:])


def get_vocab():
    return char_to_id, id_to_char
