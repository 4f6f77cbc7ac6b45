"""``nn``: the BaseNN (XEdu) model builder on fastnn kernels.

Loss with a final Softmax: BaseNN (PyTorch) feeds the softmax output to CrossEntropyLoss, which
applies a second softmax. Here CrossEntropyLoss always means cross-entropy of the model's class
probabilities: when the last layer is a Softmax, training skips it and runs the fused
SoftmaxWithLoss kernel on its input (gradient (p - onehot) / N); without a final Softmax the
outputs are logits, as in PyTorch. ``inference`` always returns the full model's output.

Checkpoints (``basenn.pth``) are safetensors files, not PyTorch pickles (``safetensors.torch``
reads them too): the metadata entry ``spec`` holds the model description as JSON (format,
version, task, dtype, loss, optimizer, classes, input shape, image preprocessing, epochs, and
the arguments of every ``add`` call); tensors ``param:<layer>.<name>`` and
``buffer:<layer>.<name>`` hold the arrays (layer = 0-based ``add`` index). They are written to a
temporary file that replaces the old one atomically. Checkpoints of earlier versions (.npz
archives with a ``__spec__`` entry) still load.

Loading trusts nothing in the file: the description is validated (known layers and arguments,
sizes at most 2**24, kernels at most 4096, at most 1000 residual blocks and 100 LSTM layers)
and the number of parameters each layer declares must equal what the file stores for it before
any layer is built, so a small forged file cannot make ``load`` allocate gigabytes or loop for
long. Anything malformed is a ValueError that names the problem.
"""

import json
import os

import numpy as np

from .._files import atomic_write
from .._safeio import ParamsError, is_safetensors, read_npz, read_safetensors, safetensors_bytes
from . import data as D
from . import modules as M

FORMAT = "fastnn.basenn"
# 2: Dropout is PyTorch's (scaled in training, the identity at inference); version 1 files
# with a dropout layer computed it the book's way and are refused.
VERSION = 2

# name -> (required arguments, optional arguments with defaults)
LAYERS = {
    "linear": (("size",), {}),
    "conv1d": (("size", "kernel_size"), {"stride": 1, "padding": 0}),
    "conv2d": (("size", "kernel_size"), {"stride": 1, "padding": 0}),
    "maxpool": (("kernel_size",), {"stride": None, "padding": 0}),
    "avgpool": (("kernel_size",), {"stride": None, "padding": 0}),
    "dropout": ((), {"p": 0.5}),
    "batchnorm1d": (("size",), {}),
    "batchnorm2d": (("size",), {}),
    "embedding": (("vocab_size", "embedding_dim"), {}),
    "mean": ((), {"dim": None}),
    "lstm": (("size",), {"num_layers": 1}),
    "squeeze": ((), {}),
    "unsqueeze": ((), {}),
    "res_block": (("size",), {"num_blocks": 1, "stride": 1}),
    "res_bottleneck": (("size",), {"num_blocks": 1, "stride": 1}),
    "action_model": (("size",), {}),
    "em_lstm": (("size",), {"num_layers": 1, "vocab_size": None}),
    "reshape": ((), {}),
    "mobilenet_backbone": ((), {"weights": None}),
    "mobilenet": ((), {"num_classes": None, "weights": None}),
    "diffusion_model": ((), {"img_size": 28, "timestep": 500, "channels": None, "dim": 32,
                             "beta_schedule": "sigmoid"}),
}
OPTIMIZERS = ("SGD", "Adam", "Adagrad", "ASGD")
LOSSES = ("CrossEntropyLoss", "MSELoss")
METRICS = ("acc", "mae", "mse")


