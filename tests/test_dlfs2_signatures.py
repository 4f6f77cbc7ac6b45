"""Same names, parameters and defaults as the book's current code: for every public class
(its constructor and public methods) and function of both volumes' ``common/`` and of the vol. 2
chapter files fastnn.dlfs2 carries, the parameter list written out here (taken from the books'
code) against ``inspect.signature`` of fastnn's.

A fastnn callable may add parameters after the book's, with defaults, where it deliberately
offers more; each such addition is listed in EXTRAS (and in the README).
"""

import importlib
import inspect

import pytest

# (book file, fastnn module, [(name, "the book's parameters, self left out"), ...])
VOL1 = [
    ("vol1 common/layers.py", "fastnn.layers", [
        ("Relu", ""),
        ("Relu.forward", "x"),
        ("Relu.backward", "dout"),
        ("Sigmoid", ""),
        ("Sigmoid.forward", "x"),
        ("Sigmoid.backward", "dout"),
        ("Affine", "W, b"),
        ("Affine.forward", "x"),
        ("Affine.backward", "dout"),
        ("SoftmaxWithLoss", ""),
        ("SoftmaxWithLoss.forward", "x, t"),
        ("SoftmaxWithLoss.backward", "dout=1"),
        ("Dropout", "dropout_ratio=0.5"),
        ("Dropout.forward", "x, train_flg=True"),
        ("Dropout.backward", "dout"),
        ("BatchNormalization", "gamma, beta, momentum=0.9, running_mean=None, running_var=None"),
        ("BatchNormalization.forward", "x, train_flg=True"),
        ("BatchNormalization.backward", "dout"),
        ("Convolution", "W, b, stride=1, pad=0"),
        ("Convolution.forward", "x"),
        ("Convolution.backward", "dout"),
        ("Pooling", "pool_h, pool_w, stride=2, pad=0"),
        ("Pooling.forward", "x"),
        ("Pooling.backward", "dout"),
    ]),
    ("vol1 common/functions.py", "fastnn.functions", [
        ("identity_function", "x"),
        ("step_function", "x"),
        ("sigmoid", "x"),
        ("sigmoid_grad", "x"),
        ("relu", "x"),
        ("relu_grad", "x"),
        ("softmax", "x"),
        ("sum_squared_error", "y, t"),
        ("cross_entropy_error", "y, t"),
        ("softmax_loss", "X, t"),
    ]),
    ("vol1 common/gradient.py", "fastnn.gradient", [
        ("numerical_gradient_2d", "f, X"),
        ("numerical_gradient", "f, x"),
    ]),
    ("vol1 common/util.py", "fastnn.util", [
        ("smooth_curve", "x"),
        ("shuffle_dataset", "x, t"),
        ("conv_output_size", "input_size, filter_size, stride=1, pad=0"),
        ("im2col", "input_data, filter_h, filter_w, stride=1, pad=0"),
        ("col2im", "col, input_shape, filter_h, filter_w, stride=1, pad=0"),
    ]),
    ("vol1 common/optimizer.py", "fastnn.optim", [
        ("SGD", "lr=0.01"),
        ("SGD.update", "params, grads"),
        ("Momentum", "lr=0.01, momentum=0.9"),
        ("Momentum.update", "params, grads"),
        ("Nesterov", "lr=0.01, momentum=0.9"),
        ("Nesterov.update", "params, grads"),
        ("AdaGrad", "lr=0.01"),
        ("AdaGrad.update", "params, grads"),
        ("RMSprop", "lr=0.01, decay_rate=0.99"),
        ("RMSprop.update", "params, grads"),
        ("Adam", "lr=0.001, beta1=0.9, beta2=0.999"),
        ("Adam.update", "params, grads"),
    ]),
    ("vol1 common/trainer.py", "fastnn.trainer", [
        ("Trainer", "network, x_train, t_train, x_test, t_test, epochs=20, mini_batch_size=100, optimizer='SGD', optimizer_param={'lr': 0.01}, evaluate_sample_num_per_epoch=None, verbose=True"),
        ("Trainer.train_step", ""),
        ("Trainer.train", ""),
    ]),
    ("vol1 common/multi_layer_net.py", "fastnn.models", [
        ("MultiLayerNet", "input_size, hidden_size_list, output_size, activation='relu', weight_init_std='relu', weight_decay_lambda=0"),
        ("MultiLayerNet.predict", "x"),
        ("MultiLayerNet.loss", "x, t"),
        ("MultiLayerNet.accuracy", "x, t"),
        ("MultiLayerNet.numerical_gradient", "x, t"),
        ("MultiLayerNet.gradient", "x, t"),
    ]),
    ("vol1 common/multi_layer_net_extend.py", "fastnn.models", [
        ("MultiLayerNetExtend", "input_size, hidden_size_list, output_size, activation='relu', weight_init_std='relu', weight_decay_lambda=0, use_dropout=False, dropout_ration=0.5, use_batchnorm=False"),
        ("MultiLayerNetExtend.predict", "x, train_flg=False"),
        ("MultiLayerNetExtend.loss", "x, t, train_flg=False"),
        ("MultiLayerNetExtend.accuracy", "x, t"),
        ("MultiLayerNetExtend.numerical_gradient", "x, t"),
        ("MultiLayerNetExtend.gradient", "x, t"),
    ]),
    ("vol1 ch07/simple_convnet.py", "fastnn.models", [
        ("SimpleConvNet", "input_dim=(1, 28, 28), conv_param={'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1}, hidden_size=100, output_size=10, weight_init_std=0.01"),
        ("SimpleConvNet.predict", "x"),
        ("SimpleConvNet.loss", "x, t"),
        ("SimpleConvNet.accuracy", "x, t, batch_size=100"),
        ("SimpleConvNet.numerical_gradient", "x, t"),
        ("SimpleConvNet.gradient", "x, t"),
        ("SimpleConvNet.save_params", "file_name='params.pkl'"),
        ("SimpleConvNet.load_params", "file_name='params.pkl'"),
    ]),
    ("vol1 ch08/deep_convnet.py", "fastnn.models", [
        ("DeepConvNet", "input_dim=(1, 28, 28), conv_param_1={'filter_num': 16, 'filter_size': 3, 'pad': 1, 'stride': 1}, conv_param_2={'filter_num': 16, 'filter_size': 3, 'pad': 1, 'stride': 1}, conv_param_3={'filter_num': 32, 'filter_size': 3, 'pad': 1, 'stride': 1}, conv_param_4={'filter_num': 32, 'filter_size': 3, 'pad': 2, 'stride': 1}, conv_param_5={'filter_num': 64, 'filter_size': 3, 'pad': 1, 'stride': 1}, conv_param_6={'filter_num': 64, 'filter_size': 3, 'pad': 1, 'stride': 1}, hidden_size=50, output_size=10"),
        ("DeepConvNet.predict", "x, train_flg=False"),
        ("DeepConvNet.loss", "x, t"),
        ("DeepConvNet.accuracy", "x, t, batch_size=100"),
        ("DeepConvNet.gradient", "x, t"),
        ("DeepConvNet.save_params", "file_name='params.pkl'"),
        ("DeepConvNet.load_params", "file_name='params.pkl'"),
    ]),
]

