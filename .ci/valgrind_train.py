"""A short training-like run for valgrind memcheck (.ci/valgrind.sh): a few SimpleConvNet and
MultiLayerNetExtend (batchnorm, dropout) steps with Adam, plus an LSTM/GRU forward/backward."""

import numpy as np

import fastnn
from fastnn.models import MultiLayerNetExtend, SimpleConvNet
from fastnn.optim import Adam

rng = np.random.default_rng(0)
np.random.seed(0)
fastnn.set_num_threads(2)
for dtype in (np.float32, np.float64):
    net = SimpleConvNet((1, 12, 12), {'filter_num': 4, 'filter_size': 3, 'pad': 1, 'stride': 1},
                        hidden_size=16, output_size=5, dtype=dtype)
    x = rng.standard_normal((6, 1, 12, 12)).astype(dtype)
    t = rng.integers(0, 5, 6)
    opt = Adam()
    for _ in range(3):
        opt.update(net.params, net.gradient(x, t))
    net.accuracy(x, t, batch_size=4)

    mlp = MultiLayerNetExtend(20, [16, 16], 5, use_dropout=True, use_batchnorm=True, dtype=dtype)
    xm = rng.standard_normal((8, 20)).astype(dtype)
    for _ in range(3):
        opt = Adam()
        opt.update(mlp.params, mlp.gradient(xm, rng.integers(0, 5, 8)))

try:
    from fastnn.nn import GRU, LSTM
except ImportError:
    GRU = LSTM = None
if LSTM is not None:
    for cls in (LSTM, GRU):
        m = cls(4, 6, num_layers=2, batch_first=True)
        out, _ = m(rng.standard_normal((3, 7, 4)).astype(np.float32))
print("valgrind_train: done")