def _jsonable(v):
    if isinstance(v, (tuple, list)):
        return [_jsonable(a) for a in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


# What add() accepts for each numeric argument, checked before any module is built:
# (smallest value, sequence length): an integer, or a sequence of that many integers (pairs
# are (height, width); 1-D layers take one number; 0: an integer only). "size" of a layer with
# a weight matrix is always a pair (in, out).
_ARG_RULES = {
    "linear": {"size": "pair"},
    "conv1d": {"size": "pair", "kernel_size": (1, 1), "stride": (1, 1), "padding": (0, 1)},
    "conv2d": {"size": "pair", "kernel_size": (1, 2), "stride": (1, 2), "padding": (0, 2)},
    "maxpool": {"kernel_size": (1, 2), "stride": (1, 2), "padding": (0, 2)},
    "avgpool": {"kernel_size": (1, 2), "stride": (1, 2), "padding": (0, 2)},
    "batchnorm1d": {"size": (1, 2)},
    "batchnorm2d": {"size": (1, 2)},
    "embedding": {"vocab_size": (1, 0), "embedding_dim": (1, 0)},
    "lstm": {"size": "pair", "num_layers": (1, 0)},
    "res_block": {"size": "pair", "num_blocks": (1, 0), "stride": (1, 2)},
    "res_bottleneck": {"size": "pair", "num_blocks": (1, 0), "stride": (1, 2)},
    "mobilenet": {"num_classes": (1, 0)},
    "action_model": {"size": "pair"},
    "em_lstm": {"size": "pair", "num_layers": (1, 0), "vocab_size": (1, 0)},
}
# A module object the user passed to add() is saved under this name with its class name and
# sizes; a checkpoint holding one loads into a model that has it added again.
CUSTOM = "custom"


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_arg(layer, name, v, rule):
    """TypeError/ValueError in the user's words for a bad numeric argument of add()."""
    if rule == "pair":
        if np.ndim(v) != 1 or len(v) != 2:
            raise ValueError(f"add({layer!r}): {name} must be a pair like (in, out), got {v!r}")
        if not all(_is_int(a) for a in v):
            raise TypeError(f"add({layer!r}): {name} must be a pair of integers like (in, out), "
                            f"got {v!r}")
        if min(v) < 1:
            raise ValueError(f"add({layer!r}): both entries of {name} must be >= 1, got {v!r}")
        return
    lo, longest = rule
    what = ("an integer" if not longest else
            "an integer or a pair of integers" if longest == 2 else "an integer or (integer,)")
    if _is_int(v):
        values = (v,)
    elif longest and np.ndim(v) == 1 and len(v) == longest:
        values = tuple(v)
        if not all(_is_int(a) for a in values):
            raise TypeError(f"add({layer!r}): {name} must be {what}, got {v!r}")
    elif np.ndim(v) >= 1:
        raise ValueError(f"add({layer!r}): {name} must be {what}, got {v!r}")
    else:
        raise TypeError(f"add({layer!r}): {name} must be {what}, got {v!r}")
    if min(values) < lo:
        raise ValueError(f"add({layer!r}): {name} must be >= {lo}, got {v!r}")


def _pair_arg(layer, kw, name):
    v = kw[name]
    if np.ndim(v) != 1 or len(v) != 2:
        raise ValueError(f"add({layer!r}): {name} must be a pair like (in, out), got {v!r}")
    return int(v[0]), int(v[1])


def build_module(layer, kw, rng, dtype):
    """The module for one ``add`` call (arguments already validated)."""
    if layer == "linear":
        return M.Linear(_pair_arg(layer, kw, "size"), rng, dtype)
    if layer == "conv2d":
        return M.Conv2d(_pair_arg(layer, kw, "size"), kw["kernel_size"], rng, dtype,
                        stride=kw["stride"], padding=kw["padding"])
    if layer == "conv1d":
        return M.Conv1d(_pair_arg(layer, kw, "size"), kw["kernel_size"], rng, dtype,
                        stride=kw["stride"], padding=kw["padding"])
    if layer in ("maxpool", "avgpool"):
        return M.Pool2d(layer, kw["kernel_size"], kw["stride"], kw["padding"])
    if layer == "dropout":
        return M.Dropout(float(kw["p"]))
    if layer in ("batchnorm1d", "batchnorm2d"):
        return M.BatchNorm(kw["size"], 1 if layer == "batchnorm1d" else 2, dtype)
    if layer == "embedding":
        return M.Embedding(kw["vocab_size"], kw["embedding_dim"], rng, dtype)
    if layer == "mean":
        return M.Mean(kw["dim"])
    if layer == "lstm":
        return M.LSTM(_pair_arg(layer, kw, "size"), dtype, num_layers=int(kw["num_layers"]))
    if layer == "squeeze":
        return M.Squeeze()
    if layer == "unsqueeze":
        return M.Unsqueeze()
    if layer == "action_model":
        return M.action_model(_pair_arg(layer, kw, "size"), dtype)
    if layer == "reshape":
        return M.Flatten()
    if layer == "em_lstm":
        return M.EmLSTM(kw["vocab_size"], _pair_arg(layer, kw, "size"), int(kw["num_layers"]),
                        rng, dtype)
    if layer == CUSTOM:
        raise ValueError(f"the checkpoint holds a module of your own (class {kw['class']}): "
                         "add the same module to the model (model.add(module)) and load again")
    if layer == "diffusion_model":
        from . import diffusion
        args = [kw[k] for k in ("img_size", "timestep", "channels", "dim", "beta_schedule")]
        diffusion.check_args(*args)
        return diffusion.DiffusionModel(*args[:2], args[2] or 1, *args[3:], rng, dtype)
    if layer in ("mobilenet_backbone", "mobilenet"):     # weights: loaded by add()
        return M.mobilenet_v2(kw.get("num_classes"), rng, dtype)
    block = M.basic_block if layer == "res_block" else M.bottleneck_block
    return M.res_stage(block, _pair_arg(layer, kw, "size"), kw["num_blocks"], kw["stride"], rng,
                       dtype)


def _vocabulary(word2idx):
    """word2idx checked: words to distinct token ids 0..n-1."""
    if not isinstance(word2idx, dict) or not all(isinstance(w, str) for w in word2idx):
        raise ValueError("word2idx must be a dict from words (str) to token ids")
    ids = sorted(word2idx.values())
    if ids != list(range(len(ids))):
        raise ValueError("word2idx must give the words the token ids 0 .. n-1, each once")
    return dict(word2idx)


def _did_you_mean(given, valid):
    """' (did you mean X?)' for the first of ``given`` close to one of ``valid``, else ''."""
    import difflib
    for g in given:
        close = difflib.get_close_matches(str(g), valid, n=1, cutoff=0.75)
        if close:
            return f" (did you mean {close[0]}?)"
    return ""


def _read_weights(file_name):
    """name -> array of a state_dict saved as safetensors or .npz (never a pickle)."""
    if not os.path.isfile(file_name):
        raise FileNotFoundError(f"weights file {file_name!r} not found")
    if is_safetensors(file_name):
        return read_safetensors(file_name)[0]
    return read_npz(file_name, kinds="fiu")


class ASGD:
    """Averaged SGD with PyTorch's defaults (lambd=1e-4, alpha=0.75); the book's interface.

    The running average of the weights PyTorch keeps is not used for predictions there either,
    so only the decayed step is applied.
    """

    def __init__(self, lr=0.01, lambd=1e-4, alpha=0.75):
        self.lr, self.lambd, self.alpha = lr, lambd, alpha
        self.eta, self.step = lr, 0

    def update(self, params, grads):
        self.step += 1
        for k in params:
            p = params[k]
            p *= p.dtype.type(1.0 - self.lambd * self.eta)
            p -= p.dtype.type(self.eta) * grads[k]
        self.eta = self.lr / (1.0 + self.lambd * self.lr * self.step) ** self.alpha


def make_optimizer(name, lr):
    from .. import optim

    key = name.lower()
    if key == "sgd":
        return optim.SGD(lr=lr)
    if key == "adam":
        return optim.Adam(lr=lr)
    if key == "adagrad":
        return optim.AdaGrad(lr=lr)
    return ASGD(lr=lr)


class _Entry:
    """One ``add`` call: its spec, its layer module and its activation module."""

    def __init__(self, spec, module, act):
        self.spec, self.module, self.act = spec, module, act

    def describe(self):
        kw = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}"
                       for k, v in self.spec["kw"].items())
        act = self.spec["activation"]
        if self.spec["layer"] is None:
            return act
        return f"{self.spec['layer']}({kw})" + (f" + {act}" if act else "")


