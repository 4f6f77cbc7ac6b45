"""The book's TwoLayerNet (chapter 5): affine - relu - affine - softmax."""

import numpy as np

from ..layers import Affine, Relu, SoftmaxWithLoss
from ._base import LayerDict, Network, check_dtype, config_int


class TwoLayerNet(Network):
    """Two-layer network with backpropagation; ``lastLayer`` is the book's name of last_layer."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01,
                 dtype=np.float64):
        dtype = check_dtype(dtype)
        self.params = {
            'W1': (weight_init_std * np.random.randn(input_size, hidden_size)).astype(dtype),
            'b1': np.zeros(hidden_size, dtype),
            'W2': (weight_init_std * np.random.randn(hidden_size, output_size)).astype(dtype),
            'b2': np.zeros(output_size, dtype),
        }
        self.layers = LayerDict()
        self.layers['Affine1'] = Affine(self.params['W1'], self.params['b1'])
        self.layers['Relu1'] = Relu()
        self.layers['Affine2'] = Affine(self.params['W2'], self.params['b2'])
        self.last_layer = SoftmaxWithLoss()
        self._grad_map = [(f'{w}{i}', f'Affine{i}', f'd{w}') for i in (1, 2) for w in 'Wb']

    @staticmethod
    def param_shapes(input_size, hidden_size, output_size, **_):
        """{name: shape} of the parameters the constructor makes for these arguments."""
        i, h, o = (config_int(v, n) for v, n in ((input_size, "input_size"),
                                                  (hidden_size, "hidden_size"),
                                                  (output_size, "output_size")))
        return {'W1': (i, h), 'b1': (h,), 'W2': (h, o), 'b2': (o,)}

    @property
    def lastLayer(self):  # noqa: N802 (the book's attribute name)
        return self.last_layer

    def predict(self, x, train_flg=False):
        return super().predict(x, train_flg)

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t)
