"""The book's vol. 2 common/util.py: text preprocessing, co-occurrence and PPMI matrices,
word-vector queries, gradient clipping and the evaluation helpers of the chapters.

Same names, parameters, defaults, printing and numbers; ``from fastnn.dlfs2.util import *``
also hands over ``np``, ``GPU``, ``sys`` and ``os`` as the book's module does.
"""

import os
import sys

from .np import GPU, np  # noqa: F401


def preprocess(text):
    """Lower-case ``text``, split it on spaces (a '.' becomes its own word); returns
    (corpus: word ids in order, word_to_id, id_to_word), ids given in order of appearance."""
    words = text.lower().replace('.', ' .').split(' ')
    word_to_id, id_to_word = {}, {}
    for word in words:
        if word not in word_to_id:
            word_to_id[word] = len(word_to_id)
            id_to_word[word_to_id[word]] = word
    corpus = np.array([word_to_id[w] for w in words])
    return corpus, word_to_id, id_to_word


def cos_similarity(x, y, eps=1e-8):
    """Cosine similarity of vectors x and y (eps keeps a zero vector from dividing by 0)."""
    nx = x / (np.sqrt(np.sum(x ** 2)) + eps)
    ny = y / (np.sqrt(np.sum(y ** 2)) + eps)
    return np.dot(nx, ny)


def most_similar(query, word_to_id, id_to_word, word_matrix, top=5):
    """Print the ``top`` words whose rows of ``word_matrix`` are most cosine-similar to
    ``query``'s."""
    if query not in word_to_id:
        print('%s is not found' % query)
        return
    print('\n[query] ' + query)
    query_vec = word_matrix[word_to_id[query]]
    vocab_size = len(id_to_word)
    similarity = np.zeros(vocab_size)
    for i in range(vocab_size):
        similarity[i] = cos_similarity(word_matrix[i], query_vec)
    shown = 0
    for i in (-1 * similarity).argsort():
        if id_to_word[i] == query:
            continue
        print(' %s: %s' % (id_to_word[i], similarity[i]))
        shown += 1
        if shown >= top:
            return


def convert_one_hot(corpus, vocab_size):
    """Word ids (N,) or (N, C) -> int32 one-hot (N, vocab_size) or (N, C, vocab_size)."""
    one_hot = np.zeros(corpus.shape + (vocab_size,), dtype=np.int32)
    if corpus.ndim in (1, 2):
        rows = np.indices(corpus.shape)
        one_hot[tuple(rows) + (corpus,)] = 1
    return one_hot


def create_co_matrix(corpus, vocab_size, window_size=1):
    """Co-occurrence counts (vocab_size, vocab_size), int32: how often each word appears within
    ``window_size`` words of each other."""
    corpus_size = len(corpus)
    co_matrix = np.zeros((vocab_size, vocab_size), dtype=np.int32)
    for idx, word_id in enumerate(corpus):
        for i in range(1, window_size + 1):
            if idx - i >= 0:
                co_matrix[word_id, corpus[idx - i]] += 1
            if idx + i < corpus_size:
                co_matrix[word_id, corpus[idx + i]] += 1
    return co_matrix


def ppmi(C, verbose=False, eps=1e-8):
    """Positive pointwise mutual information of co-occurrence matrix C, float32:
    max(0, log2(C[i, j] * N / (S[i] * S[j]) + eps)), N the total count, S the column sums."""
    M = np.zeros_like(C, dtype=np.float32)
    N = np.sum(C)
    S = np.sum(C, axis=0)
    total = C.shape[0] * C.shape[1]
    step = total // 100 + 1
    with np.errstate(divide='ignore', invalid='ignore'):
        for i in range(C.shape[0]):
            pmi = np.log2(C[i] * N / (S * S[i]) + eps)
            M[i] = np.maximum(0, pmi)
            if verbose:
                # the book's progress line, printed each time a 1% step of cells is passed
                for cnt in range(i * C.shape[1] + 1, (i + 1) * C.shape[1] + 1):
                    if cnt % step == 0:
                        print('%.1f%% done' % (100 * cnt / total))
    return M


def create_contexts_target(corpus, window_size=1):
    """(contexts (N, 2*window_size), target (N,)) for every word with a full window."""
    target = corpus[window_size:-window_size]
    offsets = [t for t in range(-window_size, window_size + 1) if t != 0]
    contexts = [[corpus[idx + t] for t in offsets]
                for idx in range(window_size, len(corpus) - window_size)]
    return np.array(contexts), np.array(target)