VOL2 = [
    ("vol2 common/layers.py", "fastnn.dlfs2.layers", [
        ("MatMul", "W"),
        ("MatMul.forward", "x"),
        ("MatMul.backward", "dout"),
        ("Affine", "W, b"),
        ("Affine.forward", "x"),
        ("Affine.backward", "dout"),
        ("Softmax", ""),
        ("Softmax.forward", "x"),
        ("Softmax.backward", "dout"),
        ("SoftmaxWithLoss", ""),
        ("SoftmaxWithLoss.forward", "x, t"),
        ("SoftmaxWithLoss.backward", "dout=1"),
        ("Sigmoid", ""),
        ("Sigmoid.forward", "x"),
        ("Sigmoid.backward", "dout"),
        ("SigmoidWithLoss", ""),
        ("SigmoidWithLoss.forward", "x, t"),
        ("SigmoidWithLoss.backward", "dout=1"),
        ("Dropout", "dropout_ratio=0.5"),
        ("Dropout.forward", "x, train_flg=True"),
        ("Dropout.backward", "dout"),
        ("Embedding", "W"),
        ("Embedding.forward", "idx"),
        ("Embedding.backward", "dout"),
    ]),
    ("vol2 common/time_layers.py", "fastnn.dlfs2.time_layers", [
        ("RNN", "Wx, Wh, b"),
        ("RNN.forward", "x, h_prev"),
        ("RNN.backward", "dh_next"),
        ("TimeRNN", "Wx, Wh, b, stateful=False"),
        ("TimeRNN.forward", "xs"),
        ("TimeRNN.backward", "dhs"),
        ("TimeRNN.set_state", "h"),
        ("TimeRNN.reset_state", ""),
        ("LSTM", "Wx, Wh, b"),
        ("LSTM.forward", "x, h_prev, c_prev"),
        ("LSTM.backward", "dh_next, dc_next"),
        ("TimeLSTM", "Wx, Wh, b, stateful=False"),
        ("TimeLSTM.forward", "xs"),
        ("TimeLSTM.backward", "dhs"),
        ("TimeLSTM.set_state", "h, c=None"),
        ("TimeLSTM.reset_state", ""),
        ("TimeEmbedding", "W"),
        ("TimeEmbedding.forward", "xs"),
        ("TimeEmbedding.backward", "dout"),
        ("TimeAffine", "W, b"),
        ("TimeAffine.forward", "x"),
        ("TimeAffine.backward", "dout"),
        ("TimeSoftmaxWithLoss", ""),
        ("TimeSoftmaxWithLoss.forward", "xs, ts"),
        ("TimeSoftmaxWithLoss.backward", "dout=1"),
        ("TimeDropout", "dropout_ratio=0.5"),
        ("TimeDropout.forward", "xs"),
        ("TimeDropout.backward", "dout"),
        ("TimeBiLSTM", "Wx1, Wh1, b1, Wx2, Wh2, b2, stateful=False"),
        ("TimeBiLSTM.forward", "xs"),
        ("TimeBiLSTM.backward", "dhs"),
        ("TimeSigmoidWithLoss", ""),
        ("TimeSigmoidWithLoss.forward", "xs, ts"),
        ("TimeSigmoidWithLoss.backward", "dout=1"),
        ("GRU", "Wx, Wh, b"),
        ("GRU.forward", "x, h_prev"),
        ("GRU.backward", "dh_next"),
        ("TimeGRU", "Wx, Wh, b, stateful=False"),
        ("TimeGRU.forward", "xs"),
        ("TimeGRU.backward", "dhs"),
        ("TimeGRU.set_state", "h"),
        ("TimeGRU.reset_state", ""),
        ("Simple_TimeSoftmaxWithLoss", ""),
        ("Simple_TimeSoftmaxWithLoss.forward", "xs, ts"),
        ("Simple_TimeSoftmaxWithLoss.backward", "dout=1"),
        ("Simple_TimeAffine", "W, b"),
        ("Simple_TimeAffine.forward", "xs"),
        ("Simple_TimeAffine.backward", "dout"),
    ]),
    ("vol2 common/functions.py", "fastnn.dlfs2.functions", [
        ("sigmoid", "x"),
        ("relu", "x"),
        ("softmax", "x"),
        ("cross_entropy_error", "y, t"),
    ]),
    ("vol2 common/optimizer.py", "fastnn.dlfs2.optimizer", [
        ("SGD", "lr=0.01"),
        ("SGD.update", "params, grads"),
        ("Momentum", "lr=0.01, momentum=0.9"),
        ("Momentum.update", "params, grads"),
        ("Nesterov", "lr=0.01, momentum=0.9"),
        ("Nesterov.update", "params, grads"),
        ("AdaGrad", "lr=0.01"),
        ("AdaGrad.update", "params, grads"),
        ("RMSprop", "lr=0.01, decay_rate=0.99"),
        ("RMSprop.update", "params, grads"),
        ("Adam", "lr=0.001, beta1=0.9, beta2=0.999"),
        ("Adam.update", "params, grads"),
    ]),
    ("vol2 common/trainer.py", "fastnn.dlfs2.trainer", [
        ("Trainer", "model, optimizer"),
        ("Trainer.fit", "x, t, max_epoch=10, batch_size=32, max_grad=None, eval_interval=20"),
        ("Trainer.plot", "ylim=None"),
        ("RnnlmTrainer", "model, optimizer"),
        ("RnnlmTrainer.get_batch", "x, t, batch_size, time_size"),
        ("RnnlmTrainer.fit", "xs, ts, max_epoch=10, batch_size=20, time_size=35, max_grad=None, eval_interval=20"),
        ("RnnlmTrainer.plot", "ylim=None"),
        ("remove_duplicate", "params, grads"),
    ]),
    ("vol2 common/util.py", "fastnn.dlfs2.util", [
        ("preprocess", "text"),
        ("cos_similarity", "x, y, eps=1e-08"),
        ("most_similar", "query, word_to_id, id_to_word, word_matrix, top=5"),
        ("convert_one_hot", "corpus, vocab_size"),
        ("create_co_matrix", "corpus, vocab_size, window_size=1"),
        ("ppmi", "C, verbose=False, eps=1e-08"),
        ("create_contexts_target", "corpus, window_size=1"),
        ("to_cpu", "x"),
        ("to_gpu", "x"),
        ("clip_grads", "grads, max_norm"),
        ("eval_perplexity", "model, corpus, batch_size=10, time_size=35"),
        ("eval_seq2seq", "model, question, correct, id_to_char, verbose=False, is_reverse=False"),
        ("analogy", "a, b, c, word_to_id, id_to_word, word_matrix, top=5, answer=None"),
        ("normalize", "x"),
    ]),
    ("vol2 common/base_model.py", "fastnn.dlfs2.base_model", [
        ("BaseModel", ""),
        ("BaseModel.forward", "*args"),
        ("BaseModel.backward", "*args"),
        ("BaseModel.save_params", "file_name=None"),
        ("BaseModel.load_params", "file_name=None"),
    ]),
    ("vol2 ch04/negative_sampling_layer.py", "fastnn.dlfs2.negative_sampling_layer", [
        ("EmbeddingDot", "W"),
        ("EmbeddingDot.forward", "h, idx"),
        ("EmbeddingDot.backward", "dout"),
        ("UnigramSampler", "corpus, power, sample_size"),
        ("UnigramSampler.get_negative_sample", "target"),
        ("NegativeSamplingLoss", "W, corpus, power=0.75, sample_size=5"),
        ("NegativeSamplingLoss.forward", "h, target"),
        ("NegativeSamplingLoss.backward", "dout=1"),
    ]),
    ("vol2 ch08/attention_layer.py", "fastnn.dlfs2.attention_layer", [
        ("WeightSum", ""),
        ("WeightSum.forward", "hs, a"),
        ("WeightSum.backward", "dc"),
        ("AttentionWeight", ""),
        ("AttentionWeight.forward", "hs, h"),
        ("AttentionWeight.backward", "da"),
        ("Attention", ""),
        ("Attention.forward", "hs, h"),
        ("Attention.backward", "dout"),
        ("TimeAttention", ""),
        ("TimeAttention.forward", "hs_enc, hs_dec"),
        ("TimeAttention.backward", "dout"),
    ]),
    ("vol2 ch05/simple_rnnlm.py", "fastnn.dlfs2.simple_rnnlm", [
        ("SimpleRnnlm", "vocab_size, wordvec_size, hidden_size"),
        ("SimpleRnnlm.forward", "xs, ts"),
        ("SimpleRnnlm.backward", "dout=1"),
        ("SimpleRnnlm.reset_state", ""),
    ]),
    ("vol2 ch06/rnnlm.py", "fastnn.dlfs2.rnnlm", [
        ("Rnnlm", "vocab_size=10000, wordvec_size=100, hidden_size=100"),
        ("Rnnlm.predict", "xs"),
        ("Rnnlm.forward", "xs, ts"),
        ("Rnnlm.backward", "dout=1"),
        ("Rnnlm.reset_state", ""),
    ]),
    ("vol2 ch06/better_rnnlm.py", "fastnn.dlfs2.better_rnnlm", [
        ("BetterRnnlm", "vocab_size=10000, wordvec_size=650, hidden_size=650, dropout_ratio=0.5"),
        ("BetterRnnlm.predict", "xs, train_flg=False"),
        ("BetterRnnlm.forward", "xs, ts, train_flg=True"),
        ("BetterRnnlm.backward", "dout=1"),
        ("BetterRnnlm.reset_state", ""),
    ]),
    ("vol2 ch07/seq2seq.py", "fastnn.dlfs2.seq2seq", [
        ("Encoder", "vocab_size, wordvec_size, hidden_size"),
        ("Encoder.forward", "xs"),
        ("Encoder.backward", "dh"),
        ("Decoder", "vocab_size, wordvec_size, hidden_size"),
        ("Decoder.forward", "xs, h"),
        ("Decoder.backward", "dscore"),
        ("Decoder.generate", "h, start_id, sample_size"),
        ("Seq2seq", "vocab_size, wordvec_size, hidden_size"),
        ("Seq2seq.forward", "xs, ts"),
        ("Seq2seq.backward", "dout=1"),
        ("Seq2seq.generate", "xs, start_id, sample_size"),
    ]),
    ("vol2 ch07/peeky_seq2seq.py", "fastnn.dlfs2.peeky_seq2seq", [
        ("PeekyDecoder", "vocab_size, wordvec_size, hidden_size"),
        ("PeekyDecoder.forward", "xs, h"),
        ("PeekyDecoder.backward", "dscore"),
        ("PeekyDecoder.generate", "h, start_id, sample_size"),
        ("PeekySeq2seq", "vocab_size, wordvec_size, hidden_size"),
    ]),
    ("vol2 ch08/attention_seq2seq.py", "fastnn.dlfs2.attention_seq2seq", [
        ("AttentionEncoder", "vocab_size, wordvec_size, hidden_size"),
        ("AttentionEncoder.forward", "xs"),
        ("AttentionEncoder.backward", "dhs"),
        ("AttentionDecoder", "vocab_size, wordvec_size, hidden_size"),
        ("AttentionDecoder.forward", "xs, enc_hs"),
        ("AttentionDecoder.backward", "dscore"),
        ("AttentionDecoder.generate", "enc_hs, start_id, sample_size"),
        ("AttentionSeq2seq", "vocab_size, wordvec_size, hidden_size"),
    ]),
    ("vol2 ch04/cbow.py", "fastnn.dlfs2.cbow", [
        ("CBOW", "vocab_size, hidden_size, window_size, corpus"),
        ("CBOW.forward", "contexts, target"),
        ("CBOW.backward", "dout=1"),
    ]),
    ("vol2 ch04/skip_gram.py", "fastnn.dlfs2.skip_gram", [
        ("SkipGram", "vocab_size, hidden_size, window_size, corpus"),
        ("SkipGram.forward", "contexts, target"),
        ("SkipGram.backward", "dout=1"),
    ]),
    ("vol2 ch03/simple_cbow.py", "fastnn.dlfs2.simple_cbow", [
        ("SimpleCBOW", "vocab_size, hidden_size"),
        ("SimpleCBOW.forward", "contexts, target"),
        ("SimpleCBOW.backward", "dout=1"),
    ]),
    ("vol2 ch03/simple_skip_gram.py", "fastnn.dlfs2.simple_skip_gram", [
        ("SimpleSkipGram", "vocab_size, hidden_size"),
        ("SimpleSkipGram.forward", "contexts, target"),
        ("SimpleSkipGram.backward", "dout=1"),
    ]),
    ("vol2 ch01/two_layer_net.py", "fastnn.dlfs2.two_layer_net", [
        ("TwoLayerNet", "input_size, hidden_size, output_size"),
        ("TwoLayerNet.predict", "x"),
        ("TwoLayerNet.forward", "x, t"),
        ("TwoLayerNet.backward", "dout=1"),
    ]),
    ("vol2 dataset/ptb.py", "fastnn.dlfs2.dataset.ptb", [
        ("load_vocab", ""),
        ("load_data", "data_type='train'"),
    ]),
    ("vol2 dataset/sequence.py", "fastnn.dlfs2.dataset.sequence", [
        ("load_data", "file_name='addition.txt', seed=1984"),
        ("get_vocab", ""),
    ]),
    ("vol2 dataset/spiral.py", "fastnn.dlfs2.dataset.spiral", [
        ("load_data", "seed=1984"),
    ]),
]

