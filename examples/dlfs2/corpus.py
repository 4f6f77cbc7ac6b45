"""The text the vol. 2 examples train on when the Penn Treebank is not on this machine: short
sentences from a small grammar, in the PTB's form (lower case words, '<eos>' ending each
sentence), returned as ``ptb.load_data`` returns them.

Words of one kind (animals, foods, verbs of eating, ...) occur in the same contexts, so word2vec
should place them together, and the grammar leaves a language model something to learn.
"""

import numpy as np

KINDS = {
    "animal": "cat dog horse cow sheep bird mouse fox".split(),
    "person": "man woman boy girl teacher doctor farmer child".split(),
    "food": "bread apple cheese rice fish soup cake meat".split(),
    "place": "house garden school market river field city park".split(),
    "eat": "eats likes wants cooks buys".split(),
    "go": "walks runs goes drives".split(),
    "adj": "big small old young happy hungry".split(),
}

TEMPLATES = [
    "the {adj} {animal} {eat} the {food}",
    "the {person} {eat} the {adj} {food}",
    "a {person} {go} to the {place}",
    "the {animal} {go} to the {place}",
    "the {person} and the {animal} {go} to the {place}",
    "the {adj} {person} {eat} {food} in the {place}",
]


def sentences(n, seed=0):
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        template = TEMPLATES[rng.randint(len(TEMPLATES))]
        words = []
        for token in template.split():
            if token.startswith("{"):
                choices = KINDS[token[1:-1]]
                token = choices[rng.randint(len(choices))]
            words.append(token)
        out.append(" ".join(words))
    return out


def load_data(data_type="train", n_sentences=None, seed=0):
    """(corpus, word_to_id, id_to_word) like ``ptb.load_data``: 'train' (20000 sentences),
    'val' and 'test' (2000 each, other seeds); one vocabulary for all."""
    counts = {"train": 20000, "val": 2000, "valid": 2000, "test": 2000}
    seeds = {"train": seed, "val": seed + 1, "valid": seed + 1, "test": seed + 2}
    words = []
    for s in sentences(n_sentences or counts[data_type], seeds[data_type]):
        words += s.split() + ["<eos>"]
    vocab = ["<eos>", "the", "a", "to", "and", "in"] + [w for ws in KINDS.values() for w in ws]
    word_to_id = {w: i for i, w in enumerate(vocab)}
    id_to_word = dict(enumerate(vocab))
    return np.array([word_to_id[w] for w in words]), word_to_id, id_to_word
