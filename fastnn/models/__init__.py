"""The networks of *Deep Learning from Scratch* on fastnn's compiled layers.

Same constructors, methods (predict, loss, accuracy, gradient, numerical_gradient) and
attributes (params, layers, last_layer) as the book, plus ``dtype=np.float32`` to train in
single precision. ``save_params`` / ``load_params`` read and write safetensors (any name but
.pkl/.npz: the parameters, batch norm's running statistics and the model's description),
the book's params.pkl format (read without running code) or ``.npz``;
``load_model("model.safetensors")`` rebuilds a saved network from its file alone.
``net.to("cuda")`` (the CUDA build, with CuPy) moves a network to the GPU, ``net.cpu()`` back.
"""

import json

import numpy as np

from .._safeio import safetensors_header
from ._params import ParamsError
from .deep_convnet import DeepConvNet
from .multi_layer_net import MultiLayerNet, MultiLayerNetExtend
from .simple_convnet import SimpleConvNet
from .two_layer_net import TwoLayerNet

__all__ = ["SimpleConvNet", "MultiLayerNet", "MultiLayerNetExtend", "TwoLayerNet",
           "DeepConvNet", "d2l_mlp", "ParamsError", "load_model", "read_description"]

MODEL_CLASSES = {cls.__name__: cls for cls in (SimpleConvNet, MultiLayerNet,
                                               MultiLayerNetExtend, TwoLayerNet, DeepConvNet)}


def read_description(file_name):
    """(model class, constructor arguments, metadata) of a file written by ``save_params``
    to a safetensors name, checked against the shapes of the arrays the file stores, without
    reading them or building the network. ParamsError for anything that does not fit."""
    meta, entries = safetensors_header(file_name)
    if meta.get("format") != "fastnn.model":
        raise ParamsError(f"{file_name}: not a fastnn model file (no fastnn.model description; "
                          "a .pkl or .npz needs the model named, e.g. --model)")
    cls = MODEL_CLASSES.get(meta.get("model"))
    if cls is None:
        raise ParamsError(f"{file_name}: unknown model {meta.get('model')!r} (known: "
                          f"{', '.join(MODEL_CLASSES)})")
    try:
        config = json.loads(meta.get("config", ""))
        if not isinstance(config, dict):
            raise ValueError("the constructor arguments are not a JSON object")
        shapes = cls.param_shapes(**config)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ParamsError(f"{file_name}: malformed {cls.__name__} description "
                          f"({type(e).__name__}: {e})") from None
    stored = {k: shape for k, (_, shape) in entries.items()}
    wanted = {k: tuple(v) for k, v in shapes.items()}
    if stored != wanted:
        diff = sorted(set(stored.items()) ^ set(wanted.items()))[:4]
        raise ParamsError(f"{file_name}: the {cls.__name__} description does not match the "
                          f"stored arrays (e.g. {diff})")
    return cls, config, meta


def load_model(file_name):
    """The network saved in safetensors file ``file_name`` (by ``save_params`` or the fastnn
    command), rebuilt from its description and loaded. The description is checked against the
    stored arrays before anything is built, so an untrusted file cannot make fastnn allocate
    more than it holds; NumPy's global random state is left as it was."""
    cls, config, _ = read_description(file_name)
    state = np.random.get_state()
    try:
        net = cls(**config)
    except (ValueError, TypeError) as e:
        raise ParamsError(f"{file_name}: cannot build the {cls.__name__} it describes "
                          f"({e})") from None
    finally:
        np.random.set_state(state)
    net.load_params(file_name)
    return net


def d2l_mlp(input_size=784, hidden_size=256, output_size=10, weight_init_std=0.01,
            dtype=np.float64):
    """The multilayer perceptron of the d2l.ai course: 784-256-10, ReLU, N(0, 0.01^2) weights."""
    return MultiLayerNet(input_size, [hidden_size], output_size, activation='relu',
                         weight_init_std=weight_init_std, dtype=dtype)