def to_cpu(x):
    """A NumPy array of x (a CuPy array is copied from the device)."""
    import numpy
    if type(x) == numpy.ndarray:  # noqa: E721  (subclasses are converted, as the book does)
        return x
    return np.asnumpy(x)


def to_gpu(x):
    """A CuPy array of x."""
    import cupy
    if type(x) == cupy.ndarray:  # noqa: E721
        return x
    return cupy.asarray(x)


def clip_grads(grads, max_norm):
    """Scale every gradient of the list in place so that their joint L2 norm is at most
    ``max_norm`` (nothing changes when it already is)."""
    total_norm = 0
    for grad in grads:
        total_norm += np.sum(grad ** 2)
    total_norm = np.sqrt(total_norm)
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for grad in grads:
            grad *= rate


def eval_perplexity(model, corpus, batch_size=10, time_size=35):
    """exp of the model's mean loss over ``corpus`` read as ``batch_size`` parallel streams of
    ``time_size`` steps (``model.forward(xs, ts, train_flg=False)`` when it takes train_flg)."""
    print('evaluating perplexity ...')
    corpus_size = len(corpus)
    total_loss = 0
    max_iters = (corpus_size - 1) // (batch_size * time_size)
    jump = (corpus_size - 1) // batch_size
    t = np.arange(time_size)
    for iters in range(max_iters):
        starts = iters * time_size + jump * np.arange(batch_size)
        pos = starts[:, None] + t[None, :]
        xs = np.asarray(corpus)[pos % corpus_size].astype(np.int32)
        ts = np.asarray(corpus)[(pos + 1) % corpus_size].astype(np.int32)
        try:
            loss = model.forward(xs, ts, train_flg=False)
        except TypeError:
            loss = model.forward(xs, ts)
        total_loss += loss
        sys.stdout.write('\r%d / %d' % (iters, max_iters))
        sys.stdout.flush()
    print('')
    return np.exp(total_loss / max_iters)


def eval_seq2seq(model, question, correct, id_to_char, verbose=False, is_reverse=False):
    """1 if ``model.generate`` answers ``question`` with exactly ``correct`` (whose first id is
    the start id), else 0; ``verbose`` prints the question, the answer and the guess."""
    correct = correct.flatten()
    start_id, correct = correct[0], correct[1:]
    guess = model.generate(question, start_id, len(correct))

    question = ''.join(id_to_char[int(c)] for c in question.flatten())
    correct = ''.join(id_to_char[int(c)] for c in correct)
    guess = ''.join(id_to_char[int(c)] for c in guess)

    if verbose:
        if is_reverse:
            question = question[::-1]
        print('Q', question)
        print('T', correct)
        windows = os.name == 'nt'
        if correct == guess:
            mark = 'O' if windows else '\033[92m' + '\u2611' + '\033[0m'
        else:
            mark = 'X' if windows else '\033[91m' + '\u2612' + '\033[0m'
        print(mark + ' ' + guess)
        print('---')
    return 1 if guess == correct else 0


def analogy(a, b, c, word_to_id, id_to_word, word_matrix, top=5, answer=None):
    """Print the ``top`` words closest to b - a + c ("a is to b as c is to ?")."""
    for word in (a, b, c):
        if word not in word_to_id:
            print('%s is not found' % word)
            return
    print('\n[analogy] ' + a + ':' + b + ' = ' + c + ':?')
    a_vec, b_vec, c_vec = (word_matrix[word_to_id[w]] for w in (a, b, c))
    query_vec = normalize(b_vec - a_vec + c_vec)
    similarity = np.dot(word_matrix, query_vec)
    if answer is not None:
        print("==>" + answer + ":" + str(np.dot(word_matrix[word_to_id[answer]], query_vec)))
    shown = 0
    for i in (-1 * similarity).argsort():
        if np.isnan(similarity[i]) or id_to_word[i] in (a, b, c):
            continue
        print(' {0}: {1}'.format(id_to_word[i], similarity[i]))
        shown += 1
        if shown >= top:
            return


def normalize(x):
    """Scale a vector, or each row of a matrix, to unit L2 norm (in place, and returned)."""
    if x.ndim == 2:
        s = np.sqrt((x * x).sum(1))
        x /= s.reshape((s.shape[0], 1))
    elif x.ndim == 1:
        x /= np.sqrt((x * x).sum())
    return x
