"""What every network shares: forward through ``layers``, backward, accuracy, parameter files."""

import functools
import inspect
import json
import warnings
from collections import OrderedDict

import numpy as np

from .. import _device, ops
from .. import gradient as _gradient
from ..layers import _ConvReluPool
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


def layer_buffers(layers):
    """{'<layer>.running_mean': array, ...}: the state of ``layers`` (a dict of layers, as the
    book's networks hold) that is saved but not trained."""
    out = {}
    if not hasattr(layers, "items"):  # a list of layers has no names to save them under
        return out
    for name, layer in layers.items():
        for attr in _LAYER_STATE:
            state = getattr(layer, attr, None)
            if state is not None:
                out[f"{name}.{attr}"] = state
    return out


def _jsonable(v):
    """``v`` as JSON data (tuples as lists, NumPy scalars and dtypes by value and name);
    TypeError for anything else."""
    if isinstance(v, (str, bool, int, float)) or v is None:
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(a) for a in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(a) for k, a in v.items()}
    if isinstance(v, (np.dtype, type)):
        return np.dtype(v).name
    raise TypeError(f"{type(v).__name__} is not JSON data")


def config_int(value, what, low=1, high=1 << 31):
    """``value`` as an int in [low, high] (a size read from a model description)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not low <= value <= high:
        raise ValueError(f"{what} must be an integer in [{low}, {high}], got {value!r:.40}")
    return int(value)


def check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class Network:
    """Subclasses fill ``params``, ``layers`` (ordered), ``last_layer`` and ``_grad_map``: a
    list of (param key, layer name, gradient attribute), e.g. ('W1', 'Conv1', 'dW')."""

    weight_decay_lambda = 0
    config = None  # (class name, constructor arguments as JSON data); set by the constructor

    def __init_subclass__(cls, **kwargs):
        """Each network's constructor records its class and arguments in ``config`` (the
        outermost constructor wins), which parameter files carry as the model's description."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        sig = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            if "config" not in self.__dict__:
                bound = sig.bind(self, *args, **kw)
                bound.apply_defaults()
                arguments = dict(bound.arguments)
                arguments.pop(next(iter(sig.parameters)))
                try:
                    self.config = (type(self).__name__, _jsonable(arguments))
                except TypeError:
                    self.config = (type(self).__name__, None)  # not describable as JSON
            init(self, *args, **kw)

        cls.__init__ = recording_init

    def predict(self, x, train_flg=False):
        layers = list(self.layers.values())
        i = 0
        while i < len(layers):
            # Convolution -> Relu -> Pooling as one kernel where it can (layers._ConvReluPool).
            out = _ConvReluPool.forward(*layers[i:i + 3], x) if i + 3 <= len(layers) else None
            if out is not None:
                x = out
                i += 3
                continue
            layer = layers[i]
            if type(layer).__name__ in _MODE_LAYERS:
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
            i += 1
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
        xp = ops.array_module("accuracy", x, t, *self.params.values())
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
        i = len(layers) - 1
        while i >= 0:
            # Nothing needs the input's gradient: a first layer (or block) that can skips it.
            dx = _ConvReluPool.backward(*layers[i - 2:i + 1], dout, need_dx=i > 2) \
                if i >= 2 else NotImplemented
            if dx is not NotImplemented:
                dout = dx
                i -= 3
                continue
            layer = layers[i]
            dout = getattr(layer, "_param_backward", layer.backward)(dout) if i == 0 else \
                layer.backward(dout)
            i -= 1
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

    def buffers(self):
        """{'BatchNorm1.running_mean': array, ...}: saved state that is not trained."""
        return layer_buffers(self.layers)

    def description(self):
        """The metadata a safetensors file carries so that ``load_model`` can rebuild the
        network: format, model class, constructor arguments (JSON), dtype, fastnn version."""
        from .. import __version__
        name, args = self.config or (type(self).__name__, None)
        dtype = next(iter(self.params.values())).dtype.name
        return {"format": "fastnn.model", "model": name, "dtype": dtype,
                "config": json.dumps(args), "fastnn_version": __version__}

    def save_params(self, file_name="params.pkl", metadata=None):
        """Save the parameters and buffers (batch norm's running statistics): the book's
        pickle format for .pkl names, .npz, or safetensors for any other name (with the
        model's description and ``metadata``, a dict of strings). The file holds NumPy arrays
        also for a network on the GPU; it replaces an old file only once it is complete."""
        arrays = dict(self.params)
        arrays.update(self.buffers())
        meta = None
        if _params.format_of(file_name) == "safetensors":
            meta = self.description()
            meta.update({k: str(v) for k, v in (metadata or {}).items()})
        _params.save(arrays, file_name, meta)

    def load_params(self, file_name="params.pkl", allow_pickle=True):
        """Load a file written by ``save_params`` or by the book's code, into the arrays the
        layers already hold. Keys and shapes must match; values are converted to this
        network's dtype. A file without running statistics (the book's own params.pkl) leaves
        them as they are, with a warning. Pickles are read without running code (plain
        containers and numeric arrays only); ``allow_pickle=False`` refuses them altogether."""
        loaded, meta = _params.load_with_metadata(file_name, allow_pickle=allow_pickle)
        buffers = self.buffers()
        expected = dict(self.params)
        expected.update(buffers)
        try:
            _params.check(loaded, expected, file_name, optional=buffers)
        except _params.ParamsError as e:
            name = meta.get("model")
            if name and self.config and name != self.config[0]:
                raise _params.ParamsError(f"{e} (the file holds a {name})") from None
            raise
        for key in self.params:
            p = self.params[key]
            p[...] = ops.array_module("load_params", p).asarray(loaded[key])
        for key, name, attr in self._grad_map:  # re-link, in case params entries were replaced
            setattr(self.layers[name], attr[1:], self.params[key])
        missing = [k for k in buffers if k not in loaded]
        if missing:
            warnings.warn(f"{file_name} has no {', '.join(missing)}; they keep their current "
                          "values (predictions in test mode use them)", stacklevel=2)
        for key in buffers:
            if key in loaded:
                name, attr = key.rsplit(".", 1)
                old = buffers[key]
                xp = ops.array_module("load_params", old)
                setattr(self.layers[name], attr, xp.asarray(loaded[key], dtype=old.dtype).copy())
