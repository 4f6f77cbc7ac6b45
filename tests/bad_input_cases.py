"""The bad-input table of docs/errors.md as code: (id, API, input, exception, message pattern,
call). tests/test_bad_input.py checks each row in-process and runs the whole table in a child
process (``python tests/bad_input_cases.py`` prints one JSON line per row) to prove that none of
them crashes the interpreter."""

import json
import os
import pickle

import numpy as np

import fastnn
import fastnn.cuda
import fastnn.time_layers as TL
from fastnn import _C, ops, basenn, datasets, layers as L, models, nn, optim, util
from fastnn.datasets import DatasetError, DatasetNotFound
from fastnn.models import ParamsError
from fastnn.trainer import Trainer, TrainingDiverged

z = np.zeros


def _conv(x, W, b=None, stride=1, pad=0):
    return L.Convolution(W, z(W.shape[0]) if b is None else b, stride, pad).forward(x)


def _affine(x, W, b):
    return L.Affine(W, b).forward(x)


def _loss(x, t):
    return L.SoftmaxWithLoss().forward(x, t)


def _bn(x, D=3):
    return L.BatchNormalization(np.ones(D), z(D)).forward(x)


def _load_params(content, suffix, **kwargs):
    """load_params of a file holding `content` (written to a fresh temporary folder)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "params" + suffix)
        with open(path, "wb") as f:
            f.write(content)
        models.TwoLayerNet(4, 3, 2).load_params(path, **kwargs)


class _Calls:
    """Pickles as a call of ``func(*args)``: what a malicious params.pkl asks for."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _npz_member(name, data):
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def _npy_claiming(shape):
    header = repr({"descr": "<f8", "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 16


def _npy_bytes():
    import io
    buf = io.BytesIO()
    np.save(buf, z(3))
    return buf.getvalue()


def _basenn_forged():
    """A 1 KB checkpoint whose description declares a 40000 x 40000 linear layer."""
    from fastnn._safeio import safetensors_bytes
    spec = {"format": "fastnn.basenn", "version": 1, "task": "cls", "dtype": "float32",
            "loss": None, "optimizer": "SGD", "classes": None, "input_shape": None,
            "image": None, "epochs": 0,
            "layers": [{"layer": "linear", "activation": None, "kw": {"size": [40000, 40000]}}]}
    return safetensors_bytes({"param:0.W": z((2, 3), np.float32)},
                             {"format": "fastnn.basenn", "spec": json.dumps(spec)})


def _nan_training():
    x = z((4, 2))
    x[1] = np.nan
    Trainer(models.TwoLayerNet(2, 3, 2), x, z(4, int), x, z(4, int), epochs=1,
            verbose=False).train()


def _basenn_load(content):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.pth")
        with open(path, "wb") as f:
            f.write(content)
        basenn.nn().load(path)


def _no_data(load):
    """Run a dataset loader with no data folder to find (FASTNN_DATA and HOME set to nowhere)."""
    old = {k: os.environ.get(k) for k in ("FASTNN_DATA", "HOME")}
    os.environ.update(FASTNN_DATA="/nonexistent/fastnn-data", HOME="/nonexistent")
    try:
        load()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _idx_header(dims, data=bytes(7840)):
    """load_mnist from a folder whose training images file declares ``dims`` and holds
    ``data`` (10 images' worth by default)."""
    import gzip
    import struct
    import tempfile
    from pathlib import Path

    from idxfiles import NAMES, write_dataset

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "mnist"
        write_dataset(folder, 10, 5)
        with gzip.open(folder / NAMES["train"][0], "wb") as f:
            f.write(struct.pack(">IIII", 0x803, *dims) + data)
        old = os.environ.get("FASTNN_DATA")
        os.environ["FASTNN_DATA"] = d
        try:
            datasets.load_mnist(download=False)
        finally:
            if old is None:
                os.environ.pop("FASTNN_DATA", None)
            else:
                os.environ["FASTNN_DATA"] = old


def _read_only(a):
    a.flags.writeable = False
    return a


class GPUArray:
    __cuda_array_interface__ = {"shape": (2, 3), "typestr": "<f4", "data": (0, False),
                                "version": 3}
    shape, ndim, dtype = (2, 3), 2, np.dtype(np.float32)


X = z((2, 1, 5, 5))
W = z((3, 1, 3, 3))

# id, API, input (as the docs say it), exception, message pattern, call
CASES = [
    # ---- dtypes, devices
    ("dtype-complex", "Relu.forward", "complex128 x", TypeError,
     "Relu: arrays of dtype complex128 are not supported",
     lambda: L.Relu().forward(z(3, complex))),
    ("dtype-object", "Affine.forward", "object x", TypeError,
     "Affine: arrays of dtype object are not supported",
     lambda: _affine(np.array([[1, None]], object), z((2, 2)), z(2))),
    ("dtype-str", "Sigmoid.forward", "str x", TypeError,
     "Sigmoid: arrays of dtype <U1 are not supported",
     lambda: L.Sigmoid().forward(np.array(["a"]))),
    ("gpu-array", "Relu.forward", "an array with __cuda_array_interface__", TypeError,
     "got a GPU array", lambda: L.Relu().forward(GPUArray())),
    # ---- activations
    ("relu-dout-shape", "Relu.backward", "dout of another shape", ValueError,
     r"Relu.backward: dout has shape \(2,\) but the forward input had shape \(3,\)",
     lambda: (lambda r: (r.forward(z(3)), r.backward(z(2))))(L.Relu())),
    ("sigmoid-dout-shape", "Sigmoid.backward", "dout of another shape", ValueError,
     r"Sigmoid.backward: dout has shape \(2,\) but the forward output had shape \(3,\)",
     lambda: (lambda r: (r.forward(z(3)), r.backward(z(2))))(L.Sigmoid())),
    # ---- affine
    ("affine-features", "Affine.forward", "x with 3 features, W for 4", ValueError,
     r"Affine: x has 3 features per sample but W expects 4",
     lambda: _affine(z((2, 3)), z((4, 5)), z(5))),
    ("affine-W-ndim", "Affine.forward", "1-D W", ValueError,
     r"Affine: W must be 2-D \(D, M\) and b 1-D", lambda: _affine(z((2, 3)), z(3), z(1))),
    ("affine-b-length", "Affine.forward", "b of the wrong length", ValueError,
     r"Affine: b has length 4 but W has 5 columns", lambda: _affine(z((2, 3)), z((3, 5)), z(4))),
    ("affine-scalar", "Affine.forward", "a 0-D x", ValueError,
     "Affine: x must have a batch axis", lambda: _affine(np.float64(1), z((1, 1)), z(1))),
    ("affine-backward-first", "Affine.backward", "backward before forward", RuntimeError,
     r"Affine.backward: call forward\(x\) first", lambda: L.Affine(z((2, 2)), z(2)).backward(z(2))),
    ("affine-dout-shape", "Affine.backward", "dout of another shape", ValueError,
     r"Affine.backward: dout has shape \(2, 4\) but the forward output had shape \(2, 5\)",
     lambda: (lambda a: (a.forward(z((2, 3))), a.backward(z((2, 4)))))(L.Affine(z((3, 5)), z(5)))),
    # ---- softmax with loss
    ("loss-label-range", "SoftmaxWithLoss.forward", "label 3 with 3 classes", IndexError,
     "label 3 .* is out of range for 3 classes", lambda: _loss(z((2, 3)), np.array([0, 3]))),
    ("loss-label-negative", "SoftmaxWithLoss.forward", "label -1", IndexError,
     "label -1 .* is out of range", lambda: _loss(z((2, 3)), np.array([0, -1]))),
    ("loss-label-uint64", "SoftmaxWithLoss.forward", "uint64 label 2**63", IndexError,
     "is out of range", lambda: _loss(z((2, 3)), np.array([0, 2**63], np.uint64))),
    ("loss-float-labels", "SoftmaxWithLoss.forward", "float labels (N,)", TypeError,
     "integer labels t must have an integer dtype", lambda: _loss(z((2, 3)), z(2))),
    ("loss-label-count", "SoftmaxWithLoss.forward", "3 labels for 2 samples", ValueError,
     "got 3 labels for a batch of 2", lambda: _loss(z((2, 3)), np.array([0, 1, 2]))),
    ("loss-x-ndim", "SoftmaxWithLoss.forward", "3-D x", ValueError,
     r"expected x of shape \(N, C\)", lambda: _loss(z((2, 3, 4)), np.array([0, 1]))),
    ("loss-backward-first", "SoftmaxWithLoss.backward", "backward before forward", RuntimeError,
     "call forward", lambda: L.SoftmaxWithLoss().backward()),
    ("loss-dout-array", "SoftmaxWithLoss.backward", "dout with 2 numbers", ValueError,
     "dout must be one number",
     lambda: (lambda s: (s.forward(z((2, 3)), np.array([0, 1])), s.backward(z(2))))(
         L.SoftmaxWithLoss())),
    # ---- batch normalization
    ("bn-gamma-shape", "BatchNormalization.forward", "gamma for 3 features, x with 4", ValueError,
     r"gamma.shape=\(3,\) but x has 4 features", lambda: _bn(z((2, 4)))),
    ("bn-x-ndim", "BatchNormalization.forward", "3-D x", ValueError,
     "x must be 2-D .* or 4-D", lambda: _bn(z((2, 3, 1)))),
    ("bn-backward-first", "BatchNormalization.backward", "backward before forward", RuntimeError,
     "call forward", lambda: L.BatchNormalization(np.ones(3), z(3)).backward(z((2, 3)))),
    ("dropout-backward-first", "Dropout.backward", "backward before a training forward",
     ValueError, "Dropout.backward: dout has shape", lambda: L.Dropout().backward(z(3))),
    # ---- convolution
    ("conv-channels", "Convolution.forward", "x with 2 channels, W for 1", ValueError,
     "Convolution: x has 2 channels but W expects 1", lambda: _conv(z((2, 2, 5, 5)), W)),
    ("conv-W-ndim", "Convolution.forward", "3-D W", ValueError,
     r"W must be 4-D \(FN, C, FH, FW\)", lambda: _conv(X, z((3, 3, 3)))),
    ("conv-x-ndim", "Convolution.forward", "3-D x", ValueError,
     r"x must be 4-D \(N, C, H, W\)", lambda: _conv(z((1, 5, 5)), W)),
    ("conv-window", "Convolution.forward", "7x7 filter on a 5x5 image", ValueError,
     "window 7x7 is larger than the padded input 5x5", lambda: _conv(X, z((3, 1, 7, 7)))),
    ("conv-stride", "Convolution.forward", "stride 0", ValueError,
     "stride must be >= 1, got 0", lambda: _conv(X, W, stride=0)),
    ("conv-pad", "Convolution.forward", "pad -1", ValueError,
     "pad must be >= 0, got -1", lambda: _conv(X, W, pad=-1)),
    ("conv-stride-float", "Convolution.forward", "stride 1.5", TypeError,
     "stride must be an integer, got 1.5", lambda: _conv(X, W, stride=1.5)),
    ("conv-bias", "Convolution.forward", "b with 2 elements for 3 filters", ValueError,
     "b must have FN=3 elements", lambda: _conv(X, W, b=z(2))),
    ("conv-backward-first", "Convolution.backward", "backward before forward", RuntimeError,
     "Convolution.backward called before forward",
     lambda: L.Convolution(W, z(3)).backward(z((2, 3, 3, 3)))),
    ("conv-dout-shape", "Convolution.backward", "dout of another shape", ValueError,
     r"dout has shape \(2, 3, 2, 2\) but the forward output had shape \(2, 3, 3, 3\)",
     lambda: (lambda c: (c.forward(X), c.backward(z((2, 3, 2, 2)))))(L.Convolution(W, z(3)))),
    # 1 PiB: more than any address space, so malloc fails even where the OS overcommits
    ("conv-huge-output", "Convolution.forward",
     "pad 2**23, no input channels (an output of 2.8e14 elements)", MemoryError,
     "Unable to allocate", lambda: _conv(z((1, 0, 2, 2)), z((1, 0, 1, 1)), pad=2**23)),
    ("conv-blas-int32", "Convolution.forward",
     "OH*OW = 2**34 > 2**31-1 (refused before the output is allocated)", ValueError,
     "OH\\*OW = .* is too large for BLAS",
     lambda: _conv(z((1, 1, 1, 1)), z((1, 1, 1, 1)), pad=2**16)),
    # ---- pooling
    ("pool-window-size", "Pooling()", "pool_h 0", ValueError,
     "window size must be at least 1x1, got 0x2", lambda: L.Pooling(0, 2)),
    ("pool-stride", "Pooling()", "stride 0", ValueError,
     "stride must be >= 1, got 0", lambda: L.Pooling(2, 2, 0)),
    ("pool-window", "Pooling.forward", "3x3 window on a 2x2 image", ValueError,
     "window 3x3 is larger than the padded input 2x2",
     lambda: L.Pooling(3, 3).forward(z((1, 1, 2, 2)))),
    ("pool-backward-first", "AvgPooling.backward", "backward before forward", RuntimeError,
     "AvgPooling.backward called before forward", lambda: L.AvgPooling(2, 2).backward(z(1))),
    ("pool-int32-argmax", "Pooling.forward", "a 65536x65536 window (pad 2**15)", ValueError,
     "more cells than its int32 argmax can index",
     lambda: L.Pooling(2**16, 2**16, 1, 2**15).forward(z((1, 1, 1, 1)))),
    ("pool-huge-output", "AvgPooling.forward", "pad 2**40 on a 1x1 image", ValueError,
     r"AvgPooling: OH\*OW = .* does not fit in 64 bits",
     lambda: L.AvgPooling(1, 1, 1, 2**40).forward(z((1, 1, 1, 1)))),
    # ---- im2col / col2im
    ("im2col-x-ndim", "util.im2col", "3-D x", ValueError,
     r"im2col: x must be 4-D", lambda: util.im2col(z((1, 5, 5)), 3, 3)),
    ("im2col-overflow", "util.im2col", "pad 2**31-1 (N*OH*OW overflows int64)", ValueError,
     r"im2col: OH\*OW = .* does not fit in 64 bits",
     lambda: util.im2col(z((1, 1, 2, 2)), 1, 1, 1, 2**31 - 1)),
    ("im2col-pad-overflow", "util.im2col", "pad 2**62 (2*pad overflows int64)", ValueError,
     r"im2col: 2\*pad = .* does not fit in 64 bits",
     lambda: util.im2col(z((1, 1, 1, 1)), 1, 1, 1, 2**62)),
    ("im2col-pad-int64", "util.im2col", "pad 2**70 (not an int64)", TypeError,
     "incompatible function arguments", lambda: util.im2col(z((1, 1, 1, 1)), 1, 1, 1, 2**70)),
    ("col2im-col-shape", "util.col2im", "col of the wrong shape", ValueError,
     r"col2im: col has shape \(4, 9\) but input_shape",
     lambda: util.col2im(z((4, 9)), (2, 1, 5, 5), 3, 3)),
    ("col2im-input-shape", "util.col2im", "a 3-D input_shape", ValueError,
     r"input_shape must be \(N, C, H, W\)", lambda: util.col2im(z((4, 9)), (1, 5, 5), 3, 3)),
    ("col2im-huge", "util.col2im", "input_shape (0, 1, 2**40, 2**40)", ValueError,
     r"col2im: H\*W = .* does not fit in 64 bits",
     lambda: util.col2im(z((0, 1)), (0, 1, 2**40, 2**40), 1, 1)),
    # ---- direct _C calls (the bindings check again; ops is the supported entry point)
    ("C-conv-channels", "_C.conv2d_forward", "x with 2 channels, W for 1", ValueError,
     "Convolution: x has 2 channels but W expects 1",
     lambda: _C.conv2d_forward(z((1, 2, 3, 3)), z((1, 1, 1, 1)), None, 1, 0)),
    ("C-complex", "_C.relu_forward", "complex128 x", TypeError,
     "incompatible function arguments", lambda: _C.relu_forward(z(3, complex))),
    ("C-label-range", "_C.softmax_cross_entropy_forward", "label 5 with 3 classes", IndexError,
     "label 5 .* is out of range for 3 classes",
     lambda: _C.softmax_cross_entropy_forward(z((1, 3)), np.array([5]), 0.0, None, "loss")),
    ("C-relu-mask", "_C.relu_backward", "mask of another size", ValueError,
     "Relu.backward: dout has shape",
     lambda: _C.relu_backward(z(3), z(2, bool), z(3))),
    ("C-pool-arg-shape", "_C.maxpool2d_backward", "arg of another shape", ValueError,
     "Pooling.backward: arg has shape",
     lambda: _C.maxpool2d_backward(z((1, 1, 1, 1)), z((1, 1, 2, 1), np.int32), [1, 1, 2, 2],
                                   2, 2, 1, 0)),
    ("C-col2im-shape", "_C.col2im", "col of the wrong shape", ValueError,
     "col2im: col has shape",
     lambda: _C.col2im(z((3, 9)), [1, 1, 5, 5], 3, 3, 1, 0)),
    ("C-softmax-out", "_C.softmax_cross_entropy_backward", "out of another shape", ValueError,
     r"out.shape=\(1, 2\) differs from y.shape=\(2, 3\)",
     lambda: _C.softmax_cross_entropy_backward(z((2, 3)), np.array([0, 1]), 1.0, None,
                                               z((1, 2)), "loss")),
    # ---- time layers (vol. 2) and torch-style nn modules
    ("time-ndim", "TimeLSTM.forward", "2-D xs", ValueError,
     r"TimeLSTM: expected a 3-D \(N, T, D\) sequence",
     lambda: TL.TimeLSTM(z((3, 8)), z((2, 8)), z(8)).forward(z((2, 3)))),
    ("time-features", "TimeLSTM.forward", "xs with 4 features, Wx for 3", ValueError,
     "TimeLSTM: input has 4 features but the weights expect 3",
     lambda: TL.TimeLSTM(z((3, 8)), z((2, 8)), z(8)).forward(z((2, 5, 4)))),
    ("time-Wh", "TimeRNN.forward", "Wh of shape (3, 2) for H = 2", ValueError,
     r"Wh has shape \(3, 2\) but \(2, 2\) was expected",
     lambda: TL.TimeRNN(z((3, 2)), z((3, 2)), z(2)).forward(z((2, 5, 3)))),
    ("time-embedding-index", "TimeEmbedding.forward", "word id 7 with 5 rows", IndexError,
     r"TimeEmbedding: index 7 is out of bounds for W with 5 rows \(word ids must lie in \[0, 5\)",
     lambda: TL.TimeEmbedding(z((5, 3))).forward(np.array([[7]]))),
    ("time-embedding-negative", "TimeEmbedding.forward", "word id -1", IndexError,
     r"TimeEmbedding: index -1 is out of bounds for W with 5 rows",
     lambda: TL.TimeEmbedding(z((5, 3))).forward(np.array([0, -1]))),
    ("embedding-dot-shape", "ops.embedding_dot_forward", "2 ids, h with 3 rows", ValueError,
     r"EmbeddingDot: expected idx of shape \(N,\) and h of shape \(N, 3\)",
     lambda: ops.embedding_dot_forward(z((5, 3)), np.array([1, 2]), z((3, 3)))),
    ("attention-hidden", "ops.attention_forward", "hidden sizes 4 and 6", ValueError,
     r"TimeAttention: hs_enc has hidden size 4 but hs_dec has 6",
     lambda: ops.attention_forward(z((2, 5, 4)), z((2, 3, 6)))),
    ("time-loss-label", "TimeSoftmaxWithLoss.forward", "label 5 with 4 classes", IndexError,
     "TimeSoftmaxWithLoss: label 5 .* is out of range for 4 classes",
     lambda: TL.TimeSoftmaxWithLoss().forward(z((2, 3, 4)), np.array([[0, 1, 5], [0, 0, 0]]))),
    # ---- backward before forward (every layer: RuntimeError)
    ("relu-backward-first", "Relu.backward", "backward before forward", RuntimeError,
     "Relu.backward called before forward",
     lambda: L.Relu().backward(z(3))),
    ("sigmoid-backward-first", "Sigmoid.backward", "backward before forward", RuntimeError,
     "Sigmoid.backward called before forward",
     lambda: L.Sigmoid().backward(z(3))),
    ("tanh-backward-first", "Tanh.backward", "backward before forward", RuntimeError,
     "Tanh.backward called before forward",
     lambda: L.Tanh().backward(z(3))),
    ("time-rnn-step-backward-first", "RNN.backward", "backward before forward", RuntimeError,
     "RNN.backward called before forward",
     lambda: TL.RNN(z((3, 2)), z((2, 2)), z(2)).backward(z((1, 2)))),
    ("time-lstm-step-backward-first", "LSTM.backward", "backward before forward", RuntimeError,
     "LSTM.backward called before forward",
     lambda: TL.LSTM(z((3, 8)), z((2, 8)), z(8)).backward(z((1, 2)), z((1, 2)))),
    ("time-gru-step-backward-first", "GRU.backward", "backward before forward", RuntimeError,
     "GRU.backward called before forward",
     lambda: TL.GRU(z((3, 6)), z((2, 6)), z(6)).backward(z((1, 2)))),
    ("time-rnn-backward-first", "TimeRNN.backward", "backward before forward", RuntimeError,
     "TimeRNN.backward called before forward",
     lambda: TL.TimeRNN(z((3, 2)), z((2, 2)), z(2)).backward(z((1, 2, 2)))),
    ("time-lstm-backward-first", "TimeLSTM.backward", "backward before forward", RuntimeError,
     "TimeLSTM.backward called before forward",
     lambda: TL.TimeLSTM(z((3, 8)), z((2, 8)), z(8)).backward(z((1, 2, 2)))),
    ("time-gru-backward-first", "TimeGRU.backward", "backward before forward", RuntimeError,
     "TimeGRU.backward called before forward",
     lambda: TL.TimeGRU(z((3, 6)), z((2, 6)), z(6)).backward(z((1, 2, 2)))),
    ("time-affine-backward-first", "TimeAffine.backward", "backward before forward", RuntimeError,
     "TimeAffine.backward called before forward",
     lambda: TL.TimeAffine(z((3, 2)), z(2)).backward(z((1, 2, 2)))),
    ("time-loss-backward-first", "TimeSoftmaxWithLoss.backward", "backward before forward",
     RuntimeError,
     "TimeSoftmaxWithLoss.backward called before forward",
     lambda: TL.TimeSoftmaxWithLoss().backward()),
    ("time-embedding-backward-first", "TimeEmbedding.backward", "backward before forward",
     RuntimeError,
     "TimeEmbedding.backward called before forward",
     lambda: TL.TimeEmbedding(z((5, 3))).backward(z((1, 2, 3)))),
    ("embedding-backward-first", "Embedding.backward", "backward before forward", RuntimeError,
     "Embedding.backward called before forward",
     lambda: TL.Embedding(z((5, 3))).backward(z((2, 3)))),
    ("time-dropout-backward-first", "TimeDropout.backward", "backward before forward",
     RuntimeError,
     "TimeDropout.backward called before forward",
     lambda: TL.TimeDropout().backward(z((1, 2, 3)))),
    ("time-bilstm-backward-first", "TimeBiLSTM.backward", "backward before forward", RuntimeError,
     "TimeBiLSTM.backward called before forward",
     lambda: TL.TimeBiLSTM(*[z((3, 8)), z((2, 8)), z(8)] * 2).backward(z((1, 2, 4)))),
    ("nn-hidden-size", "nn.LSTM()", "hidden_size 0", ValueError,
     "LSTM: hidden_size must be a positive int, got 0", lambda: nn.LSTM(3, 0)),
    ("nn-input-size", "nn.LSTM.__call__", "input with 2 features, input_size 3", ValueError,
     "LSTM: input has 2 features but input_size is 3", lambda: nn.LSTM(3, 4)(z((5, 2, 2)))),
    ("nn-ndim", "nn.GRU.__call__", "1-D input", ValueError,
     "GRU: expected a 2-D .* or 3-D input", lambda: nn.GRU(3, 4)(z(5))),
    ("nn-empty-sequence", "nn.GRU.__call__", "T = 0", ValueError,
     "GRU: the sequence length must be at least 1", lambda: nn.GRU(3, 4)(z((0, 2, 3)))),
    ("nn-hx", "nn.LSTM.__call__", "hx an array, not (h0, c0)", ValueError,
     r"LSTM: hx must be a tuple \(h0, c0\)", lambda: nn.LSTM(3, 4)(z((5, 2, 3)), z((1, 2, 4)))),
    ("nn-backward-first", "nn.RNN.backward", "backward before forward", RuntimeError,
     "RNN.backward called before a forward pass", lambda: nn.RNN(3, 4).backward(z((5, 2, 4)))),
    ("nn-state-dict", "nn.LSTM.load_state_dict", "{}", KeyError,
     "LSTM.load_state_dict: missing keys", lambda: nn.LSTM(3, 4).load_state_dict({})),
    # ---- optimizers, models, trainer, datasets
    ("optim-missing-grad", "SGD.update", "grads without params' key", KeyError,
     "SGD: grads has no entry 'W'", lambda: optim.SGD().update({"W": z(3)}, {})),
    ("optim-int-param", "SGD.update", "int64 parameter", TypeError,
     "SGD: params\\['W'\\] has dtype int64",
     lambda: optim.SGD().update({"W": z(3, int)}, {"W": z(3)})),
    ("optim-grad-shape", "Adam.update", "grad of another shape", ValueError,
     r"Adam: grads\['W'\] has shape \(4,\) but params\['W'\] has shape \(3,\)",
     lambda: optim.Adam().update({"W": z(3)}, {"W": z(4)})),
    ("model-dtype", "TwoLayerNet()", "dtype int32", TypeError,
     "dtype must be float32 or float64, got int32",
     lambda: models.TwoLayerNet(4, 3, 2, dtype=np.int32)),
    ("model-too-small", "SimpleConvNet()", "input_dim (1, 3, 3)", ValueError,
     r"SimpleConvNet: input \(1, 3, 3\) is too small", lambda: models.SimpleConvNet((1, 3, 3))),
    ("model-accuracy-empty", "Network.accuracy", "empty x", ValueError,
     "accuracy: x is empty", lambda: models.TwoLayerNet(4, 3, 2).accuracy(z((0, 4)), z(0, int))),
    ("model-params-file", "Network.load_params", "a file that is not a pickle", ParamsError,
     "not a readable parameter pickle", lambda: _load_params(b"garbage", ".pkl")),
    ("model-params-truncated", "Network.load_params", "a truncated .npz", ParamsError,
     "not a readable .npz", lambda: _load_params(b"PK\x03\x04trunc", ".npz")),
    ("model-params-safe", "Network.load_params", "a .pkl with allow_pickle=False", ParamsError,
     "refusing to unpickle", lambda: _load_params(b"garbage", ".pkl", allow_pickle=False)),
    ("model-params-pickle-code", "Network.load_params", "a .pkl whose pickle calls os.system",
     ParamsError, r"refusing to load: the pickle asks for (posix|nt|os)\.system",
     lambda: _load_params(pickle.dumps({"W1": _Calls(os.system, "echo pwned")}), ".pkl")),
    ("model-params-npy", "Network.load_params", "a .npy file renamed .npz", ParamsError,
     "it is a single .npy array, perhaps renamed", lambda: _load_params(_npy_bytes(), ".npz")),
    ("model-params-npz-member", "Network.load_params", "a .npz holding a text file",
     ParamsError, "member 'notes.txt' is not a NumPy array",
     lambda: _load_params(_npz_member("notes.txt", b"hi"), ".npz")),
    ("model-params-npz-huge", "Network.load_params", "a .npz member claiming 10^12 elements",
     ParamsError, "over the 4.0 GiB limit",
     lambda: _load_params(_npz_member("W1.npy", _npy_claiming((10 ** 12,))), ".npz")),
    ("model-params-safetensors", "Network.load_params", "a safetensors header claiming 2**62 "
     "bytes", ParamsError, "its header claims 4611686018427387904 bytes",
     lambda: _load_params((1 << 62).to_bytes(8, "little") + b"{}", ".safetensors")),
    ("trainer-nan", "Trainer.train", "a NaN in the data (NaN loss)", TrainingDiverged,
     "the loss is nan at epoch 1, iteration 1/1: training diverged", _nan_training),
    ("trainer-empty", "Trainer()", "empty x_train", ValueError,
     "Trainer: x_train is empty",
     lambda: Trainer(models.TwoLayerNet(4, 3, 2), z((0, 4)), z(0, int), z((1, 4)), z(1, int))),
    ("trainer-optimizer", "Trainer()", "optimizer 'lion'", ValueError,
     "Trainer: unknown optimizer 'lion'",
     lambda: Trainer(models.TwoLayerNet(4, 3, 2), z((2, 4)), z(2, int), z((1, 4)), z(1, int),
                     optimizer="lion")),
    ("dataset-missing", "datasets.load_mnist", "download=False, no files", DatasetNotFound,
     "were not found in", lambda: _no_data(lambda: datasets.load_mnist(download=False))),
    ("dataset-idx-count", "datasets.load_mnist", "an IDX header declaring 2,000,000 images",
     DatasetError, "declares 2000000 items, more than the 1048576 this loader accepts",
     lambda: _idx_header((2_000_000, 28, 28))),
    ("dataset-idx-size", "datasets.load_mnist", "an IDX header declaring 32x32 images",
     DatasetError, "declares 32x32 images; this data set has 28x28",
     lambda: _idx_header((10, 32, 32))),
    ("dataset-idx-trailing", "datasets.load_mnist", "data beyond what the IDX header declares",
     DatasetError, r"header says \(10, 28, 28\) = 7840 bytes of data but the file holds 7841",
     lambda: _idx_header((10, 28, 28), bytes(7841))),
    ("dataset-ratio", "datasets.load_digits", "test_ratio 1.5", ValueError,
     r"test_ratio must be in \(0, 1\)", lambda: datasets.load_digits(test_ratio=1.5)),
    # ---- BaseNN builder
    ("basenn-layer", "basenn.nn.add", "layer 'Conv9d'", ValueError,
     "add: unknown layer 'Conv9d'", lambda: basenn.nn().add("Conv9d", size=(1, 2))),
    ("basenn-size", "basenn.nn.add", "size=3 for Linear", ValueError,
     r"size must be a pair like \(in, out\), got 3", lambda: basenn.nn().add("Linear", size=3)),
    ("basenn-kernel-size", "basenn.nn.add", "kernel_size=(0, 3) for Conv2D", ValueError,
     r"add\('Conv2D'\): kernel_size must be >= 1, got \(0, 3\)",
     lambda: basenn.nn().add("Conv2D", size=(1, 6), kernel_size=(0, 3))),
    ("basenn-stride", "basenn.nn.add", "stride=0 for Conv2D", ValueError,
     r"add\('Conv2D'\): stride must be >= 1, got 0",
     lambda: basenn.nn().add("Conv2D", size=(1, 6), kernel_size=3, stride=0)),
    ("basenn-padding", "basenn.nn.add", "padding=-1 for Conv2D", ValueError,
     r"add\('Conv2D'\): padding must be >= 0, got -1",
     lambda: basenn.nn().add("Conv2D", size=(1, 6), kernel_size=3, padding=-1)),
    ("basenn-kernel-type", "basenn.nn.add", "kernel_size=2.5 for Conv2D", TypeError,
     r"add\('Conv2D'\): kernel_size must be an integer or a pair of integers, got 2.5",
     lambda: basenn.nn().add("Conv2D", size=(1, 6), kernel_size=2.5)),
    ("basenn-size-float", "basenn.nn.add", "size=(1.5, 4) for Linear", TypeError,
     r"add\('Linear'\): size must be a pair of integers like \(in, out\), got \(1.5, 4\)",
     lambda: basenn.nn().add("Linear", size=(1.5, 4))),
    ("basenn-size-zero", "basenn.nn.add", "size=(144, 0) for Linear", ValueError,
     r"add\('Linear'\): both entries of size must be >= 1, got \(144, 0\)",
     lambda: basenn.nn().add("Linear", size=(144, 0))),
    ("basenn-count", "basenn.nn.add", "num_layers=0 for LSTM", ValueError,
     r"add\('LSTM'\): num_layers must be >= 1, got 0",
     lambda: basenn.nn().add("LSTM", size=(3, 4), num_layers=0)),
    ("basenn-activation", "basenn.nn.add", "activation 'Swish'", ValueError,
     "add: unknown activation 'Swish'",
     lambda: basenn.nn().add("Linear", size=(4, 3), activation="Swish")),
    ("basenn-no-data", "basenn.nn.train", "train before load_dataset", ValueError,
     "train: no data", lambda: basenn.nn().train(epochs=1)),
    ("basenn-xy-length", "basenn.nn.load_dataset", "4 samples, 3 labels", ValueError,
     "load_dataset: x has 4 samples but y has 3",
     lambda: basenn.nn().load_dataset(z((4, 4)), z(3))),
    ("basenn-checkpoint", "basenn.nn.load", "a truncated checkpoint", ValueError,
     "is not a fastnn.basenn checkpoint", lambda: _basenn_load(b"PK\x03\x04trunc")),
    ("basenn-checkpoint-size", "basenn.nn.load", "1 KB declaring linear (40000, 40000)",
     ValueError, r"declares 1600040000 parameters and 0 buffer values but the file stores 6",
     lambda: _basenn_load(_basenn_forged())),
    ("C-lstm-Wh", "_C.lstm_forward", "Wh of shape (3, 8) for H = 2", ValueError,
     r"LSTM: Wh has shape \(3, 8\) but \(2, 8\) was expected",
     lambda: _C.lstm_forward(z((2, 1, 3)), None, None, z((3, 8)), z((3, 8)), z(8), None, False)),
    ("C-lstm-gates", "_C.lstm_backward", "gates of one step for two", ValueError,
     r"LSTM: gates has shape \(1, 1, 8\) but \(2, 1, 8\) was expected",
     lambda: _C.lstm_backward(z((2, 1, 3)), None, None, z((3, 8)), z((2, 8)), None, z((2, 1, 2)),
                              z((2, 1, 2)), z((1, 1, 8)), None, z((2, 1, 2)), None, None, False)),
    ("C-gru-h0", "_C.gru_forward", "h0 of batch 5 for x of batch 1", ValueError,
     r"GRU: h0 has shape \(5, 2\) but \(1, 2\) was expected",
     lambda: _C.gru_forward(z((2, 1, 3)), z((5, 2)), z((3, 6)), z((2, 6)), z(6), None, False)),
    ("C-adam-state", "_C.adam_update", "v of another size", ValueError,
     r"Adam: v has shape \(2,\) but the parameter has shape \(3,\)",
     lambda: _C.adam_update(z(3), z(3), z(2), z(3), 0.1, 0.9, 0.999, 1e-7)),
    # ---- direct _C calls that update an array in place: only the exact array is accepted
    ("C-sgd-param-dtype", "_C.sgd_update", "int64 parameter", TypeError,
     "SGD: param is updated in place and must be a float32 or float64 NumPy array, got an "
     "array of dtype int64", lambda: _C.sgd_update(z(3, int), z(3), 0.1)),
    ("C-sgd-param-strided", "_C.sgd_update", "a strided view as parameter", ValueError,
     "SGD: param is updated in place and must be C-contiguous, got a non-contiguous array",
     lambda: _C.sgd_update(z(6)[::2], z(3), 0.1)),
    ("C-sgd-grad-cast", "_C.sgd_update", "float64 gradient, float32 parameter", TypeError,
     "SGD: the gradient cannot be cast safely to the parameter's dtype float32, got an array "
     "of dtype float64", lambda: _C.sgd_update(z(3, np.float32), z(3), 0.1)),
    ("C-momentum-state-strided", "_C.momentum_update", "a strided view as v", ValueError,
     "Momentum: v is updated in place and must be C-contiguous",
     lambda: _C.momentum_update(z(3), z(6)[::2], z(3), 0.1, 0.9)),
    ("C-adam-state-dtype", "_C.adam_update", "float32 m for a float64 parameter", TypeError,
     "Adam: m is updated in place and must be a NumPy array of the parameter's dtype float64, "
     "got an array of dtype float32",
     lambda: _C.adam_update(z(3), z(3, np.float32), z(3), z(3), 0.1, 0.9, 0.999, 1e-7)),
    ("C-rmsprop-state-readonly", "_C.rmsprop_update", "read-only h", ValueError,
     "RMSprop: h is read-only",
     lambda: _C.rmsprop_update(z(3), _read_only(z(3)), z(3), 0.1, 0.99, 1e-7)),
    ("C-adagrad-state-list", "_C.adagrad_update", "a list as h", TypeError,
     "AdaGrad: h is updated in place and must be a NumPy array of the parameter's dtype "
     "float64, got list", lambda: _C.adagrad_update(z(3), [0.0] * 3, z(3), 0.1, 1e-7)),
    ("C-relu-dx-strided", "_C.relu_backward", "a strided view as dx", ValueError,
     "relu_backward: dx is updated in place and must be C-contiguous",
     lambda: _C.relu_backward(z(3), z(3, bool), z(6)[::2])),
    ("C-relu-dx-dtype", "_C.relu_backward", "float32 dx, float64 dout", TypeError,
     "relu_backward: dout cannot be cast safely to dx's dtype float32",
     lambda: _C.relu_backward(z(3), z(3, bool), z(3, np.float32))),
    ("C-softmax-out-dtype", "_C.softmax_cross_entropy_backward", "float32 out for float64 y",
     TypeError, "loss.backward: out is updated in place and must be a NumPy array of y's dtype "
     "float64, got an array of dtype float32",
     lambda: _C.softmax_cross_entropy_backward(z((2, 3)), np.array([0, 1]), 1.0, None,
                                               z((2, 3), np.float32), "loss")),
    # ---- library
    ("threads-zero", "fastnn.set_num_threads", "0", ValueError,
     "n must be >= 1, got 0", lambda: fastnn.set_num_threads(0)),
    ("threads-cap", "fastnn.set_num_threads", "100000 (more than 4 per processor)", ValueError,
     r"n must be at most \d+ \(4 threads per processor, at most 1024\), got 100000",
     lambda: fastnn.set_num_threads(100000)),
    ("C-threads-cap", "_C.set_num_threads", "100000", ValueError,
     r"n must be at most \d+ \(4 threads per processor, at most 1024\), got 100000",
     lambda: _C.set_num_threads(100000)),
]

# A GPU array (here a fake one, with no memory behind it) is refused only where fastnn cannot
# use CUDA; where it can, real device arrays compute on the GPU (tests/test_cuda*.py).
if fastnn.cuda.is_available():
    CASES = [c for c in CASES if c[0] != "gpu-array"]


def run_all():
    """Run every case; one JSON line each: id and the exception type name (or null)."""
    for cid, _api, _input, _exc, _match, call in CASES:
        try:
            call()
            got, msg = None, ""
        except Exception as e:  # the point: a Python exception, never a crash
            got, msg = type(e).__name__, str(e)
        print(json.dumps({"id": cid, "exception": got, "message": msg[:200]}), flush=True)


if __name__ == "__main__":
    run_all()
