"""The book's dataset/ptb.py: the Penn Treebank language-model corpus (Mikolov's ptb.*.txt, as
the book downloads them).

``load_data('train' | 'val' | 'valid' | 'test')`` returns (corpus, word_to_id, id_to_word): the
word ids of the split's text, each line ending with '<eos>', with ids given in order of first
appearance in the training text. The text files are read from, or downloaded once into,
:func:`dataset_dir` (``$FASTNN_DATA/ptb`` or ``~/.cache/fastnn/ptb``) and checked against their
known digests; the corpus arrays (``ptb.<split>.npy``) and the vocabulary (``ptb.vocab.txt``,
one word per line in id order) are cached beside them. Nothing is unpickled.
"""

import hashlib
import os
import tempfile
import urllib.error
import urllib.request

import numpy as np

from ...datasets import DatasetError, DatasetNotFound
from . import data_dir

__all__ = ["load_data", "load_vocab", "dataset_dir", "DatasetError", "DatasetNotFound"]

url_base = 'https://raw.githubusercontent.com/tomsercu/lstm/master/data/'
key_file = {'train': 'ptb.train.txt', 'test': 'ptb.test.txt', 'valid': 'ptb.valid.txt'}
save_file = {'train': 'ptb.train.npy', 'test': 'ptb.test.npy', 'valid': 'ptb.valid.npy'}
vocab_file = 'ptb.vocab.txt'

# The digests each downloaded file must have. SHA-256 where it is known; every file also has
# its git blob id (SHA-1 of "blob <size>\0" + content) in the repository url_base serves from.
DIGESTS = {
    'ptb.train.txt': {
        'git-blob-sha1': '04d78dc94771b5c04adc40b3be08bd8c82942e7f'},
    'ptb.valid.txt': {
        'sha256': 'c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2',
        'git-blob-sha1': '7b3d9d9fd705825715695328b2de872ffbc14a84'},
    'ptb.test.txt': {
        'sha256': 'dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0',
        'git-blob-sha1': '8079cdf342f8d103e5647e1160a8fe3b58a213d5'},
}
_TIMEOUT_S = 30


def dataset_dir():
    return data_dir('ptb')


def _digest(path, algorithm):
    h = hashlib.sha256() if algorithm == 'sha256' else hashlib.sha1()
    if algorithm == 'git-blob-sha1':
        h.update(b'blob %d\0' % os.path.getsize(path))
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _fetch(url, path):
    """Copy ``url`` into the file ``path`` (the only network access of this module)."""
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp, open(path, 'wb') as out:
        for block in iter(lambda: resp.read(1 << 20), b''):
            out.write(block)


def _download(file_name):
    """Make sure ``file_name`` is in dataset_dir(): download it once, keeping it only when
    every digest of DIGESTS matches."""
    folder = dataset_dir()
    path = folder / file_name
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    url = url_base + file_name
    print('Downloading ' + file_name + ' ... ')
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=file_name + '.', suffix='.part')
    os.close(fd)
    try:
        try:
            _fetch(url, tmp)
        except (OSError, urllib.error.URLError, ValueError) as e:
            raise DatasetNotFound(
                f"ptb: {file_name} is not in {folder} and downloading it from {url} failed "
                f"({e}). Without network access, copy the book's PTB files (ptb.train.txt, "
                f"ptb.valid.txt, ptb.test.txt) into {folder} (or into $FASTNN_DATA/ptb)") \
                from None
        for algorithm, expected in DIGESTS[file_name].items():
            got = _digest(tmp, algorithm)
            if got != expected:
                raise DatasetError(
                    f"ptb: the {file_name} downloaded from {url} has {algorithm} {got}, not "
                    f"the expected {expected}; the file was not kept. Try again, or copy the "
                    f"book's file into {folder}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print('Done')
    return path


def _words(path):
    with open(path, encoding='utf-8') as f:
        return f.read().replace('\n', '<eos>').strip().split()


def load_vocab():
    """(word_to_id, id_to_word) of the training text, ids in order of first appearance."""
    folder = dataset_dir()
    vocab_path = folder / vocab_file
    if vocab_path.exists():
        with open(vocab_path, encoding='utf-8') as f:
            id_to_word = dict(enumerate(f.read().split('\n')[:-1]))
    else:
        id_to_word = {}
        for word in dict.fromkeys(_words(_download(key_file['train']))):
            id_to_word[len(id_to_word)] = word
        tmp = vocab_path.with_name(vocab_file + '.part')
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(''.join(w + '\n' for w in id_to_word.values()))
        os.replace(tmp, vocab_path)
    word_to_id = {w: i for i, w in id_to_word.items()}
    return word_to_id, id_to_word


def load_data(data_type='train'):
    """(corpus, word_to_id, id_to_word) of split ``data_type``: 'train', 'val' (or 'valid'),
    'test'."""
    if data_type == 'val':
        data_type = 'valid'
    if data_type not in key_file:
        raise ValueError(f"ptb.load_data: data_type must be 'train', 'val' or 'test', "
                         f"got {data_type!r}")
    word_to_id, id_to_word = load_vocab()
    save_path = dataset_dir() / save_file[data_type]
    if save_path.exists():
        return np.load(save_path, allow_pickle=False), word_to_id, id_to_word
    path = _download(key_file[data_type])
    words = _words(path)
    unknown = [w for w in dict.fromkeys(words) if w not in word_to_id]
    if unknown:
        raise DatasetError(f"ptb: {path} has words that the training text does not have "
                           f"({', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''})")
    corpus = np.array([word_to_id[w] for w in words])
    tmp = save_path.with_name(save_file[data_type] + '.part.npy')
    np.save(tmp, corpus)
    os.replace(tmp, save_path)
    return corpus, word_to_id, id_to_word