class nn:
    """A model built layer by layer: ``add`` layers, ``load_dataset``, ``train``, ``inference``."""

    def __init__(self, task=None, save_fold=None, dtype=np.float32):
        if task not in (None, "cls", "reg"):
            raise ValueError(f"nn: task must be 'cls', 'reg' or None, got {task!r}")
        self.task = task
        self.dtype = np.dtype(dtype)
        self.layers = []
        self.optimizer = "SGD"
        self.save_fold = "checkpoints" if save_fold is None else save_fold
        self.rng = np.random.default_rng()
        self.x = self.y = self.x_val = self.y_val = None
        self.batch_size = None
        self.shuffle = True
        self.classes = None
        self.word2idx = None        # word -> token id of a text model's vocabulary
        self.input_shape = None
        self.image = None
        self.loss = None
        self.epochs_done = 0
        self.history = []
        self.result = None

    # ------------------------------------------------------------ building

    def set_seed(self, seed):
        """Seed weight initialisation, shuffling and dropout (call before ``add``)."""
        self.rng = np.random.default_rng(seed)
        np.random.seed(seed)

    def add(self, layer=None, activation=None, optimizer=None, **kw):
        """Append a layer (with an optional activation), an activation alone, or set the
        optimizer. Names are case-insensitive."""
        if optimizer is not None:
            names = {o.lower(): o for o in OPTIMIZERS}
            if str(optimizer).lower() not in names:
                raise ValueError(f"add: unknown optimizer {optimizer!r}; valid: "
                                 f"{', '.join(OPTIMIZERS)}")
            self.optimizer = names[str(optimizer).lower()]
        if layer is None and activation is None:
            if kw:
                raise ValueError(f"add: arguments {sorted(kw)} given without a layer"
                                 f"{_did_you_mean(kw, ('layer', 'activation', 'optimizer'))}")
            return
        if layer is not None and not isinstance(layer, str):
            self._add_custom(layer, activation, kw)
            return
        if isinstance(layer, str) and layer.lower() == "mobilenet" and \
                kw.get("num_classes") is None:
            kw["num_classes"] = self._class_count() or 1000
        if isinstance(layer, str) and layer.lower() == "diffusion_model" and \
                kw.get("channels") is None:
            kw["channels"] = self._image_channels()
        if isinstance(layer, str) and layer.lower() == "em_lstm" and \
                kw.get("vocab_size") is None:
            if not self.word2idx:
                raise ValueError("add('em_lstm'): the vocabulary size comes from the data's "
                                 "word2idx: call load_npz_data (or load_dataset(..., "
                                 "word2idx=...)) first, or give vocab_size=")
            kw["vocab_size"] = len(self.word2idx)
        spec = self._spec(layer, activation, kw)
        entry = self._build(spec)
        if spec["kw"].get("weights") is not None:
            M.load_torchvision_weights(entry.module, _read_weights(spec["kw"]["weights"]))
        self.layers.append(entry)
        if self.input_shape is not None:      # data already loaded: check the new layer now
            try:
                self._shapes(self.input_shape)
            except ValueError:
                self.layers.pop()
                raise

    @staticmethod
    def dict2list(dict_data):
        """Class names as a list from {name: index} or {index: name} (BaseNN's helper); a list
        is returned as it is."""
        if isinstance(dict_data, dict) and dict_data:
            first = next(iter(dict_data))
            return list(dict_data) if isinstance(first, str) else list(dict_data.values())
        return list(dict_data) if isinstance(dict_data, dict) else dict_data

    def _add_custom(self, obj, activation, kw):
        if kw:
            raise ValueError(f"add({type(obj).__name__} object): unexpected argument(s) "
                             f"{', '.join(sorted(kw))} (a module object takes only activation=)")
        act = self._spec(None, activation, {})["activation"] if activation else None
        module = M.Custom(obj, self.dtype)
        n_params = sum(int(np.size(v)) for v in module.params.values())
        n_buffers = sum(int(np.size(v)) for v in module.buffers.values())
        spec = {"layer": CUSTOM, "activation": act,
                "kw": {"class": type(obj).__name__, "params": n_params, "buffers": n_buffers}}
        entry = _Entry(spec, module, M.make_activation(act) if act else None)
        self.layers.append(entry)
        if self.input_shape is not None:
            try:
                self._shapes(self.input_shape)
            except ValueError:
                self.layers.pop()
                raise

    def _image_channels(self):
        """Channels of the loaded images, else 3 for model.color 'RGB', else 1."""
        if self.input_shape is not None and len(self.input_shape) == 3:
            return int(self.input_shape[0])
        return 3 if str(getattr(self, "color", None)).upper() == "RGB" else 1

    def _class_count(self):
        """Classes of the loaded data (named, or labels 0..max), None without labelled data."""
        if self.classes:
            return len(self.classes)
        y = getattr(self, "y", None)
        if y is not None and np.ndim(y) == 1 and np.asarray(y).dtype.kind in "iu" and len(y):
            return int(np.max(y)) + 1
        return None

    def _spec(self, layer, activation, kw):
        if activation is not None:
            valid = {a.lower(): a for a in M.ACTIVATIONS}
            if not isinstance(activation, str) or activation.lower() not in valid:
                raise ValueError(f"add: unknown activation {activation!r}; valid: "
                                 f"{', '.join(M.ACTIVATIONS)}")
            activation = valid[activation.lower()]
        if layer is None:
            if kw:
                raise ValueError(f"add(activation={activation!r}): unexpected arguments "
                                 f"{sorted(kw)}")
            return {"layer": None, "activation": activation, "kw": {}}
        if not isinstance(layer, str) or layer.lower() not in LAYERS:
            raise ValueError(f"add: unknown layer {layer!r}; valid layers: {', '.join(LAYERS)} "
                             "(case-insensitive)")
        name = layer.lower()
        required, optional = LAYERS[name]
        missing = [r for r in required if r not in kw]
        if missing:
            raise ValueError(f"add({layer!r}): missing argument(s) {', '.join(missing)} "
                             f"(needs {', '.join(required)}; optional: "
                             f"{', '.join(optional) or 'none'})")
        extra = [k for k in kw if k not in required and k not in optional]
        if extra:
            valid = required + tuple(optional)
            raise ValueError(f"add({layer!r}): unexpected argument(s) {', '.join(extra)} "
                             f"(accepts {', '.join(valid) or 'no arguments'})"
                             f"{_did_you_mean(extra, valid + ('activation', 'optimizer'))}")
        for arg, rule in _ARG_RULES.get(name, {}).items():
            value = kw.get(arg, optional.get(arg))
            if value is not None:           # pooling's stride None: the kernel size
                _check_arg(layer, arg, value, rule)
        full = {k: _jsonable(kw[k]) for k in required}
        full.update({k: _jsonable(kw.get(k, v)) for k, v in optional.items()})
        return {"layer": name, "activation": activation, "kw": full}

    def _build(self, spec):
        module = build_module(spec["layer"], spec["kw"], self.rng, self.dtype) \
            if spec["layer"] else None
        act = M.make_activation(spec["activation"]) if spec["activation"] else None
        return _Entry(spec, module, act)

    def _chain(self):
        """(layer number, module) in execution order."""
        out = []
        for i, e in enumerate(self.layers, 1):
            out += [(i, m) for m in (e.module, e.act) if m is not None]
        return out

    def _shapes(self, sample_shape):
        """Per-sample output shape after each ``add``; ValueError names the failing layer."""
        shape, shapes = tuple(sample_shape), []
        for i, e in enumerate(self.layers, 1):
            for m in (e.module, e.act):
                if m is None:
                    continue
                try:
                    shape = tuple(int(s) for s in m.out_shape(shape))
                except M.ShapeError as err:
                    raise ValueError(f"layer {i} ({e.describe()}) {err}") from None
            shapes.append(shape)
        return shapes

    # ------------------------------------------------------------ data

    def load_dataset(self, x, y=None, classes=None, batch_size=None, shuffle=True,
                     train_val_ratio=1.0, num_workers=0, word2idx=None):
        """Training data as arrays: x of shape (N, ...) and y of shape (N,) or (N, ...).
        word2idx: a text model's vocabulary (word -> token id), for em_lstm."""
        if word2idx is not None:
            self.word2idx = _vocabulary(word2idx)
        if not isinstance(x, D.ImageFiles):
            x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"load_dataset: x must have a batch axis, got shape {x.shape}")
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(x):
                raise ValueError(f"load_dataset: x has {len(x)} samples but y has {len(y)}")
        self.classes = D.normalize_classes(classes) if classes is not None else self.classes
        self.batch_size, self.shuffle = batch_size, shuffle
        if not 0 < train_val_ratio <= 1:
            train_val_ratio = 1.0
        n_train = int(round(len(x) * train_val_ratio))
        if n_train < len(x):
            idx = self.rng.permutation(len(x))
            tr, va = idx[:n_train], idx[n_train:]
            self.x, self.x_val = x[tr], x[va]
            self.y, self.y_val = (y[tr], y[va]) if y is not None else (None, None)
        else:
            self.x, self.y, self.x_val, self.y_val = x, y, None, None
        self.input_shape = tuple(int(s) for s in x.shape[1:])

    def load_npz_data(self, data_path, batch_size=32, shuffle=True, classes=None,
                      train_val_ratio=1.0, num_workers=0):
        """An .npz file with arrays ``data`` (x), optionally ``label`` (y) and ``word2idx`` (a
        text model's vocabulary, saved by np.savez as a dict). Read without running anything
        in the file: the vocabulary may hold only plain data."""
        if not os.path.isfile(data_path):
            raise FileNotFoundError(f"load_npz_data: {data_path!r} not found")
        arrays = read_npz(data_path, kinds="biuf", objects=("word2idx",))
        if "data" not in arrays:
            raise ValueError(f"load_npz_data: {data_path!r} has no array named 'data' (it has "
                             f"{', '.join(sorted(arrays)) or 'none'})")
        word2idx = arrays.get("word2idx")
        if word2idx is not None:
            word2idx = word2idx.item() if isinstance(word2idx, np.ndarray) else word2idx
        self.load_dataset(arrays["data"], arrays.get("label"), classes=classes,
                          batch_size=batch_size, shuffle=shuffle,
                          train_val_ratio=train_val_ratio, word2idx=word2idx)

    def load_tab_data(self, data_path, batch_size=None, shuffle=True, train_val_ratio=1.0,
                      num_workers=0, y_type=None):
        """A CSV file with a header row; features in every column but the last (the label).
        y_type: 'long' (class indices), 'float' (regression targets) or None (class indices
        when every label is a whole number)."""
        x, y = D.load_csv(data_path, label=True)
        if y_type in ("long", "int"):
            if not np.all(y == np.round(y)):
                raise ValueError(f"load_tab_data: y_type='long' but {data_path!r} has labels "
                                 "that are not whole numbers")
            y = y.astype(np.int64)
        elif y_type == "float":
            y = y.astype(self.dtype)
        elif y_type is not None:
            raise ValueError(f"load_tab_data: y_type must be 'long', 'float' or None, got "
                             f"{y_type!r}")
        self.load_dataset(x, y, batch_size=batch_size, shuffle=shuffle,
                          train_val_ratio=train_val_ratio)

    def load_img_data(self, data_path, batch_size=32, shuffle=True, transform=None,
                      color="grayscale", train_val_ratio=1.0, classes=None, num_workers=0,
                      batch_mode=False):
        """An ImageFolder tree (data_path/<class>/<images>) read with Pillow into (N, C, H, W)
        float32 in [0, 1]. transform: a dict of steps ('Resize': (h, w), 'CenterCrop': (h, w),
        'Pad': p, 'Normalize': (mean, std)) applied in that order, or a callable on PIL images.
        batch_mode=True keeps only the file names and reads each batch's images when training
        or predicting reaches them (for folders too large for memory)."""
        if batch_mode:
            paths, y, names = D.image_folder_files(data_path)
            x = D.ImageFiles(paths, color, transform)
        else:
            x, y, names = D.load_image_folder(data_path, color, transform)
        self.image = {"color": color, "transform": transform if isinstance(transform, dict)
                      else None}
        self.load_dataset(x, y, classes=classes if classes is not None else names,
                          batch_size=batch_size, shuffle=shuffle,
                          train_val_ratio=train_val_ratio)

    def _as_input(self, x):
        first = self._chain()[0][1] if self.layers else None
        if first is not None and first.accepts_int:
            return np.asarray(x)
        return np.asarray(x, dtype=self.dtype)

    # ------------------------------------------------------------ forward / backward

    def _forward(self, x, train, modules=None):
        for _, m in (modules if modules is not None else self._chain()):
            x = m.forward(x, train)
        return x

    def _backward(self, dout, modules):
        for _, m in reversed(modules):
            dout = m.backward(dout)
            if dout is None:
                break

    def _params(self, which="params"):
        out = {}
        for i, e in enumerate(self.layers):
            if e.module is not None:
                for k, v in getattr(e.module, which).items():
                    out[f"{i}.{k}"] = v
        return out

    def _fused_softmax(self):
        chain = self._chain()
        return self.loss == "CrossEntropyLoss" and isinstance(chain[-1][1], M.Softmax)

    def _class_targets(self, t, n_out):
        t = np.asarray(t)
        if t.ndim == 2 and t.shape[1] == n_out and np.all((t == 0) | (t == 1)) \
                and np.all(t.sum(1) == 1):          # one-hot rows
            t = t.argmax(1)
        if t.dtype.kind not in "iu":
            if not np.all(t == np.round(t)):
                raise ValueError("CrossEntropyLoss: labels must be class indices (ints) "
                                 "or one-hot rows; for real-valued targets use loss='MSELoss'")
            t = t.astype(np.int64)
        t = t.reshape(-1)
        if t.size and (t.min() < 0 or t.max() >= n_out):
            raise ValueError(f"CrossEntropyLoss: labels must lie in [0, {n_out}) for a model with "
                             f"{n_out} outputs; got labels from {t.min()} to {t.max()}")
        return t

    def _loss_and_backward(self, x, t):
        """Train-mode forward, loss, backward; returns (loss, model output)."""
        from .. import layers as L

        chain = self._chain()
        if self._fused_softmax():
            body = chain[:-1]
            z = self._forward(x, True, body)
            logits = z.reshape(-1, z.shape[-1])
            last = L.SoftmaxWithLoss()
            loss = float(last.forward(logits, self._class_targets(t, z.shape[-1])))
            out = last.y.reshape(z.shape)
            dz = last.backward(1).reshape(z.shape)
            self._backward(dz, body)
            return loss, out
        out = self._forward(x, True, chain)
        if self.loss == "CrossEntropyLoss":
            logits = out.reshape(-1, out.shape[-1])
            last = L.SoftmaxWithLoss()
            loss = float(last.forward(logits, self._class_targets(t, out.shape[-1])))
            dout = last.backward(1).reshape(out.shape)
        else:
            t = np.asarray(t, dtype=out.dtype)
            if t.size != out.size:
                raise ValueError(f"MSELoss: the model gives {out.shape[1:]} per sample but the "
                                 f"targets are {t.shape[1:]}")
            diff = out - t.reshape(out.shape)
            loss = float(np.mean(diff * diff))
            dout = diff * out.dtype.type(2.0 / max(out.size, 1))
        self._backward(dout, chain)
        return loss, out

    # ------------------------------------------------------------ metrics

    def _metric(self, name, out, t):
        t = np.asarray(t)
        if name == "acc":
            pred = out.reshape(-1, out.shape[-1]).argmax(-1)
            return float(np.mean(pred == self._class_targets(t, out.shape[-1])))
        if t.size != out.size:       # class labels against probabilities: compare with one-hot
            t = np.eye(out.shape[-1], dtype=out.dtype)[self._class_targets(t, out.shape[-1])]
        diff = out.reshape(-1) - t.reshape(-1).astype(out.dtype)
        return float(np.mean(np.abs(diff)) if name == "mae" else np.mean(diff * diff))

    def _infer_task(self, loss):
        if self.task is not None:
            return self.task
        if loss is not None:
            return "reg" if loss == "MSELoss" else "cls"
        if isinstance(self._chain()[-1][1], M.Softmax):
            return "cls"
        y = np.asarray(self.y)
        if y.dtype.kind in "iub" or (y.dtype.kind == "f" and np.all(y == np.round(y))
                                     and y.ndim == 1):
            return "cls"
        return "reg"

    # ------------------------------------------------------------ training

    def train(self, lr=0.01, epochs=30, batch_size=None, save_fold=None, checkpoint=None,
              metrics=None, loss=None, verbose=True, global_batch_size=None, batch_num=None,
              filename="basenn.pth"):
        """Train; saves ``<save_fold>/<filename>`` after every epoch. ``checkpoint`` resumes
        from a file. ``verbose``: a progress bar and a line of loss and metrics per epoch
        (False: silent; ``history`` holds the same numbers). ``batch_num`` is accepted for
        BaseNN programs; BaseNN 2.0.0 does not use it either.

        Under ``mpiexec`` the training is data-parallel (:mod:`fastnn.distributed`):
        ``batch_size`` is each rank's batch and a step consumes ``global_batch_size`` samples
        (default ``batch_size`` x the ranks) in rank 0's shuffled order; the gradients are
        averaged over the ranks, the loss and metrics are those of all samples, BatchNorm
        running statistics are averaged after each epoch, and only rank 0 prints and saves."""
        from .. import distributed as dist
        from .._progress import progress_bar

        if checkpoint is not None:
            self.load(checkpoint)
        if self.x is None:
            raise ValueError("train: no data; call load_dataset(x, y), load_tab_data(...) or "
                             "load_img_data(...) first")
        if any(e.spec["layer"] == "diffusion_model" for e in self.layers):
            from .diffusion import train_model
            return train_model(self, lr, epochs, batch_size, save_fold, verbose, filename)
        if self.y is None:
            raise ValueError("train: the loaded data has no labels y")
        if not self.layers:
            raise ValueError("train: the model has no layers; add them with model.add(...)")
        if loss is not None and loss not in LOSSES:
            raise ValueError(f"train: unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        self.task = self._infer_task(loss)
        self.loss = loss or ("CrossEntropyLoss" if self.task == "cls" else "MSELoss")
        metrics = list(metrics) if metrics is not None else (
            ["acc"] if self.task == "cls" else ["mae"])
        for m in metrics:
            if m not in METRICS:
                raise ValueError(f"train: unknown metric {m!r}; valid: {', '.join(METRICS)}")
        self.input_shape = tuple(self.x.shape[1:])
        self._shapes(self.input_shape)
        if save_fold is not None:
            self.save_fold = save_fold
        n = len(self.x)
        bs = int(batch_size or self.batch_size or (n if n <= 1024 else 64))
        dist.init()
        parallel = dist.is_initialized()
        verbose = verbose and dist.is_root()
        if global_batch_size is not None:
            bs = int(global_batch_size)
            if bs < dist.size():
                raise ValueError(f"train: global_batch_size must be at least the number of "
                                 f"ranks ({dist.size()}), got {global_batch_size}")
        else:
            bs *= dist.size()
        sharder = dist.Sharder(bs)
        opt = make_optimizer(self.optimizer, lr)
        params = self._params()
        if parallel:  # every rank starts from rank 0's model
            dist.broadcast_params(params)
            dist.broadcast_params(self._params("buffers"))
            dist.seed_rank(None, self.epochs_done)  # dropout: each rank its own masks
        for _ in range(int(epochs)):
            self.epochs_done += 1
            order = self.rng.permutation(n) if self.shuffle else np.arange(n)
            order = sharder.epoch_order(order)
            total, outs, targets = 0.0, [], []
            starts = range(0, n, bs)
            bar = progress_bar(starts, desc=f"Epoch {self.epochs_done}", unit="batch",
                               leave=False) if verbose else None
            for start in (bar if bar is not None else starts):
                idx = sharder.shard(order[start:start + bs])
                xb, tb = self._as_input(self.x[idx]), self.y[idx]
                if len(idx):
                    loss_value, out = self._loss_and_backward(xb, tb)
                    grads = self._params("grads")
                    outs.append(out)
                    targets.append(tb)
                else:  # fewer samples than ranks in the last batch
                    loss_value, grads = 0.0, {k: np.zeros_like(v) for k, v in params.items()}
                if parallel:
                    red = dist.allreduce_grads(grads, count=len(idx),
                                               values=(loss_value * len(idx),))
                    loss_value = float(red.values[0] / red.count)
                opt.update(params, grads)
                total += loss_value * len(idx)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
            if bar is not None:
                bar.close()
            if parallel:  # the same model on every rank, then metrics over all samples
                dist.average_arrays(self._params("buffers"))
            if parallel:
                record = self._distributed_record(metrics, total, n, outs, targets)
            else:
                record = {"epoch": self.epochs_done, "loss": total / n}
                out, t = np.concatenate(outs), np.concatenate(targets)
                record.update({m: self._metric(m, out, t) for m in metrics})
                if self.x_val is not None and len(self.x_val):
                    val = self._predict(self.x_val)
                    record.update({f"val_{m}": self._metric(m, val, self.y_val)
                                   for m in metrics})
            self.history.append(record)
            if verbose:
                print("  ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
                                for k, v in record.items()))
            if dist.is_root():
                self.save(os.path.join(self.save_fold, filename))
        return self.history

    def _distributed_record(self, metrics, total, n, outs, targets):
        """The epoch's record from every rank's outputs (and its part of the validation set)."""
        from .. import distributed as dist

        local = [total] + self._metric_sums(metrics, outs, targets)
        if self.x_val is not None and len(self.x_val):
            part = dist.split(len(self.x_val))
            xv, yv = self.x_val[part], self.y_val[part]
            local += self._metric_sums(metrics, [self._predict(xv)] if len(xv) else [],
                                       [yv] if len(xv) else [])
        sums = dist.allreduce_sum(local)
        record = {"epoch": self.epochs_done, "loss": float(sums[0]) / n}
        record.update({m: float(sums[1 + 2 * i] / sums[2 + 2 * i])
                       for i, m in enumerate(metrics)})
        if len(sums) > 1 + 2 * len(metrics):
            off = 1 + 2 * len(metrics)
            record.update({f"val_{m}": float(sums[off + 2 * i] / sums[off + 1 + 2 * i])
                           for i, m in enumerate(metrics)})
        return record

    def _metric_sums(self, metrics, outs, targets):
        """[metric x samples, samples] per metric over the batches' outputs: summed over the
        ranks, their quotient is the metric over all samples (each metric is a mean over
        samples of equal size)."""
        if not outs:
            return [0.0, 0.0] * len(metrics)
        out, t = np.concatenate(outs), np.concatenate(targets)
        return [v for m in metrics for v in (self._metric(m, out, t) * len(out), len(out))]

    # ------------------------------------------------------------ inference

    def _predict(self, x, batch=256):
        outs = [self._forward(self._as_input(x[i:i + batch]), False)
                for i in range(0, len(x), batch)]
        return np.concatenate(outs) if outs else np.zeros((0,), self.dtype)

    def _read_path(self, path, label):
        if os.path.isdir(path):
            files = D.list_images(path)
            if not files:
                raise ValueError(f"inference: no images in folder {path!r}")
        elif path.lower().endswith(D.IMAGE_EXTS):
            files = [path]
        elif path.lower().endswith(".csv"):
            return D.load_csv(path, label=label)[0]
        else:
            raise ValueError(f"inference: cannot read {path!r} (give an array, an image file, a "
                             "folder of images or a .csv file)")
        cfg = self.image or {"color": "RGB" if self._in_channels() == 3 else "grayscale",
                             "transform": None}
        transform = cfg["transform"]
        if transform is None and self.input_shape and len(self.input_shape) == 3:
            transform = {"Resize": list(self.input_shape[1:])}
        return np.stack([D.load_image(f, cfg["color"], transform) for f in files])

    def _in_channels(self):
        return self.input_shape[0] if self.input_shape and len(self.input_shape) == 3 else 1

    def inference(self, data=None, show=False, checkpoint=None, hidden=None, label=False,
                  num=4, return_all_timesteps=True):
        """Model outputs for a batch, a single sample, a list, an image file or folder, or a CSV
        file (``label=True`` when its last column is a label). Returns an (N, outputs) array,
        printed too with ``show=True``. (BaseNN's order of parameters.)

        For an em_lstm text model, ``data`` is one word of the vocabulary: returns (the
        next word's probabilities (vocab,), the hidden state), the state to pass as ``hidden``
        with the next word.

        A diffusion model takes no data: it samples ``num`` images, (num, C, S, S) in about
        [0, 1], or with ``return_all_timesteps`` (num, timestep + 1, C, S, S) with every step."""
        if checkpoint is not None:
            self.load(checkpoint)
        if any(e.spec["layer"] == "diffusion_model" for e in self.layers):
            from .diffusion import sample_model
            self.result = sample_model(self, num, return_all_timesteps)
            return self.result
        if data is None:
            raise ValueError("inference: give the data to predict (an array, an image file, a "
                             "folder of images or a .csv file)")
        if not self.layers:
            raise ValueError("inference: the model has no layers; add them or pass checkpoint=")
        first = self.layers[0].module
        if isinstance(first, M.EmLSTM) and isinstance(data, str):
            return self._next_word(first, data, hidden)
        x = self._read_path(data, label) if isinstance(data, str) else np.asarray(data)
        if self.input_shape is not None and x.ndim == len(self.input_shape):
            x = x[None]
        if self.input_shape is not None:
            self._shapes(x.shape[1:])
        self.result = self._predict(x)
        if show:
            print("inference result:", self.result)
        return self.result

    def _next_word(self, module, word, hidden):
        if not self.word2idx or word not in self.word2idx:
            raise ValueError(f"inference: {word!r} is not in the model's vocabulary "
                             f"({len(self.word2idx or ())} words)")
        scores, hidden = module.step(self.word2idx[word], hidden)
        e = np.exp(scores - scores.max())
        self.result = e / e.sum()
        return self.result, hidden

    def print_result(self, result=None):
        """Classification: {sample: {'预测值': class, '置信度': probability}} (BaseNN's keys);
        regression: {sample: {'预测值': value}}. Printed and returned."""
        res = self.result if result is None else np.asarray(result)
        if res is None:
            raise ValueError("print_result: no result yet; call inference first")
        out = {}
        if self.task == "reg":
            for i, r in enumerate(res):
                v = np.asarray(r).ravel()
                out[i] = {"预测值": float(v[0]) if v.size == 1 else v.tolist()}
        else:
            flat = res.reshape(len(res), -1)
            for i, r in enumerate(flat):
                k = int(np.argmax(r))
                name = self.classes[k] if self.classes and k < len(self.classes) else k
                out[i] = {"预测值": name, "置信度": float(r[k])}
        print(out)
        return out

    def print_model(self):
        """Every layer with its output shape (when the input shape is known) and parameter count."""
        shapes = self._shapes(self.input_shape) if self.input_shape is not None else None
        rows = [("#", "layer", "output shape", "params")]
        total = 0
        if self.input_shape is not None:
            rows.append(("", "input", M._fmt(self.input_shape), ""))
        for i, e in enumerate(self.layers):
            count = sum(int(v.size) for v in (e.module.params.values() if e.module else []))
            total += count
            shape = M._fmt(shapes[i]) if shapes else "?"
            rows.append((str(i + 1), e.describe(), shape, str(count)))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = ["  ".join(r[c].ljust(widths[c]) for c in range(4)) for r in rows]
        lines.append(f"total parameters: {total}   optimizer: {self.optimizer}")
        text = "\n".join(lines)
        print(text)
        return text

    # ------------------------------------------------------------ diffusion pictures

    def noisy(self, data, timestep=500, num=10, show=True, file_name=None):
        """The forward process of the diffusion model on one image (a file name or an array in
        [0, 1]): ``num`` noised copies at steps timestep * i // num, returned as (num, C, H, W)
        mapped back to [0, 1] (not clipped); ``show`` draws them in a row into a PNG (see
        fastnn.basenn.diffusion.noisy)."""
        from .diffusion import noisy
        return noisy(self, data, timestep, num, show, file_name)

    def show(self, data, size=(2, 2), visual_timesteps=False, file_name=None):
        """A rows x columns grid of generated images (``size``); ``visual_timesteps``: one image
        per row at steps spread over the sampling chain. Written as a PNG into save_fold; returns
        its path (see fastnn.basenn.diffusion.show)."""
        from .diffusion import show
        return show(self, data, size, visual_timesteps, file_name)

    # ------------------------------------------------------------ export

    def _one_sample(self, data, what):
        """One input sample as a batch of one, from an array or an image/CSV file."""
        x = self._read_path(data, False) if isinstance(data, str) else np.asarray(data)
        if self.input_shape is not None and x.ndim == len(self.input_shape):
            x = x[None]
        elif self.input_shape is None and x.ndim == 1:
            x = x[None]
        if len(x) != 1:
            raise ValueError(f"{what}: give one sample, got a batch of {len(x)}")
        return self._as_input(x)

    def extract_feature(self, data=None, pretrain=None):
        """The model's output for one sample (inference mode), e.g. the (1, 1280) features of
        a model that ends with mobilenet_backbone. BaseNN's ``pretrain`` names a torchvision
        network it downloads; fastnn bundles none: build it with ``add('mobilenet_backbone',
        weights=...)`` and call ``extract_feature(data)``."""
        if pretrain is not None:
            raise ValueError(f"extract_feature: pretrained networks are not downloaded "
                             f"(pretrain={pretrain!r}); add('mobilenet_backbone', "
                             "weights='mobilenet_v2.npz') and call extract_feature(data)")
        if not self.layers:
            raise ValueError("extract_feature: the model has no layers")
        return self._forward(self._one_sample(data, "extract_feature"), False)

    def visual_feature(self, data, in1img=False, save_fold="layers"):
        """What each layer makes of one sample, drawn into ``save_fold``: feature maps of
        (C, H, W) outputs as one row of pictures per layer (``<n>.png``, or all layers in one
        ``layers.png`` with ``in1img=True``), vector outputs as bar charts, and every output's
        numbers in ``layer_data.txt``. Returns the files written."""
        from .. import viz

        x = self._one_sample(data, "visual_feature")
        os.makedirs(save_fold, exist_ok=True)
        outputs = []
        for i, e in enumerate(self.layers, 1):
            for m in (e.module, e.act):
                if m is not None:
                    x = m.forward(x, False)
            outputs.append((f"{i}.{e.describe()}", np.asarray(x[0])))
        files = []
        text = os.path.join(save_fold, "layer_data.txt")
        with atomic_write(text) as f:
            for name, out in outputs:
                f.write(f"{name} {list(out.shape)}\n{np.array2string(out, threshold=64)}\n"
                        .encode())
        files.append(text)
        if in1img:
            fig = viz._figure((8, 1.6 * len(outputs)))
            for r, (name, out) in enumerate(outputs):
                self._draw_layer(fig, out, name, rows=len(outputs), row=r, cols=16)
            path = os.path.join(save_fold, "layers.png")
            viz.save_figure(fig, path)
            return files + [path]
        for n, (name, out) in enumerate(outputs, 1):
            files.append(self.show_one_layer(out, name, n, save_fold))
        return files

    def show_one_layer(self, data, layer_name, num, dir_name):
        """One layer's output for one sample, (C, H, W) maps side by side (at most 16) or a
        vector as bars, titled ``layer_name``, saved as ``<dir_name>/<num>.png``; returns the
        path."""
        from .. import viz

        data = np.asarray(data)
        if data.ndim > 3 and data.shape[0] == 1:
            data = data[0]
        fig = viz._figure((8, 2))
        self._draw_layer(fig, data, layer_name)
        os.makedirs(dir_name, exist_ok=True)
        path = os.path.join(dir_name, f"{num}.png")
        viz.save_figure(fig, path)
        return path

    @staticmethod
    def _draw_layer(fig, out, name, rows=1, row=0, cols=None):
        """Row ``row`` of a ``rows``-row figure: up to 16 maps of (C, H, W) or (H, W) output
        ``out``, or bars of a vector."""
        maps = out if out.ndim == 3 else out[None] if out.ndim == 2 else None
        if maps is None:
            ax = fig.add_subplot(rows, 1, row + 1)
            ax.bar(np.arange(out.size), out.reshape(-1))
            ax.set_title(name, fontsize=8, loc="left")
            return
        k = min(len(maps), 16)
        cols = cols or k
        for j in range(k):
            ax = fig.add_subplot(rows, cols, row * cols + j + 1)
            ax.imshow(maps[j], cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_title(name, fontsize=8, loc="left")

    def convert(self, checkpoint=None, out_file="model.onnx", input_shape=None):
        """Write the model as ONNX to ``out_file`` (atomically) and return the path. With
        ``checkpoint`` the file is loaded first (as ``load`` does); without, the model in memory
        is exported. The graph (``fastnn.export.basenn_to_onnx``: opset 17, float32) takes
        ``input`` of shape (N, *input_shape) and gives ``output``, what ``inference`` returns;
        ``input_shape`` defaults to the shape of the loaded data or the checkpoint's.
        Needs the ``onnx`` package."""
        from ..export import basenn_to_onnx

        if checkpoint is not None:
            self.load(checkpoint)
        proto = basenn_to_onnx(self, input_shape=input_shape)
        os.makedirs(os.path.dirname(os.path.abspath(out_file)), exist_ok=True)
        with atomic_write(out_file) as f:
            f.write(proto.SerializeToString())
        return out_file

    # ------------------------------------------------------------ checkpoints

    def _spec_json(self):
        return json.dumps({
            "format": FORMAT, "version": VERSION, "task": self.task, "dtype": self.dtype.name,
            "loss": self.loss, "optimizer": self.optimizer, "classes": self.classes,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "image": self.image, "epochs": self.epochs_done,
            "vocab": sorted(self.word2idx, key=self.word2idx.get) if self.word2idx else None,
            "layers": [e.spec for e in self.layers]})

    def save(self, model_path="basenn.pth"):
        """Write the model to ``model_path`` (safetensors; see the module docstring), atomically."""
        folder = os.path.dirname(os.path.abspath(model_path))
        os.makedirs(folder, exist_ok=True)
        arrays = {f"param:{k}": v for k, v in self._params().items()}
        arrays.update({f"buffer:{k}": np.asarray(v) for k, v in self._params("buffers").items()})
        data = safetensors_bytes(arrays, {"format": FORMAT, "spec": self._spec_json()})
        with atomic_write(model_path) as f:
            f.write(data)

    def load(self, model_path):
        """Load the checkpoint ``model_path`` written by ``save``/``train``. Builds the layers
        when the model has none; otherwise the file must describe the same layers. The file is
        checked before anything is built (see the module docstring)."""
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"checkpoint {model_path!r} does not exist")
        arrays, spec = _read_checkpoint(model_path)
        if self.layers:
            mine = [e.spec for e in self.layers]
            if mine != spec["layers"]:
                raise ValueError(f"checkpoint {model_path!r} describes different layers than this "
                                 "model:"
                                 f"\n file: {spec['layers']}\n model: {mine}")
        else:
            self.dtype = np.dtype(spec["dtype"])
            self.layers = [self._build(s) for s in spec["layers"]]
        params = self._params()
        for k, v in params.items():
            saved = arrays.get(f"param:{k}")
            if saved is None or saved.shape != v.shape:
                raise ValueError(f"checkpoint {model_path!r}: parameter {k} missing or of shape "
                                 f"{None if saved is None else saved.shape}, expected {v.shape}")
            v[...] = saved
        for i, e in enumerate(self.layers):
            if e.module is not None and e.module.buffers:
                pre = f"buffer:{i}."
                e.module.load_buffers({k[len(pre):]: arrays[k].astype(self.dtype)
                                       for k in arrays if k.startswith(pre)})
        self.task = spec["task"] if self.task is None else self.task
        self.loss, self.optimizer = spec["loss"], spec["optimizer"]
        self.classes = spec["classes"] if spec["classes"] is not None else self.classes
        self.input_shape = tuple(spec["input_shape"]) if spec["input_shape"] else self.input_shape
        self.image = spec["image"] or self.image
        self.epochs_done = spec["epochs"]
        if spec.get("vocab"):
            self.word2idx = {w: i for i, w in enumerate(spec["vocab"])}


