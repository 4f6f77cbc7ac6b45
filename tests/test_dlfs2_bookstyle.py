"""Programs written the book's way: star-imports from fastnn.dlfs2 hand over the names the
book's modules hand over (``np`` among them), and a chapter-style program using them
unqualified trains."""

import numpy as np
import pytest

from conftest import run_python

# What `from common.<module> import *` hands over in the book's code, without the standard
# library and third-party modules some of them also leak (sys, os, time, pickle, collections,
# numpy, plt).
BOOK_STAR = {
    "np": "GPU np",
    "layers": "Affine Dropout Embedding GPU MatMul Sigmoid SigmoidWithLoss Softmax "
              "SoftmaxWithLoss cross_entropy_error np softmax",
    "time_layers": "Affine Dropout Embedding GPU GRU LSTM MatMul RNN Sigmoid SigmoidWithLoss "
                   "Simple_TimeAffine Simple_TimeSoftmaxWithLoss Softmax SoftmaxWithLoss "
                   "TimeAffine TimeBiLSTM TimeDropout TimeEmbedding TimeGRU TimeLSTM TimeRNN "
                   "TimeSigmoidWithLoss TimeSoftmaxWithLoss cross_entropy_error np sigmoid "
                   "softmax",
    "functions": "GPU cross_entropy_error np relu sigmoid softmax",
    "optimizer": "AdaGrad Adam GPU Momentum Nesterov RMSprop SGD np",
    "util": "GPU analogy clip_grads convert_one_hot cos_similarity create_co_matrix "
            "create_contexts_target eval_perplexity eval_seq2seq most_similar normalize np "
            "os ppmi preprocess sys to_cpu to_gpu",
    "trainer": "GPU RnnlmTrainer Trainer clip_grads np remove_duplicate",
    "base_model": "BaseModel GPU np to_cpu to_gpu",
    "negative_sampling_layer": "Embedding EmbeddingDot GPU NegativeSamplingLoss "
                               "SigmoidWithLoss UnigramSampler np",
    "attention_layer": "Attention AttentionWeight GPU Softmax TimeAttention WeightSum np",
}


@pytest.mark.parametrize("module", list(BOOK_STAR))
def test_star_import_hands_over_the_books_names(module):
    ns = {}
    exec(f"from fastnn.dlfs2.{module} import *", ns)
    missing = set(BOOK_STAR[module].split()) - set(ns)
    assert not missing, f"fastnn.dlfs2.{module} does not hand over {sorted(missing)}"
    assert ns["np"] is np and ns["GPU"] is False


CHAPTER_STYLE = r'''
import sys
from fastnn.dlfs2.np import *
from fastnn.dlfs2.time_layers import *
from fastnn.dlfs2.base_model import BaseModel
from fastnn.dlfs2.optimizer import Adam
from fastnn.dlfs2.trainer import RnnlmTrainer
from fastnn.dlfs2.util import eval_perplexity


class TinyRnnlm(BaseModel):
    def __init__(self, vocab_size, wordvec_size, hidden_size):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.randn
        embed_W = (rn(V, D) / 100).astype('f')
        lstm_Wx = (rn(D, 4 * H) / np.sqrt(D)).astype('f')
        lstm_Wh = (rn(H, 4 * H) / np.sqrt(H)).astype('f')
        lstm_b = np.zeros(4 * H).astype('f')
        self.layers = [TimeEmbedding(embed_W),
                       TimeDropout(0.1),
                       TimeLSTM(lstm_Wx, lstm_Wh, lstm_b, stateful=True),
                       TimeAffine(embed_W.T, np.zeros(V).astype('f'))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, xs, ts, train_flg=True):
        self.layers[1].train_flg = train_flg
        for layer in self.layers:
            xs = layer.forward(xs)
        return self.loss_layer.forward(xs, ts)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def reset_state(self):
        self.layers[2].reset_state()


np.random.seed(0)
corpus = np.array([0, 1, 2, 3, 4, 5, 6, 7] * 60)
model = TinyRnnlm(8, 16, 16)
trainer = RnnlmTrainer(model, Adam(0.05))
trainer.fit(corpus[:-1], corpus[1:], max_epoch=8, batch_size=4, time_size=8, max_grad=5.0,
            eval_interval=5)
model.reset_state()
ppl = eval_perplexity(model, corpus, batch_size=4, time_size=8)
print("first", trainer.ppl_list[0], "perplexity", float(ppl), "GPU", GPU)
'''


def test_a_chapter_style_program_runs_on_star_imports():
    proc = run_python(CHAPTER_STYLE, seconds=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1].split()
    first, ppl = float(last[1]), float(last[3])
    assert "| epoch 1 |  iter 1 / 14 |" in proc.stdout
    assert first > 6 and ppl < 1.5, proc.stdout[-1000:]  # 8 words in a fixed cycle: learnable
    assert last[-1] == "False"
