"""ONNX export of the book's networks (needs the ``onnx`` package: ``pip install onnx``).

``to_onnx(network, input_shape)`` walks ``network.layers`` in order and writes one ONNX node
(or a few) per layer, with the parameters as initializers:

=====================  ===========================================================
fastnn layer            ONNX
=====================  ===========================================================
Convolution             Conv (strides, pads, kernel_shape)
Relu / Sigmoid / Tanh   Relu / Sigmoid / Tanh
Pooling / AvgPooling    MaxPool / AveragePool (count_include_pad=1, as fastnn counts
                        padded cells as zeros)
Affine                  Flatten (for 4-D input) + Gemm
BatchNormalization      BatchNormalization in inference mode, epsilon 1e-6 (a 4-D
                        input is normalised per C*H*W feature, as in the book:
                        Flatten, BatchNormalization, Reshape back)
Dropout                 Mul by 1 - ratio (the book's test-time scaling)
SoftmaxWithLoss         Softmax: output ``probabilities``; ``logits`` is its input
=====================  ===========================================================

The graph computes in float32 whatever the network's dtype, with a free batch dimension N:
input ``input`` of shape (N, *input_shape), outputs ``logits`` (what ``network.predict``
returns) and ``probabilities`` (their softmax).

``basenn_to_onnx(model)`` (behind ``fastnn.basenn.nn.convert``) does the same for the BaseNN
builder's models: it walks the module tree (residual blocks become Add + Relu of their two
branches, LSTM layers ONNX LSTM nodes with the gates reordered from i, f, g, o to i, o, f, c)
and has one output ``output``, what ``model.inference`` returns.
"""

import numpy as np

OPSET = 17
IR_VERSION = 8  # what onnxruntime releases since 1.10 read
BATCHNORM_EPS = 10e-7  # the book's constant (fastnn.ops.BATCHNORM_EPS)


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install onnx") from None
    return onnx


def _conv_out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