# ------------------------------------------------------------------ checkpoint checks

MAX_SIZE = 1 << 24      # a declared size: features, channels, vocabulary, embedding width
MAX_KERNEL = 1 << 12    # a kernel size, stride or padding
MAX_BLOCKS = 1000       # residual blocks in one res_block / res_bottleneck stage
MAX_LSTM_LAYERS = 100
MAX_LAYERS = 10_000     # add() calls in one checkpoint


class _SpecError(ValueError):
    """A checkpoint's description that fastnn will not build a network from."""


def _read_checkpoint(path):
    """(arrays, validated spec) of a checkpoint file; ValueError for anything malformed."""
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        if head == b"PK\x03\x04":                       # earlier versions: .npz
            arrays = read_npz(path, kinds="biufcU")
            if "__spec__" not in arrays:
                raise ValueError(f"{path!r} is not a fastnn.basenn checkpoint (no __spec__ "
                                 "entry)")
            text = str(arrays.pop("__spec__"))
        elif is_safetensors(path):
            arrays, meta = read_safetensors(path)
            if meta.get("format") != FORMAT or "spec" not in meta:
                raise ValueError(f"{path!r} is not a fastnn.basenn checkpoint (its metadata "
                                 f"has no {FORMAT} description)")
            text = meta["spec"]
        else:
            raise ValueError(f"{path!r} is not a fastnn.basenn checkpoint (neither safetensors "
                             "nor a .npz archive)")
    except ParamsError as err:
        inner = str(err)
        inner = inner[len(str(path)) + 2:] if inner.startswith(f"{path}: ") else inner
        raise ValueError(f"{path!r} is not a fastnn.basenn checkpoint ({inner})") from None
    try:
        spec = json.loads(text)
    except ValueError as err:
        raise ValueError(f"checkpoint {path!r}: malformed model description (not JSON: "
                         f"{err})") from None
    except RecursionError:
        raise ValueError(f"checkpoint {path!r}: malformed model description (nested too "
                         "deeply)") from None
    try:
        _check_spec(spec)
        _check_sizes(spec["layers"], arrays)
    except _SpecError as err:
        raise ValueError(f"checkpoint {path!r}: malformed model description ({err})") from None
    return arrays, spec


