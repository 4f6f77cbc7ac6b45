"""The book's SimpleConvNet: conv - relu - pool - affine - relu - affine - softmax."""

import numpy as np

from ..layers import Affine, Convolution, Pooling, Relu, SoftmaxWithLoss
from ._base import LayerDict, Network, check_dtype, config_int


class SimpleConvNet(Network):
    """Simple convolutional network (chapter 7).

    input_dim: (C, H, W) of one image. conv_param: filter_num, filter_size, pad, stride.
    hidden_size: width of the hidden affine layer. weight_init_std: scale of the normal initial
    weights. dtype: float64 (the book) or float32, the dtype of every parameter.
    """

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param={'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1},
                 hidden_size=100, output_size=10, weight_init_std=0.01, dtype=np.float64):
        dtype = check_dtype(dtype)
        FN, FS = conv_param['filter_num'], conv_param['filter_size']
        pad, stride = conv_param['pad'], conv_param['stride']
        C, H, W = input_dim
        OH = (H + 2 * pad - FS) // stride + 1
        OW = (W + 2 * pad - FS) // stride + 1
        if OH < 2 or OW < 2:
            raise ValueError(f"SimpleConvNet: input {input_dim} is too small for filter_size "
                             f"{FS}, pad {pad}, stride {stride} and 2x2 pooling")
        pool_output_size = FN * (OH // 2) * (OW // 2)

        rand = lambda *shape: (weight_init_std * np.random.randn(*shape)).astype(dtype)  # noqa
        self.params = {
            'W1': rand(FN, C, FS, FS), 'b1': np.zeros(FN, dtype),
            'W2': rand(pool_output_size, hidden_size), 'b2': np.zeros(hidden_size, dtype),
            'W3': rand(hidden_size, output_size), 'b3': np.zeros(output_size, dtype),
        }
        p = self.params
        self.layers = LayerDict()
        self.layers['Conv1'] = Convolution(p['W1'], p['b1'], stride, pad)
        self.layers['Relu1'] = Relu()
        self.layers['Pool1'] = Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers['Affine1'] = Affine(p['W2'], p['b2'])
        self.layers['Relu2'] = Relu()
        self.layers['Affine2'] = Affine(p['W3'], p['b3'])
        self.last_layer = SoftmaxWithLoss()
        self._grad_map = [(f'{w}{i + 1}', name, f'd{w}')
                          for i, name in enumerate(['Conv1', 'Affine1', 'Affine2'])
                          for w in 'Wb']

    @staticmethod
    def param_shapes(input_dim=(1, 28, 28), conv_param=None, hidden_size=100, output_size=10,
                     **_):
        """{name: shape} of the parameters the constructor makes for these arguments, computed
        without allocating them (for checking a model description against its file)."""
        cp = conv_param or {'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1}
        C, H, W = (config_int(v, "input_dim") for v in input_dim)
        FN, FS = config_int(cp['filter_num'], "filter_num"), config_int(cp['filter_size'],
                                                                         "filter_size")
        pad, stride = config_int(cp['pad'], "pad", 0), config_int(cp['stride'], "stride")
        hidden, out = config_int(hidden_size, "hidden_size"), config_int(output_size,
                                                                         "output_size")
        OH, OW = (H + 2 * pad - FS) // stride + 1, (W + 2 * pad - FS) // stride + 1
        if OH < 2 or OW < 2:
            raise ValueError(f"SimpleConvNet: input {tuple(input_dim)} is too small")
        flat = FN * (OH // 2) * (OW // 2)
        return {'W1': (FN, C, FS, FS), 'b1': (FN,), 'W2': (flat, hidden), 'b2': (hidden,),
                'W3': (hidden, out), 'b3': (out,)}

    def predict(self, x, train_flg=False):
        return super().predict(x, train_flg)

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t)
