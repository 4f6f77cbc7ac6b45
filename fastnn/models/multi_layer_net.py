"""The book's MultiLayerNet and MultiLayerNetExtend (chapter 6): fully connected networks."""

import numpy as np

from ..layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid, SoftmaxWithLoss
from ._base import LayerDict, Network, check_dtype, config_int, init_scale

_MAX_LAYERS = 10_000  # hidden layers a model description may declare

_ACTIVATIONS = {'sigmoid': Sigmoid, 'relu': Relu}


def _activation(activation):
    try:
        return _ACTIVATIONS[activation.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"activation must be 'relu' or 'sigmoid', got {activation!r}") from None


class MultiLayerNet(Network):
    """Fully connected network: (affine - activation) x len(hidden_size_list) - affine - softmax.

    weight_init_std: 'relu'/'he', 'sigmoid'/'xavier' or a number. weight_decay_lambda: L2
    penalty 0.5 * lambda * sum(W^2) added to the loss and lambda * W to each weight gradient.
    """

    def __init__(self, input_size, hidden_size_list, output_size, activation='relu',
                 weight_init_std='relu', weight_decay_lambda=0, dtype=np.float64):
        self.input_size = input_size
        self.output_size = output_size
        self.hidden_size_list = list(hidden_size_list)
        self.hidden_layer_num = len(self.hidden_size_list)
        self.weight_decay_lambda = weight_decay_lambda
        self.dtype = check_dtype(dtype)
        act = _activation(activation)
        self.params = {}
        self._init_weight(weight_init_std)

        self.layers = LayerDict()
        self._grad_map = []
        for idx in range(1, self.hidden_layer_num + 2):
            self._add_affine(idx)
            if idx <= self.hidden_layer_num:
                self._add_hidden_extras(idx)
                self.layers[f'Activation_function{idx}'] = act()
                self._add_dropout(idx)
        self.last_layer = SoftmaxWithLoss()

    @staticmethod
    def param_shapes(input_size, hidden_size_list, output_size, use_batchnorm=False, **_):
        """{name: shape} of the parameters and buffers the constructor makes for these
        arguments, computed without allocating them (for checking a model description)."""
        if not isinstance(hidden_size_list, (list, tuple)) or len(hidden_size_list) > _MAX_LAYERS:
            raise ValueError(f"hidden_size_list must be a list of at most {_MAX_LAYERS} sizes")
        sizes = [config_int(input_size, "input_size")] + \
            [config_int(h, "hidden_size_list") for h in hidden_size_list] + \
            [config_int(output_size, "output_size")]
        shapes = {}
        for idx in range(1, len(sizes)):
            shapes[f'W{idx}'], shapes[f'b{idx}'] = (sizes[idx - 1], sizes[idx]), (sizes[idx],)
        if use_batchnorm:
            for idx, size in enumerate(sizes[1:-1], start=1):
                shapes[f'gamma{idx}'] = shapes[f'beta{idx}'] = (size,)
                shapes[f'BatchNorm{idx}.running_mean'] = (size,)
                shapes[f'BatchNorm{idx}.running_var'] = (size,)
        return shapes

    def _init_weight(self, weight_init_std):
        sizes = [self.input_size] + self.hidden_size_list + [self.output_size]
        for idx in range(1, len(sizes)):
            scale = init_scale(weight_init_std, sizes[idx - 1])
            self.params[f'W{idx}'] = (scale * np.random.randn(sizes[idx - 1], sizes[idx])
                                      ).astype(self.dtype)
            self.params[f'b{idx}'] = np.zeros(sizes[idx], self.dtype)

    def _add_affine(self, idx):
        self.layers[f'Affine{idx}'] = Affine(self.params[f'W{idx}'], self.params[f'b{idx}'])
        self._grad_map += [(f'W{idx}', f'Affine{idx}', 'dW'), (f'b{idx}', f'Affine{idx}', 'db')]

    def _add_hidden_extras(self, idx):
        """Layers between a hidden affine layer and its activation (batch norm in Extend)."""

    def _add_dropout(self, idx):
        """Layers after a hidden activation (dropout in Extend)."""

    def predict(self, x, train_flg=False):
        return super().predict(x, train_flg)

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t) + self._weight_decay()


class MultiLayerNetExtend(MultiLayerNet):
    """MultiLayerNet with optional batch normalization (before each hidden activation) and
    dropout (after it, with ratio ``dropout_ration``, the book's spelling)."""

    def __init__(self, input_size, hidden_size_list, output_size, activation='relu',
                 weight_init_std='relu', weight_decay_lambda=0, use_dropout=False,
                 dropout_ration=0.5, use_batchnorm=False, dtype=np.float64):
        self.use_dropout = use_dropout
        self.dropout_ration = dropout_ration
        self.use_batchnorm = use_batchnorm
        super().__init__(input_size, hidden_size_list, output_size, activation,
                         weight_init_std, weight_decay_lambda, dtype)

    def _add_hidden_extras(self, idx):
        if not self.use_batchnorm:
            return
        size = self.hidden_size_list[idx - 1]
        self.params[f'gamma{idx}'] = np.ones(size, self.dtype)
        self.params[f'beta{idx}'] = np.zeros(size, self.dtype)
        # Running statistics in the network's dtype (the layer's default is float64).
        self.layers[f'BatchNorm{idx}'] = BatchNormalization(
            self.params[f'gamma{idx}'], self.params[f'beta{idx}'],
            running_mean=np.zeros(size, self.dtype), running_var=np.zeros(size, self.dtype))
        self._grad_map += [(f'gamma{idx}', f'BatchNorm{idx}', 'dgamma'),
                           (f'beta{idx}', f'BatchNorm{idx}', 'dbeta')]

    def _add_dropout(self, idx):
        if self.use_dropout:
            self.layers[f'Dropout{idx}'] = Dropout(self.dropout_ration)

    def loss(self, x, t, train_flg=False):
        return (self.last_layer.forward(self.predict(x, train_flg), t)
                + self._weight_decay())