def _int_in(v, low, high):
    """An int of a checkpoint's description (JSON: a plain int) within [low, high]."""
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _ints(v, what, low, high, count=(1, 2), allow_int=True):
    """A list of ``count`` ints (or one int) in [low, high]."""
    vals = [v] if allow_int and not isinstance(v, list) else v
    if not isinstance(vals, list) or not count[0] <= len(vals) <= count[-1] or \
            not all(_int_in(a, low, high) for a in vals):
        raise _SpecError(f"{what} must be {'an int or ' if allow_int else ''}a list of "
                         f"{'-'.join(map(str, sorted(set(count))))} ints in [{low}, {high}], "
                         f"got {json.dumps(v)[:60]}")
    return vals


def _check_spec(spec):
    if not isinstance(spec, dict):
        raise _SpecError("not a JSON object")
    if spec.get("format") != FORMAT or not _int_in(spec.get("version"), 1, VERSION):
        raise _SpecError(f"unsupported checkpoint format {spec.get('format')!r} version "
                         f"{spec.get('version')!r}")
    fields = {"task": (None, "cls", "reg"), "dtype": ("float32", "float64"),
              "loss": (None,) + LOSSES, "optimizer": OPTIMIZERS}
    for key, valid in fields.items():
        if spec.get(key, "?") not in valid:
            raise _SpecError(f"{key} must be one of {valid}, got {spec.get(key, '(missing)')!r}")
    classes = spec.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(
            isinstance(c, (str, int)) for c in classes)):
        raise _SpecError("classes must be a list of names")
    if spec.get("input_shape") is not None:
        _ints(spec["input_shape"], "input_shape", 1, MAX_SIZE, count=range(1, 5),
              allow_int=False)
    image = spec.get("image")
    if image is not None and not (isinstance(image, dict) and isinstance(image.get("color"), str)
                                  and isinstance(image.get("transform"), (dict, type(None)))):
        raise _SpecError("image must be {'color': ..., 'transform': ...}")
    vocab = spec.get("vocab")
    if vocab is not None and not (isinstance(vocab, list) and len(vocab) <= MAX_SIZE and
                                  all(isinstance(w, str) for w in vocab) and
                                  len(set(vocab)) == len(vocab)):
        raise _SpecError("vocab must be a list of distinct words")
    if not _int_in(spec.get("epochs"), 0, 1 << 40):
        raise _SpecError(f"epochs must be a non-negative int, got {spec.get('epochs')!r}")
    layers = spec.get("layers")
    if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
        raise _SpecError(f"layers must be a list of at most {MAX_LAYERS} entries")
    if spec["version"] < 2 and any(isinstance(e, dict) and e.get("layer") == "dropout"
                                   for e in layers):
        raise _SpecError("written by an older fastnn whose builder Dropout scaled at inference "
                         "(the book's way); it is PyTorch's now, so this model would compute "
                         "differently: train it again")
    acts = {a for a in M.ACTIVATIONS}
    for i, entry in enumerate(layers, 1):
        if not isinstance(entry, dict) or set(entry) != {"layer", "activation", "kw"}:
            raise _SpecError(f"layer {i}: expected keys layer, activation, kw")
        name, act, kw = entry["layer"], entry["activation"], entry["kw"]
        if act is not None and act not in acts:
            raise _SpecError(f"layer {i}: unknown activation {act!r}")
        if name is None:
            if act is None or kw != {}:
                raise _SpecError(f"layer {i}: neither a layer nor an activation")
            continue
        if name == CUSTOM:
            if not (isinstance(kw, dict) and set(kw) == {"class", "params", "buffers"} and
                    isinstance(kw["class"], str) and _int_in(kw["params"], 0, MAX_SIZE * 64)
                    and _int_in(kw["buffers"], 0, MAX_SIZE * 64)):
                raise _SpecError(f"layer {i}: a custom module needs class, params, buffers")
            continue
        if name not in LAYERS or not isinstance(kw, dict):
            raise _SpecError(f"layer {i}: unknown layer {name!r}")
        required, optional = LAYERS[name]
        if set(kw) != set(required) | set(optional):
            raise _SpecError(f"layer {i} ({name}): arguments {sorted(kw)}, expected "
                             f"{sorted(set(required) | set(optional))}")
        _check_args(i, name, kw)


