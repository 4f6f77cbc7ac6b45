"""The networks of *Deep Learning from Scratch* on fastnn's compiled layers.

Same constructors, methods (predict, loss, accuracy, gradient, numerical_gradient) and
attributes (params, layers, last_layer) as the book, plus ``dtype=np.float32`` to train in
single precision. ``save_params`` / ``load_params`` read and write the book's params.pkl format
(a pickled dict of arrays: load pickles only from trusted sources) or ``.npz``.
``net.to("cuda")`` (the CUDA build, with CuPy) moves a network to the GPU, ``net.cpu()`` back.
"""

import numpy as np

from ._params import ParamsError
from .deep_convnet import DeepConvNet
from .multi_layer_net import MultiLayerNet, MultiLayerNetExtend
from .simple_convnet import SimpleConvNet
from .two_layer_net import TwoLayerNet

__all__ = ["SimpleConvNet", "MultiLayerNet", "MultiLayerNetExtend", "TwoLayerNet",
           "DeepConvNet", "d2l_mlp", "ParamsError"]


def d2l_mlp(input_size=784, hidden_size=256, output_size=10, weight_init_std=0.01,
            dtype=np.float64):
    """The multilayer perceptron of the d2l.ai course: 784-256-10, ReLU, N(0, 0.01^2) weights."""
    return MultiLayerNet(input_size, [hidden_size], output_size, activation='relu',
                         weight_init_std=weight_init_std, dtype=dtype)