_MODEL_EXTRAS = {"": ["dtype"], "predict": ["train_flg"], "accuracy": ["batch_size"],
                 "save_params": ["metadata"], "load_params": ["allow_pickle"]}

# fastnn's additions (keyword parameters with defaults, after the book's): (module, name).
EXTRAS = {
    ("fastnn.gradient", "numerical_gradient"): ["h"],
    ("fastnn.trainer", "Trainer"): ["stop_on_nan", "global_batch_size"],
    ("fastnn.layers", "Convolution"): ["groups"],
    ("fastnn.trainer", "Trainer.train"): ["on_step_end", "on_epoch_end"],
}
for _net in ("MultiLayerNet", "MultiLayerNetExtend", "SimpleConvNet", "DeepConvNet"):
    for _method, _extra in _MODEL_EXTRAS.items():
        EXTRAS[("fastnn.models", f"{_net}.{_method}".rstrip("."))] = _extra


def _params(obj):
    """[(name, repr of default or None)] of obj's signature, self left out."""
    sig = inspect.signature(obj)
    out = []
    for p in sig.parameters.values():
        name = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        out.append((name, None if p.default is p.empty else repr(p.default)))
    return out


def _book_params(text):
    out = []
    for part in filter(None, (s.strip() for s in _split_top(text))):
        name, _, default = part.partition("=")
        out.append((name, default or None))
    return out