def _check_args(i, name, kw):
    what = f"layer {i} ({name}):"
    if name == "diffusion_model":
        from .diffusion import check_args
        try:
            if not _int_in(kw["channels"], 1, 4):
                raise ValueError(f"channels must be an int in [1, 4], got {kw['channels']!r}")
            check_args(**kw)
        except ValueError as err:
            raise _SpecError(f"{what} {err}") from None
        return
    for key, v in kw.items():
        if key == "size":
            if name in ("batchnorm1d", "batchnorm2d"):
                _ints(v, f"{what} size", 1, MAX_SIZE)
            else:
                _ints(v, f"{what} size", 1, MAX_SIZE, count=(2,), allow_int=False)
        elif key == "kernel_size":
            _ints(v, f"{what} kernel_size", 1, MAX_KERNEL)
        elif key == "stride":
            if not (v is None and name in ("maxpool", "avgpool")):
                _ints(v, f"{what} stride", 1, MAX_KERNEL)
        elif key == "padding":
            _ints(v, f"{what} padding", 0, MAX_KERNEL)
        elif key in ("vocab_size", "embedding_dim"):
            _ints(v, f"{what} {key}", 1, MAX_SIZE, count=(1,))
        elif key == "num_layers":
            _ints(v, f"{what} num_layers", 1, MAX_LSTM_LAYERS, count=(1,))
        elif key == "num_blocks":
            _ints(v, f"{what} num_blocks", 1, MAX_BLOCKS, count=(1,))
        elif key == "p":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise _SpecError(f"{what} p must be a number in [0, 1], got {v!r}")
        elif key == "dim":
            if v is not None:
                _ints(v, f"{what} dim", -8, 8, count=range(1, 5))
        elif key == "num_classes":
            _ints(v, f"{what} num_classes", 1, MAX_SIZE, count=(1,))
        elif key == "weights":
            if v is not None and not isinstance(v, str):
                raise _SpecError(f"{what} weights must be a file name or null, got {v!r}")