class _Graph:
    def __init__(self, onnx):
        self.onnx, self.h = onnx, onnx.helper
        self.nodes, self.inits = [], []
        self.count = 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base, value):
        name = self.name(base)
        arr = np.ascontiguousarray(np.asarray(value))
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def node(self, op, inputs, layer, **attrs):
        out = self.name(f"{layer}_{op}")
        self.nodes.append(self.h.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _host32(a):
    from ._device import to_host
    return np.asarray(to_host(a), dtype=np.float32)


def to_onnx(network, input_shape, file_name=None, model_name=None):
    """The ONNX ModelProto of ``network`` for inputs of shape (N, *input_shape); written to
    ``file_name`` (atomically) when given. ValueError names a layer ONNX has no mapping for."""
    onnx = _onnx()
    g = _Graph(onnx)
    shape = tuple(int(s) for s in input_shape)
    x = "input"
    for lname, layer in network.layers.items():
        kind = type(layer).__name__
        if kind == "Convolution":
            W = _host32(layer.W)
            FN, C, FH, FW = W.shape
            s, p = int(layer.stride), int(layer.pad)
            x = g.node("Conv", [x, g.const(f"{lname}_W", W), g.const(f"{lname}_b",
                                                                     _host32(layer.b))],
                       lname, kernel_shape=[FH, FW], strides=[s, s], pads=[p, p, p, p])
            shape = (FN, _conv_out(shape[1], FH, s, p), _conv_out(shape[2], FW, s, p))
        elif kind in ("Relu", "Sigmoid", "Tanh"):
            x = g.node(kind, [x], lname)
        elif kind in ("Pooling", "AvgPooling"):
            ph, pw, s, p = int(layer.pool_h), int(layer.pool_w), int(layer.stride), int(layer.pad)
            attrs = dict(kernel_shape=[ph, pw], strides=[s, s], pads=[p, p, p, p])
            if kind == "AvgPooling":
                attrs["count_include_pad"] = 1
            x = g.node("MaxPool" if kind == "Pooling" else "AveragePool", [x], lname, **attrs)
            shape = (shape[0], _conv_out(shape[1], ph, s, p), _conv_out(shape[2], pw, s, p))
        elif kind == "Affine":
            if len(shape) != 1:
                x = g.node("Flatten", [x], lname, axis=1)
            W = _host32(layer.W)
            x = g.node("Gemm", [x, g.const(f"{lname}_W", W), g.const(f"{lname}_b",
                                                                     _host32(layer.b))], lname)
            shape = (W.shape[1],)
        elif kind == "BatchNormalization":
            if layer.running_mean is None or layer.running_var is None:
                raise ValueError(f"export: {lname} has no running statistics yet (train or "
                                 "load the network first)")
            inputs = [g.const(f"{lname}_{a}", _host32(getattr(layer, a)))
                      for a in ("gamma", "beta", "running_mean", "running_var")]
            if len(shape) != 1:
                flat = g.node("Flatten", [x], lname, axis=1)
                y = g.node("BatchNormalization", [flat] + inputs, lname, epsilon=BATCHNORM_EPS)
                x = g.node("Reshape", [y, g.const(f"{lname}_shape", np.array((-1,) + shape,
                                                                             np.int64))], lname)
            else:
                x = g.node("BatchNormalization", [x] + inputs, lname, epsilon=BATCHNORM_EPS)
        elif kind == "Dropout":
            x = g.node("Mul", [x, g.const(f"{lname}_scale",
                                          np.float32(1.0 - layer.dropout_ratio))], lname)
        else:
            raise ValueError(f"export: layer {lname} ({kind}) has no ONNX mapping (supported: "
                             "Convolution, Relu, Sigmoid, Tanh, Pooling, AvgPooling, Affine, "
                             "BatchNormalization, Dropout)")
    if len(shape) != 1:
        raise ValueError(f"export: the network's output has per-sample shape {shape}, "
                         "expected (classes,)")
    h = onnx.helper
    g.nodes.append(h.make_node("Identity", [x], ["logits"], name="logits"))
    g.nodes.append(h.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1))
    f32 = onnx.TensorProto.FLOAT
    graph = h.make_graph(
        g.nodes, model_name or type(network).__name__,
        [h.make_tensor_value_info("input", f32, ["N"] + [int(s) for s in input_shape])],
        [h.make_tensor_value_info("logits", f32, ["N", shape[0]]),
         h.make_tensor_value_info("probabilities", f32, ["N", shape[0]])],
        g.inits)
    from . import __version__
    model = h.make_model(graph, producer_name="fastnn", producer_version=__version__,
                         opset_imports=[h.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    if file_name is not None:
        from ._files import atomic_write
        with atomic_write(file_name) as f:
            f.write(model.SerializeToString())
    return model


# ------------------------------------------------------------------ the BaseNN builder

BASENN_KINDS = ("Linear", "Conv2d", "Conv1d", "Pool2d (maxpool/avgpool)",
                "ReLU/Sigmoid/tanh", "LeakyReLU", "ReLU6", "Softmax", "Dropout",
                "BatchNorm (1d/2d)", "Mean", "Unsqueeze", "Squeeze", "Embedding", "LSTM",
                "reshape", "res_block/res_bottleneck/mobilenet/action_model (Residual, "
                "Sequence, LastStep)")
_LSTM_GATES = (0, 3, 1, 2)   # PyTorch/fastnn order i, f, g, o -> ONNX order i, o, f, c


def _lstm_gates(a, H):
    """Rows of a (4H, ...) or (4H,) array from i, f, g, o blocks to ONNX's i, o, f, c."""
    return np.concatenate([a[k * H:(k + 1) * H] for k in _LSTM_GATES])


class _BasennExport:
    """One pass over a basenn model's modules, tracking the per-sample shape."""

    def __init__(self, g):
        self.g = g

    def module(self, m, x, shape, name):
        from .basenn import modules as M

        g = self.g
        kind = type(m).__name__
        out = tuple(int(s) for s in m.out_shape(shape))
        if isinstance(m, M.Linear):
            if len(shape) != 1:
                x = g.node("Flatten", [x], name, axis=1)
            x = g.node("Gemm", [x, g.const(f"{name}_W", _host32(m.params["W"])),
                                g.const(f"{name}_b", _host32(m.params["b"]))], name)
        elif isinstance(m, M.Conv2d):
            ins = [x, g.const(f"{name}_W", _host32(m.params["W"]))]
            if "b" in m.params:
                ins.append(g.const(f"{name}_b", _host32(m.params["b"])))
            s, p = m.stride, m.pad
            x = g.node("Conv", ins, name, kernel_shape=[m.kh, m.kw], strides=[s, s],
                       pads=[p, p, p, p], group=m.groups)
        elif isinstance(m, M.Conv1d):
            W = _host32(m.params["W"])[:, :, 0, :]          # (out, in, 1, k) -> (out, in, k)
            x = g.node("Conv", [x, g.const(f"{name}_W", W),
                                g.const(f"{name}_b", _host32(m.params["b"]))], name,
                       kernel_shape=[m.k], strides=[m.stride], pads=[m.pad, m.pad])
        elif isinstance(m, M.Pool2d):
            # floor sizes (ceil_mode 0) crop what no window reaches, as the module does; max
            # pads with -inf (ONNX ignores pads), avg pads with zeros counted in the divisor
            s, p = m.stride, m.pad
            attrs = dict(kernel_shape=[m.kh, m.kw], strides=[s, s], pads=[p, p, p, p])
            if m.mode == "maxpool":
                x = g.node("MaxPool", [x], name, **attrs)
            else:
                x = g.node("AveragePool", [x], name, count_include_pad=1, **attrs)
        elif isinstance(m, M.Activation) and type(m.kernel).__name__ in ("Relu", "Sigmoid",
                                                                          "Tanh"):
            x = g.node(type(m.kernel).__name__, [x], name)
        elif isinstance(m, M.LeakyReLU):
            x = g.node("LeakyRelu", [x], name, alpha=float(m.slope))
        elif isinstance(m, M.Softmax):
            x = g.node("Softmax", [x], name, axis=-1)
        elif isinstance(m, M.ReLU6):
            x = g.node("Clip", [x, g.const(f"{name}_min", np.float32(0)),
                                g.const(f"{name}_max", np.float32(6))], name)
        elif isinstance(m, M.Dropout):
            # the builder's dropout is PyTorch's: the identity at inference
            x = g.node("Identity", [x], name)
        elif isinstance(m, M.BatchNorm):
            inputs = [g.const(f"{name}_{k}", _host32(d[k])) for d, k in
                      ((m.params, "gamma"), (m.params, "beta"),
                       (m.buffers, "running_mean"), (m.buffers, "running_var"))]
            x = g.node("BatchNormalization", [x] + inputs, name, epsilon=BATCHNORM_EPS)
        elif isinstance(m, M.Mean):
            x = g.node("ReduceMean", [x], name, axes=list(m._axes(len(shape) + 1)), keepdims=0)
        elif isinstance(m, M.Unsqueeze):
            x = g.node("Slice", [x, g.const(f"{name}_starts", np.array([-1], np.int64)),
                                 g.const(f"{name}_ends", np.array([2 ** 62], np.int64)),
                                 g.const(f"{name}_axes", np.array([1], np.int64))], name)
        elif isinstance(m, M.LastStep):
            x = g.node("Slice", [x, g.const(f"{name}_starts", np.array([-1], np.int64)),
                                 g.const(f"{name}_ends", np.array([2 ** 62], np.int64)),
                                 g.const(f"{name}_axes", np.array([1], np.int64))], name)
            x = g.node("Squeeze", [x, g.const(f"{name}_axis", np.array([1], np.int64))], name)
        elif isinstance(m, M.Flatten):
            x = g.node("Flatten", [x], name, axis=1)
        elif isinstance(m, M.Squeeze):
            axes = [i for i, s in enumerate(shape, 1) if s == 1]
            x = g.node("Squeeze", [x, g.const(f"{name}_axes", np.array(axes, np.int64))], name)
        elif isinstance(m, M.Embedding):
            x = g.node("Gather", [g.const(f"{name}_W", _host32(m.params["W"])), x], name, axis=0)
        elif isinstance(m, M.LSTM):
            x = self.lstm(m, x, name)
        elif isinstance(m, M.Sequence):
            for j, sub in enumerate(m.modules):
                x, shape = self.module(sub, x, shape, f"{name}.{j}")
        elif isinstance(m, M.Residual):
            y, _ = self.module(m.main, x, shape, f"{name}.main")
            s = self.module(m.shortcut, x, shape, f"{name}.short")[0] if m.shortcut else x
            x = g.node("Add", [y, s], name)
            if m.relu:
                x = g.node("Relu", [x], name)
        else:
            raise NotImplementedError(
                f"convert: layer {name} is a {kind} module, which has no ONNX mapping yet "
                f"(exported kinds: {', '.join(BASENN_KINDS)}); a network without it can be "
                "exported")
        return x, out

    def lstm(self, m, x, name):
        """fastnn.nn.LSTM (batch_first, zero initial state): one ONNX LSTM node per layer on
        (T, N, D), with the gates reordered and the two biases concatenated."""
        g, lstm, H = self.g, m.lstm, m.hidden
        if getattr(lstm, "bidirectional", False) or getattr(lstm, "proj_size", 0):
            raise NotImplementedError(f"convert: layer {name}: bidirectional or projected LSTM "
                                      "has no ONNX mapping here")
        p = {k: _host32(v) for k, v in m.params.items()}
        x = g.node("Transpose", [x], name, perm=[1, 0, 2])         # (N, T, D) -> (T, N, D)
        for k in range(int(lstm.num_layers)):
            W = _lstm_gates(p[f"weight_ih_l{k}"], H)[None]
            R = _lstm_gates(p[f"weight_hh_l{k}"], H)[None]
            if f"bias_ih_l{k}" in p:
                B = np.concatenate([_lstm_gates(p[f"bias_ih_l{k}"], H),
                                    _lstm_gates(p[f"bias_hh_l{k}"], H)])[None]
            else:
                B = np.zeros((1, 8 * H), np.float32)
            y = g.node("LSTM", [x, g.const(f"{name}_W{k}", W), g.const(f"{name}_R{k}", R),
                                g.const(f"{name}_B{k}", B)], f"{name}_l{k}", hidden_size=H)
            # Y is (T, num_directions=1, N, H)
            x = g.node("Squeeze", [y, g.const(f"{name}_dir", np.array([1], np.int64))], name)
        return g.node("Transpose", [x], name, perm=[1, 0, 2])


def basenn_to_onnx(model, file_name=None, input_shape=None, model_name="basenn"):
    """The ONNX ModelProto of a ``fastnn.basenn.nn`` model (written to ``file_name`` atomically
    when given). Input ``input`` of shape (N, *input_shape): float32, or int64 token indices
    when the first layer is an embedding; output ``output``: what ``model.inference`` returns
    (the whole chain, a final Softmax included), float32. ``input_shape`` defaults to the
    model's (known once data is loaded or a checkpoint read). NotImplementedError names a
    module kind with no ONNX mapping."""
    onnx = _onnx()
    if not model.layers:
        raise ValueError("convert: the model has no layers; add them or pass checkpoint=")
    shape = input_shape if input_shape is not None else model.input_shape
    if shape is None:
        raise ValueError("convert: the input shape is unknown; load data, pass a checkpoint "
                         "written by train, or give input_shape=(...) per sample")
    shape = tuple(int(s) for s in shape)
    model._shapes(shape)                       # a readable ValueError for a shape mismatch
    g = _Graph(onnx)
    ex = _BasennExport(g)
    x, cur = "input", shape
    for i, e in enumerate(model.layers, 1):
        for part, m in (("", e.module), ("act", e.act)):
            if m is not None:
                x, cur = ex.module(m, x, cur, f"layer{i}{part}")
    h = onnx.helper
    g.nodes.append(h.make_node("Identity", [x], ["output"], name="output"))
    first = model._chain()[0][1]
    in_type = onnx.TensorProto.INT64 if first.accepts_int else onnx.TensorProto.FLOAT
    graph = h.make_graph(
        g.nodes, model_name,
        [h.make_tensor_value_info("input", in_type, ["N"] + list(shape))],
        [h.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["N"] + list(cur))],
        g.inits)
    from . import __version__
    proto = h.make_model(graph, producer_name="fastnn.basenn", producer_version=__version__,
                         opset_imports=[h.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto)
    if file_name is not None:
        from ._files import atomic_write
        with atomic_write(file_name) as f:
            f.write(proto.SerializeToString())
    return proto