def _split_top(text):
    """Split at the commas outside brackets (defaults such as {'lr': 0.01} hold commas)."""
    depth, cur = 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            yield cur
            cur = ""
        else:
            cur += ch
    yield cur


def _resolve(module, name):
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if inspect.isclass(obj):
        return obj.__init__ if obj.__init__ is not object.__init__ else (lambda: None)
    return obj


def _drop_self(params):
    """Methods looked up on the class, and constructors, carry self first."""
    return params[1:] if params and params[0][0] == "self" else params


CASES = [(src, module, name, sig) for src, module, entries in VOL1 + VOL2
         for name, sig in entries]


@pytest.mark.parametrize("src,module,name,book", CASES,
                         ids=[f"{c[0].split()[1]}:{c[2]}" for c in CASES])
def test_signature_is_the_books(src, module, name, book):
    obj = _resolve(module, name)
    got = _drop_self(_params(obj))
    want = _book_params(book)
    assert got[:len(want)] == want, f"{module}.{name}: book ({book}) vs fastnn {got}"
    extra = got[len(want):]
    allowed = EXTRAS.get((module, name), [])
    assert all(n in allowed for n, _ in extra), \
        f"{module}.{name}: parameters beyond the book's: {extra} (allowed: {allowed})"
    assert all(default is not None for _, default in extra), f"{module}.{name}: {extra}"


def test_the_table_covers_every_vol2_module_of_the_import_rule():
    modules = {module for _, module, _ in VOL2}
    for name in ["layers", "time_layers", "functions", "optimizer", "trainer", "util",
                 "base_model", "negative_sampling_layer", "attention_layer", "simple_rnnlm",
                 "rnnlm", "better_rnnlm", "seq2seq", "peeky_seq2seq", "attention_seq2seq",
                 "cbow", "skip_gram", "simple_cbow", "simple_skip_gram", "two_layer_net",
                 "dataset.ptb", "dataset.sequence", "dataset.spiral"]:
        assert "fastnn.dlfs2." + name in modules
    assert len(CASES) > 250


def test_pooling_default_stride_is_two():
    from fastnn import layers
    from fastnn.reference import layers as ref
    for cls in (layers.Pooling, ref.Pooling):
        assert inspect.signature(cls).parameters["stride"].default == 2