def _declared(name, kw):
    """(parameters, buffer values) the layer ``name`` with arguments ``kw`` makes."""
    def k_area(v):
        v = v if isinstance(v, list) else [v, v]
        return v[0] * v[-1]

    if name == "linear":
        i, o = kw["size"]
        return i * o + o, 0
    if name == "conv2d":
        i, o = kw["size"]
        return o * i * k_area(kw["kernel_size"]) + o, 0
    if name == "conv1d":
        i, o = kw["size"]
        k = kw["kernel_size"][0] if isinstance(kw["kernel_size"], list) else kw["kernel_size"]
        return o * i * k + o, 0
    if name in ("batchnorm1d", "batchnorm2d"):
        c = kw["size"][-1] if isinstance(kw["size"], list) else kw["size"]
        return 2 * c, 2 * c
    if name == "embedding":
        return kw["vocab_size"] * kw["embedding_dim"], 0
    if name == "lstm":
        i, h = kw["size"]
        n = kw["num_layers"][0] if isinstance(kw["num_layers"], list) else kw["num_layers"]
        return 4 * h * (i + h + 2) + (n - 1) * 4 * h * (2 * h + 2), 0
    if name == CUSTOM:
        return kw["params"], kw["buffers"]
    if name == "diffusion_model":
        from .diffusion import unet_sizes
        return unet_sizes(kw["channels"], kw["dim"]), 0
    if name == "action_model":
        i, h = kw["size"]
        return 4 * h * (i + h + 2) + 2 * h, 2 * h
    if name == "em_lstm":
        e, h = kw["size"]
        v = kw["vocab_size"]
        n = kw["num_layers"][0] if isinstance(kw["num_layers"], list) else kw["num_layers"]
        return v * e + 4 * h * (e + h + 2) + (n - 1) * 4 * h * (2 * h + 2) + h * v + v, 0
    if name in ("mobilenet_backbone", "mobilenet"):
        n = kw.get("num_classes")
        return M.mobilenet_v2_sizes(n[0] if isinstance(n, list) else n)
    if name in ("res_block", "res_bottleneck"):
        c_in, c = kw["size"]
        stride = kw["stride"][0] if isinstance(kw["stride"], list) else kw["stride"]
        blocks = kw["num_blocks"][0] if isinstance(kw["num_blocks"], list) else kw["num_blocks"]
        params = buffers = 0
        for b in range(blocks):
            if name == "res_block":
                c_out = c
                params += 9 * c_in * c + 9 * c * c + 4 * c
                buffers += 4 * c
            else:
                c_out = 4 * c
                params += c_in * c + 9 * c * c + 4 * c * c + 2 * c + 2 * c + 2 * c_out
                buffers += 4 * c + 2 * c_out
            if (stride if b == 0 else 1) != 1 or c_in != c_out:
                params += c_in * c_out + 2 * c_out
                buffers += 2 * c_out
            c_in = c_out
        return params, buffers
    return 0, 0


def _check_sizes(layers, arrays):
    """Each layer's declared parameter and buffer counts equal what the file stores for it."""
    stored = {}
    for key, arr in arrays.items():
        kind, _, rest = key.partition(":")
        index = rest.split(".", 1)[0]
        if kind not in ("param", "buffer") or not index.isdigit() or "." not in rest:
            raise _SpecError(f"unexpected array {key!r}")
        slot = stored.setdefault(int(index), [0, 0])
        slot[kind == "buffer"] += int(arr.size)
    for i, entry in enumerate(layers):
        want = _declared(entry["layer"], entry["kw"]) if entry["layer"] else (0, 0)
        have = tuple(stored.pop(i, (0, 0)))
        if tuple(want) != have:
            raise _SpecError(f"layer {i + 1} ({entry['layer']} {json.dumps(entry['kw'])}) "
                             f"declares {want[0]} parameters and {want[1]} buffer values but the "
                             f"file stores {have[0]} and {have[1]}")
    if stored:
        raise _SpecError(f"arrays for layers {sorted(k + 1 for k in stored)} that the "
                         "description does not have")
