"""Initial weights and inputs of the benchmark workloads, from NumPy alone.

Every contender of a workload starts from these arrays, each in its own process. This module
imports nothing of fastnn (nor of fastnn.reference, which lives in fastnn's package), so that
PyTorch's process gets the same weights as fastnn's without loading fastnn: the book networks'
weights are drawn exactly as the book's constructors draw them after ``np.random.seed(seed)``
(the same calls in the same order), copied into each contender's parameters in place.
"""

import numpy as np

# The book's SimpleConvNet at 1x28x28: conv 30x5x5, pool 2x2, affine 4320->100, affine 100->10.
SIMPLE_SHAPES = {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,),
                 "W3": (100, 10), "b3": (10,)}
# d2l's MLP 784-256-10.
MLP_SHAPES = {"W1": (784, 256), "b1": (256,), "W2": (256, 10), "b2": (10,)}
# The book's DeepConvNet at 1x28x28: six 3x3 convolutions (filters, input channels), then
# affine 1024->50 and 50->10; the fourth convolution pads 2.
DEEP_CONVS = [(16, 1), (16, 16), (32, 16), (32, 32), (64, 32), (64, 64)]
DEEP_PADS = [1, 1, 1, 2, 1, 1]
# LeNet-5 of the BaseNN lesson, as fastnn.basenn names its parameters ("<layer index>.W").
LENET_SHAPES = {"0.W": (6, 1, 5, 5), "0.b": (6,), "2.W": (16, 6, 5, 5), "2.b": (16,),
                "4.W": (400, 120), "4.b": (120,), "5.W": (120, 84), "5.b": (84,),
                "6.W": (84, 10), "6.b": (10,)}


def simple_convnet(dtype=np.float32, seed=0):
    """SimpleConvNet(dtype=dtype)'s parameters after np.random.seed(seed): N(0, 0.01^2)."""
    rs = np.random.RandomState(seed)
    out = {}
    for k, shape in SIMPLE_SHAPES.items():
        if k.startswith("W"):
            out[k] = (0.01 * rs.randn(*shape)).astype(dtype)
        else:
            out[k] = np.zeros(shape, dtype)
    return out


def mlp(dtype=np.float32, seed=0):
    """d2l_mlp(dtype=dtype)'s parameters after np.random.seed(seed): N(0, 0.01^2)."""
    rs = np.random.RandomState(seed)
    out = {}
    for k, shape in MLP_SHAPES.items():
        out[k] = (0.01 * rs.randn(*shape)).astype(dtype) if k.startswith("W") \
            else np.zeros(shape, dtype)
    return out


def deep_convnet(dtype=np.float32, seed=0):
    """DeepConvNet(dtype=dtype)'s parameters after np.random.seed(seed): He initialisation."""
    rs = np.random.RandomState(seed)
    out = {}
    for i, (fn, c) in enumerate(DEEP_CONVS, start=1):
        out[f"W{i}"] = (np.sqrt(2.0 / (c * 9)) * rs.randn(fn, c, 3, 3)).astype(dtype)
        out[f"b{i}"] = np.zeros(fn, dtype)
    out["W7"] = (np.sqrt(2.0 / 1024) * rs.randn(1024, 50)).astype(dtype)
    out["b7"] = np.zeros(50, dtype)
    out["W8"] = (np.sqrt(2.0 / 50) * rs.randn(50, 10)).astype(dtype)
    out["b8"] = np.zeros(10, dtype)
    return out


def lenet(dtype=np.float32, seed=0):
    """LeNet-5's parameters, uniform in +-1/sqrt(fan_in) as torch.nn and fastnn.basenn draw
    them (Linear weights stored (in, out), the book's layout)."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, shape in LENET_SHAPES.items():
        wshape = LENET_SHAPES[k.split(".")[0] + ".W"]
        fan_in = int(np.prod(wshape[1:])) if len(wshape) == 4 else wshape[0]
        bound = 1.0 / np.sqrt(fan_in)
        out[k] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return out


GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def recurrent(kind, D, H, dtype=np.float32, seed=0):
    """A one-layer RNN/LSTM/GRU's parameters under torch.nn's names and layout
    (weight_ih_l0 (G*H, D), weight_hh_l0 (G*H, H), bias_ih_l0, bias_hh_l0), uniform in
    +-1/sqrt(H) as torch.nn draws them. fastnn.nn loads them as they are; the book's Time
    layers take Wx = weight_ih.T, Wh = weight_hh.T, b = bias_ih + bias_hh."""
    G = GATES[kind] * H
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(H)
    shapes = {"weight_ih_l0": (G, D), "weight_hh_l0": (G, H), "bias_ih_l0": (G,),
              "bias_hh_l0": (G,)}
    return {name: rng.uniform(-k, k, size=s).astype(dtype) for name, s in shapes.items()}


def batch(N, shape, dtype=np.float32, seed=0, classes=10):
    """(x, t): N inputs uniform in [0, 1) and N labels below `classes`."""
    rng = np.random.default_rng(seed)
    return rng.random((N,) + tuple(shape), dtype=np.float64).astype(dtype), \
        rng.integers(0, classes, N)


def copy_into(params, values):
    """Overwrite each array of `params` in place with `values` (layers keep references to their
    parameters, so they must not be replaced)."""
    for k, v in values.items():
        if params[k].shape != v.shape:
            raise ValueError(f"parameter {k}: shape {params[k].shape}, weights {v.shape}")
        params[k][...] = v


def by_name(name, shape, dtype=np.float32):
    """A weight array for the parameter or buffer ``name`` (torch's state_dict names), the
    same in every process whatever the order of the calls: MobileNetV2's torchvision
    initialisation (convolutions normal with std sqrt(2 / fan_out), batch norm 1 and 0, the
    classifier normal with std 0.01), drawn from a generator seeded by the name."""
    import zlib
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name.endswith("running_var") or (name.endswith(".weight") and len(shape) == 1):
        return np.ones(shape, dtype)
    if name.endswith(("running_mean", ".bias")) and len(shape) == 1:
        return np.zeros(shape, dtype)
    if len(shape) == 4:
        fan_out = shape[0] * shape[2] * shape[3]
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_out)).astype(dtype)
    return (0.01 * rng.standard_normal(shape)).astype(dtype)
