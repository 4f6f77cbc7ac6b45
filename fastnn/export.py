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
"""

import numpy as np

OPSET = 17
IR_VERSION = 8  # what onnxruntime releases since 1.10 read
BATCHNORM_EPS = 10e-7  # the book's constant (fastnn._ops.BATCHNORM_EPS)


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
