"""The book's DeepConvNet (chapter 8): a VGG-style network of six 3x3 convolutions."""

import numpy as np

from ..layers import Affine, Convolution, Dropout, Pooling, Relu, SoftmaxWithLoss
from ._base import LayerDict, Network, check_dtype, config_int

_DEFAULT_CONVS = [(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]  # (filter_num, pad)


class DeepConvNet(Network):
    """conv-relu-conv-relu-pool x 3 - affine-relu-dropout - affine-dropout - softmax.

    Weights use He initialisation. ``layers`` is an ordered dict (Conv1, Relu1, ..., Pool1, ...)
    that also takes the integer positions of the book's list (``layers[0]`` is Conv1).
    """

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param_1={'filter_num': 16, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_2={'filter_num': 16, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_3={'filter_num': 32, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_4={'filter_num': 32, 'filter_size': 3, 'pad': 2, 'stride': 1},
                 conv_param_5={'filter_num': 64, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 conv_param_6={'filter_num': 64, 'filter_size': 3, 'pad': 1, 'stride': 1},
                 hidden_size=50, output_size=10, dtype=np.float64):
        dtype = check_dtype(dtype)
        convs = [conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5,
                 conv_param_6]
        C, H, W = input_dim
        # Spatial size through the network, to size the first affine layer.
        for i, cp in enumerate(convs):
            H = (H + 2 * cp['pad'] - cp['filter_size']) // cp['stride'] + 1
            W = (W + 2 * cp['pad'] - cp['filter_size']) // cp['stride'] + 1
            if i % 2 == 1:
                H, W = H // 2, W // 2
            if H < 1 or W < 1:
                raise ValueError(f"DeepConvNet: input {input_dim} is too small for six "
                                 "convolutions and three 2x2 poolings")
        flat = convs[-1]['filter_num'] * H * W

        self.params = {}
        pre_channels = C
        for idx, cp in enumerate(convs, start=1):
            fan_in = pre_channels * cp['filter_size'] ** 2
            self.params[f'W{idx}'] = (np.sqrt(2.0 / fan_in) * np.random.randn(
                cp['filter_num'], pre_channels, cp['filter_size'], cp['filter_size'])
            ).astype(dtype)
            self.params[f'b{idx}'] = np.zeros(cp['filter_num'], dtype)
            pre_channels = cp['filter_num']
        self.params['W7'] = (np.sqrt(2.0 / flat) * np.random.randn(flat, hidden_size)
                             ).astype(dtype)
        self.params['b7'] = np.zeros(hidden_size, dtype)
        self.params['W8'] = (np.sqrt(2.0 / hidden_size) * np.random.randn(hidden_size,
                                                                           output_size)
                             ).astype(dtype)
        self.params['b8'] = np.zeros(output_size, dtype)

        p = self.params
        self.layers = LayerDict()
        self._grad_map = []
        for idx, cp in enumerate(convs, start=1):
            self.layers[f'Conv{idx}'] = Convolution(p[f'W{idx}'], p[f'b{idx}'], cp['stride'],
                                                    cp['pad'])
            self.layers[f'Relu{idx}'] = Relu()
            if idx % 2 == 0:
                self.layers[f'Pool{idx // 2}'] = Pooling(pool_h=2, pool_w=2, stride=2)
            self._grad_map += [(f'W{idx}', f'Conv{idx}', 'dW'), (f'b{idx}', f'Conv{idx}', 'db')]
        self.layers['Affine1'] = Affine(p['W7'], p['b7'])
        self.layers['Relu7'] = Relu()
        self.layers['Dropout1'] = Dropout(0.5)
        self.layers['Affine2'] = Affine(p['W8'], p['b8'])
        self.layers['Dropout2'] = Dropout(0.5)
        self.last_layer = SoftmaxWithLoss()
        self._grad_map += [('W7', 'Affine1', 'dW'), ('b7', 'Affine1', 'db'),
                           ('W8', 'Affine2', 'dW'), ('b8', 'Affine2', 'db')]

    @staticmethod
    def param_shapes(input_dim=(1, 28, 28), hidden_size=50, output_size=10, **conv_params):
        """{name: shape} of the parameters the constructor makes for these arguments, computed
        without allocating them (for checking a model description against its file)."""
        convs = [conv_params.get(f'conv_param_{i}') or
                 {'filter_num': fn, 'filter_size': 3, 'pad': pad, 'stride': 1}
                 for i, (fn, pad) in enumerate(_DEFAULT_CONVS, start=1)]
        C, H, W = (config_int(v, "input_dim") for v in input_dim)
        hidden, out = config_int(hidden_size, "hidden_size"), config_int(output_size,
                                                                         "output_size")
        shapes, pre = {}, C
        for i, cp in enumerate(convs, start=1):
            FN, FS = config_int(cp['filter_num'], "filter_num"), config_int(cp['filter_size'],
                                                                             "filter_size")
            pad, stride = config_int(cp['pad'], "pad", 0), config_int(cp['stride'], "stride")
            H, W = (H + 2 * pad - FS) // stride + 1, (W + 2 * pad - FS) // stride + 1
            if i % 2 == 0:
                H, W = H // 2, W // 2
            if H < 1 or W < 1:
                raise ValueError(f"DeepConvNet: input {tuple(input_dim)} is too small")
            shapes[f'W{i}'], shapes[f'b{i}'] = (FN, pre, FS, FS), (FN,)
            pre = FN
        flat = pre * H * W
        shapes.update({'W7': (flat, hidden), 'b7': (hidden,), 'W8': (hidden, out),
                       'b8': (out,)})
        return shapes

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x, train_flg=True), t)
