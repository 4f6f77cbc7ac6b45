"""What every network shares: forward through ``layers``, backward, accuracy, parameter files."""

from collections import OrderedDict

import numpy as np

from .. import _device, _ops
from .. import gradient as _gradient
from . import _params

# Layers whose forward takes train_flg (matched by name, so any book-compatible layer works).
_MODE_LAYERS = ("Dropout", "BatchNormalization")
# Layer attributes that are state rather than parameters, moved by Network.to.
_LAYER_STATE = ("running_mean", "running_var")


class LayerDict(OrderedDict):
    """An OrderedDict of layers that also accepts integer positions, like the book's lists."""

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self.values())[key]
        return super().__getitem__(key)


def init_scale(weight_init_std, fan_in):
    """The book's named initial scales: 'relu'/'he' sqrt(2/n), 'sigmoid'/'xavier' sqrt(1/n)."""
    name = str(weight_init_std).lower()
    if name in ("relu", "he"):
        return np.sqrt(2.0 / fan_in)
    if name in ("sigmoid", "xavier"):
        return np.sqrt(1.0 / fan_in)
    try:
        return float(weight_init_std)
    except (TypeError, ValueError):
        raise ValueError(f"weight_init_std must be 'relu', 'he', 'sigmoid', 'xavier' or a "
                         f"number, got {weight_init_std!r}") from None


def check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class Network:
    """Subclasses fill ``params``, ``layers`` (ordered), ``last_layer`` and ``_grad_map``: a
    list of (param key, layer name, gradient attribute), e.g. ('W1', 'Conv1', 'dW')."""

    weight_decay_lambda = 0

    def predict(self, x, train_flg=False):
        for layer in self.layers.values():
            if type(layer).__name__ in _MODE_LAYERS:
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def _weight_decay(self):
        if not self.weight_decay_lambda:
            return 0
        return sum(0.5 * self.weight_decay_lambda * np.sum(self.params[k] ** 2)
                   for k, _, attr in self._grad_map if attr == "dW")

    def _train_loss(self, x, t):
        """The loss in training mode: what gradient() differentiates."""
        return self.last_layer.forward(self.predict(x, train_flg=True), t) + self._weight_decay()

    def accuracy(self, x, t, batch_size=100):
        """Fraction of correct predictions (a Python float), computed ``batch_size`` images at
        a time (every image counts, including a last partial batch). On the GPU the count
        stays on the device until the end."""
        if len(x) == 0:
            raise ValueError("accuracy: x is empty")
        xp = _ops.array_module("accuracy", x, t, *self.params.values())
        t = xp.asarray(t)
        if t.ndim != 1:
            t = xp.argmax(t, axis=1)
        correct = 0
        for i in range(0, len(x), batch_size):
            y = self.predict(x[i:i + batch_size])
            correct = correct + xp.sum(xp.argmax(y, axis=1) == t[i:i + batch_size])
        return int(correct) / len(x)

    def gradient(self, x, t):
        """Gradients of the loss by backpropagation, as a dict keyed like ``params``."""
        self.last_loss = self._train_loss(x, t)
        dout = self.last_layer.backward(1)
        layers = list(self.layers.values())
        for layer in reversed(layers[1:]):
            dout = layer.backward(dout)
        # Nothing needs the input's gradient: a first layer that can skips computing it.
        first = layers[0]
        getattr(first, "_param_backward", first.backward)(dout)
        grads = {}
        for key, name, attr in self._grad_map:
            g = getattr(self.layers[name], attr)
            if attr == "dW" and self.weight_decay_lambda:
                g = g + self.weight_decay_lambda * self.params[key]
            grads[key] = g
        return grads

    def numerical_gradient(self, x, t):
        """Gradients by central differences (slow; for checking ``gradient`` in float64)."""
        f = lambda _: self._train_loss(x, t)  # noqa: E731
        return {key: _gradient.numerical_gradient(f, self.params[key]) for key in self.params}

    def to(self, device):
        """Move the network to ``device`` ('cpu', 'cuda' or 'cuda:N') and return it.

        ``params`` keeps its keys and gets NumPy (cpu) or CuPy (cuda) arrays, which the layers
        are re-linked to (so an optimizer's in-place update is seen, as in the book), and batch
        norm's running averages move too. Then predict, loss, accuracy and gradient take CuPy
        x and t and compute on that GPU. A no-op for arrays already there. Raises RuntimeError
        naming the reason when CUDA cannot be used here (fastnn.cuda.reason())."""
        move = _device.mover(device, f"{type(self).__name__}.to")
        for key, p in self.params.items():
            self.params[key] = move(p)
        for key, name, attr in self._grad_map:
            setattr(self.layers[name], attr[1:], self.params[key])
        for layer in self.layers.values():
            for attr in _LAYER_STATE:
                state = getattr(layer, attr, None)
                if state is not None:
                    setattr(layer, attr, move(state))
        return self

    def cuda(self, device=None):
        """``to('cuda')``, or ``to(f'cuda:{device}')`` for a device number."""
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def cpu(self):
        """``to('cpu')``: parameters back to NumPy arrays."""
        return self.to("cpu")

    @property
    def device(self):
        """Where the parameters are: 'cpu' or 'cuda:N'."""
        return _device.name_of(next(iter(self.params.values())))

    def save_params(self, file_name="params.pkl"):
        """Save ``params`` in the book's pickle format (or .npz when the name ends in .npz);
        the file holds NumPy arrays also for a network on the GPU."""
        _params.save(self.params, file_name)

    def load_params(self, file_name="params.pkl", allow_pickle=True):
        """Load a file written by ``save_params`` or by the book's code, into the arrays the
        layers already hold. Keys and shapes must match; values are converted to this
        network's dtype. Pickle files run code when loaded: use only trusted ones, or pass
        ``allow_pickle=False`` to accept only .npz files."""
        loaded = _params.load(file_name, allow_pickle=allow_pickle)
        _params.check(loaded, self.params, file_name)
        for key, val in loaded.items():
            p = self.params[key]
            p[...] = _ops.array_module("load_params", p).asarray(val)
        for key, name, attr in self._grad_map:  # re-link, in case params entries were replaced
            setattr(self.layers[name], attr[1:], self.params[key])
