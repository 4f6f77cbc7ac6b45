"""The CUDA backend. Availability and dispatch checks run everywhere; the parity checks run
the CPU-tested entry points again on CuPy arrays and are skipped (with fastnn.cuda.reason())
unless fastnn was built with CUDA, CuPy imports and a device is present."""

import ast
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import cuda, layers, nn, ops, time_layers
from fastnn.ops import cpu as cpu_backend, cuda as cuda_backend
from fastnn.reference import layers as ref

from conftest import assert_parity


class FakeDeviceArray:
    """Quacks like a CuPy array as far as dispatch can tell."""
    __cuda_array_interface__ = {"shape": (2, 3), "typestr": "<f4", "data": (0, False),
                                "version": 3}
    shape, ndim, size, dtype = (2, 3), 2, 6, np.dtype(np.float32)


def test_reason_matches_availability():
    assert isinstance(cuda.is_available(), bool)
    why = cuda.reason()
    assert isinstance(why, str)
    assert cuda.is_available() == (why == "")
    if not fastnn.build_info()["cuda"]:
        assert "built without CUDA" in why and not cuda.is_available()


def _backend_functions(module):
    return {n: f for n, f in vars(module).items()
            if inspect.isfunction(f) and not n.startswith("_") and f.__module__ == module.__name__}


def test_every_cuda_backend_function_has_a_cpu_twin_with_the_same_signature():
    cpu_fns, cuda_fns = _backend_functions(cpu_backend), _backend_functions(cuda_backend)
    assert len(cuda_fns) > 30
    for name, fn in cuda_fns.items():
        if name in ("gradient", "update_list"):  # device-only steps of check_param/optim
            continue
        host = inspect.signature(cpu_fns[name])
        device = inspect.signature(fn)
        assert list(host.parameters) == list(device.parameters), name
        assert [p.default for p in host.parameters.values()] == \
            [p.default for p in device.parameters.values()], name


@pytest.mark.skipif(cuda.is_available(), reason="checks the behaviour without a usable GPU")
@pytest.mark.parametrize("call", [
    lambda a: ops.relu_forward(a),
    lambda a: ops.conv2d_forward(a, np.zeros((1, 3, 1, 1)), None),
    lambda a: ops.affine_forward(a, np.zeros((3, 2)), np.zeros(2)),
    lambda a: ops.softmax_cross_entropy_forward(a, np.zeros(2, np.int64)),
], ids=["relu", "conv", "affine", "softmax_ce"])
def test_device_array_without_usable_cuda_is_a_clear_type_error(call):
    with pytest.raises(TypeError, match="GPU array"):
        call(FakeDeviceArray())


@pytest.mark.skipif(cuda.is_available(), reason="checks the behaviour without a usable GPU")
def test_cuda_entry_points_name_the_layer_and_the_reason():
    why = re.escape(cuda.reason()[:20])
    with pytest.raises(TypeError, match="^Convolution: got a GPU array .*" + why):
        ops.conv2d_forward(FakeDeviceArray(), np.zeros((1, 3, 1, 1)), None)
    with pytest.raises(TypeError, match="^Affine: got a GPU array"):
        ops.affine_forward(FakeDeviceArray(), np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(TypeError, match="^Adam: got a GPU array"):
        ops.check_param("Adam", "W1", FakeDeviceArray(), FakeDeviceArray())


def test_array_module_follows_the_arrays():
    assert ops.array_module("Affine", np.zeros(2), None, 3.0) is np
    if cuda.is_available():
        import cupy
        assert ops.array_module("Affine", np.zeros(2), cupy.zeros(2)) is cupy
    else:
        with pytest.raises(TypeError, match="^Affine: got a GPU array"):
            ops.array_module("Affine", FakeDeviceArray())


def _cuda_calls():
    """(name, number of arguments) of every _C.cuda_* call in fastnn/ops/cuda.py; *k.args() is
    the three (f64, device, stream)."""
    tree = ast.parse(Path(cuda_backend.__file__).read_text())
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id == "_C" and \
                node.func.attr.startswith("cuda_"):
            n = sum(3 if isinstance(a, ast.Starred) else 1 for a in node.args)
            calls.append((node.func.attr, n + len(node.keywords)))
    return calls


@pytest.mark.skipif(not fastnn.build_info()["cuda"], reason="needs the CUDA build of fastnn")
def test_every_cuda_binding_call_matches_its_arity():
    """Without a GPU the calls into the CUDA binding never run: check each one names a
    function of _C and passes as many arguments as its pybind11 signature takes."""
    from fastnn import _C
    calls = _cuda_calls()
    assert len(calls) > 20
    for name, n in calls:
        fn = getattr(_C, name)
        signature = fn.__doc__.splitlines()[0]
        params = signature[signature.index("(") + 1:signature.rindex(") ->")]
        arity = 0 if not params else params.count(": ")
        assert arity == n, f"{name}: called with {n} arguments, takes {arity} ({signature})"


@pytest.mark.skipif(fastnn.build_info()["cuda"], reason="checks the CPU-only build")
def test_cpu_build_has_no_cuda_bindings():
    from fastnn import _C
    assert not [n for n in dir(_C) if n.startswith("cuda_")]
    assert _cuda_calls()  # the CUDA module is still importable and parseable


def test_product_module_has_no_test_only_bindings():
    """The CPU loops over the CUDA bodies live in the test-only module _C_testing
    (tests/native, -DFASTNN_TESTING=ON), never in the _C that ships."""
    from fastnn import _C
    assert not [n for n in dir(_C) if n.startswith("_body_")]
    assert not [f for f in fastnn.build_info()["kernel_families"] if "bodies" in f]


# ---------------------------------------------------------------- on a GPU

gpu = pytest.mark.skipif(not cuda.is_available(),
                         reason=f"no usable CUDA here: {cuda.reason() or 'available'}")


@pytest.fixture
def cp():
    import cupy
    return cupy


def _close(actual, expected, dtype, reduce_len=1):
    import cupy
    assert isinstance(actual, cupy.ndarray), type(actual)
    assert_parity(cupy.asnumpy(actual), expected, dtype, reduce_len=reduce_len)


GEOMETRIES = [(2, 3, 7, 7, 3, 3, 1, 0), (1, 1, 5, 8, 2, 3, 2, 1), (3, 2, 9, 6, 3, 2, 2, 2),
              (0, 2, 4, 4, 2, 2, 2, 0)]


@gpu
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activations(cp, rng, dtype, name):
    x = rng.standard_normal((5, 7)).astype(dtype)
    x[0, 0] = np.nan
    dout = rng.standard_normal((5, 7)).astype(dtype)
    if name == "relu":
        y, mask = ops.relu_forward(cp.asarray(x))
        y_cpu, mask_cpu = ops.relu_forward(x)
        np.testing.assert_array_equal(cp.asnumpy(mask), mask_cpu)
        _close(ops.relu_backward(cp.asarray(dout), mask), ops.relu_backward(dout.copy(),
                                                                              mask_cpu), dtype)
    else:
        fwd, bwd = getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward")
        y, y_cpu = fwd(cp.asarray(x)), fwd(x)
        _close(bwd(cp.asarray(dout), y), bwd(dout, y_cpu), dtype)
    _close(y, y_cpu, dtype)


@gpu
@pytest.mark.parametrize("geo", GEOMETRIES)
def test_convolution_and_im2col(cp, rng, dtype, geo):
    N, C, H, W, FH, FW, stride, pad = geo
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((4, C, FH, FW)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    col = ops.im2col(cp.asarray(x), FH, FW, stride, pad)
    _close(col, ops.im2col(x, FH, FW, stride, pad), dtype)
    _close(ops.col2im(col, x.shape, FH, FW, stride, pad),
           ops.col2im(cp.asnumpy(col), x.shape, FH, FW, stride, pad), dtype, FH * FW)
    out = ops.conv2d_forward(cp.asarray(x), cp.asarray(Wt), cp.asarray(b), stride, pad)
    out_cpu = ops.conv2d_forward(x, Wt, b, stride, pad)
    _close(out, out_cpu, dtype, C * FH * FW)
    dout = rng.standard_normal(out_cpu.shape).astype(dtype)
    grads = ops.conv2d_backward(cp.asarray(dout), cp.asarray(x), cp.asarray(Wt), None, stride,
                                 pad)
    for g, g_cpu in zip(grads, ops.conv2d_backward(dout, x, Wt, None, stride, pad)):
        _close(g, g_cpu, dtype, max(1, dout.size))


@gpu
def test_parameter_gradients_without_dx(cp, rng, dtype):
    """need_dx=False (a network's first layer) skips dx and leaves dW, db unchanged."""
    x = cp.asarray(rng.standard_normal((3, 2, 7, 6)).astype(dtype))
    W = cp.asarray(rng.standard_normal((4, 2, 3, 3)).astype(dtype))
    dout = cp.asarray(rng.standard_normal((3, 4, 3, 2)).astype(dtype))
    full = ops.conv2d_backward(dout, x, W, None, 2, 0)
    dx, dW, db = ops.conv2d_backward(dout, x, W, None, 2, 0, need_dx=False)
    assert dx is None
    _close(dW, cp.asnumpy(full[1]), dtype)
    _close(db, cp.asnumpy(full[2]), dtype)
    x2, W2 = x.reshape(3, -1), cp.asarray(rng.standard_normal((84, 5)).astype(dtype))
    dout2 = cp.asarray(rng.standard_normal((3, 5)).astype(dtype))
    full = ops.affine_backward(dout2, x2, W2)
    dx, dW, db = ops.affine_backward(dout2, x2, W2, need_dx=False)
    assert dx is None
    _close(dW, cp.asnumpy(full[1]), dtype)
    _close(db, cp.asnumpy(full[2]), dtype)


def test_depthwise_dispatch_rule():
    """groups == C > 1 takes the direct depthwise kernel; other group counts loop over groups."""
    x = np.zeros((2, 4, 5, 5))
    assert cuda_backend._depthwise(x, 4)
    assert not cuda_backend._depthwise(x, 2) and not cuda_backend._depthwise(x, 1)
    assert not cuda_backend._depthwise(np.zeros((2, 1, 5, 5)), 1)


# (N, C, H, W, FH, FW, stride, pad, F): F filters per channel; stride 3 skips pixels.
DEPTHWISE = [(2, 3, 8, 7, 3, 3, 2, 1, 2), (3, 4, 6, 9, 2, 3, 1, 2, 1),
             (2, 2, 9, 8, 1, 2, 3, 0, 1), (0, 3, 5, 5, 3, 3, 1, 1, 2)]


@gpu
@pytest.mark.parametrize("geo", DEPTHWISE)
def test_depthwise_convolution(cp, rng, dtype, geo, monkeypatch):
    N, C, H, W, FH, FW, stride, pad, F = geo
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((C * F, 1, FH, FW)).astype(dtype)
    b = rng.standard_normal(C * F).astype(dtype)

    def not_called(*args):
        raise AssertionError("a depthwise convolution went through the GEMM kernels")

    monkeypatch.setattr(cuda_backend._C, "cuda_conv2d_forward", not_called)
    monkeypatch.setattr(cuda_backend._C, "cuda_conv2d_backward", not_called)
    out = ops.conv2d_forward(cp.asarray(x), cp.asarray(Wt), cp.asarray(b), stride, pad,
                              groups=C)
    out_cpu = ops.conv2d_forward(x, Wt, b, stride, pad, groups=C)
    _close(out, out_cpu, dtype, FH * FW)
    dout = rng.standard_normal(out_cpu.shape).astype(dtype)
    args = (stride, pad)
    grads = ops.conv2d_backward(cp.asarray(dout), cp.asarray(x), cp.asarray(Wt), None, *args,
                                 groups=C)
    grads_cpu = ops.conv2d_backward(dout, x, Wt, None, *args, groups=C)
    for g, g_cpu in zip(grads, grads_cpu):
        _close(g, g_cpu, dtype, max(1, dout.size // (C * F)))
    dx, dW, db = ops.conv2d_backward(cp.asarray(dout), cp.asarray(x), cp.asarray(Wt), None,
                                      *args, need_dx=False, groups=C)
    assert dx is None
    _close(dW, cp.asnumpy(grads[1]), dtype)
    _close(db, cp.asnumpy(grads[2]), dtype)


@gpu
def test_grouped_convolution_per_group(cp, rng, dtype):
    """1 < groups < C keeps one ungrouped launch per group."""
    x = rng.standard_normal((2, 4, 7, 6)).astype(dtype)
    Wt = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    out = ops.conv2d_forward(cp.asarray(x), cp.asarray(Wt), cp.asarray(b), 2, 1, groups=2)
    out_cpu = ops.conv2d_forward(x, Wt, b, 2, 1, groups=2)
    _close(out, out_cpu, dtype, 12)
    dout = rng.standard_normal(out_cpu.shape).astype(dtype)
    grads = ops.conv2d_backward(cp.asarray(dout), cp.asarray(x), cp.asarray(Wt), None, 2, 1,
                                 groups=2)
    for g, g_cpu in zip(grads, ops.conv2d_backward(dout, x, Wt, None, 2, 1, groups=2)):
        _close(g, g_cpu, dtype, dout.size)


@gpu
@pytest.mark.parametrize("geo", GEOMETRIES)
def test_pooling(cp, rng, dtype, geo):
    N, C, H, W, FH, FW, stride, pad = geo
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    out, arg = ops.maxpool2d_forward(cp.asarray(x), FH, FW, stride, pad)
    out_cpu, arg_cpu = ops.maxpool2d_forward(x, FH, FW, stride, pad)
    _close(out, out_cpu, dtype)
    np.testing.assert_array_equal(cp.asnumpy(arg), arg_cpu)
    dout = rng.standard_normal(out_cpu.shape).astype(dtype)
    _close(ops.maxpool2d_backward(cp.asarray(dout), arg, x.shape, FH, FW, stride, pad),
           ops.maxpool2d_backward(dout, arg_cpu, x.shape, FH, FW, stride, pad), dtype, FH * FW)
    _close(ops.avgpool2d_forward(cp.asarray(x), FH, FW, stride, pad),
           ops.avgpool2d_forward(x, FH, FW, stride, pad), dtype, FH * FW)
    _close(ops.avgpool2d_backward(cp.asarray(dout), x.shape, FH, FW, stride, pad),
           ops.avgpool2d_backward(dout, x.shape, FH, FW, stride, pad), dtype, FH * FW)


@gpu
@pytest.mark.parametrize("N", [0, 1, 37])
def test_affine_softmax_batchnorm(cp, rng, dtype, N):
    x = rng.standard_normal((N, 2, 3)).astype(dtype)
    W, b = rng.standard_normal((6, 5)).astype(dtype), rng.standard_normal(5).astype(dtype)
    out = ops.affine_forward(cp.asarray(x), cp.asarray(W), cp.asarray(b))
    _close(out, ops.affine_forward(x, W, b), dtype, 6)
    dout = rng.standard_normal((N, 5)).astype(dtype)
    for g, g_cpu in zip(ops.affine_backward(cp.asarray(dout), cp.asarray(x), cp.asarray(W)),
                        ops.affine_backward(dout, x, W)):
        _close(g, g_cpu, dtype, max(N, 6))
    t = rng.integers(0, 5, N)
    y, loss = ops.softmax_cross_entropy_forward(cp.asarray(dout), cp.asarray(t))
    y_cpu, loss_cpu = ops.softmax_cross_entropy_forward(dout, t)
    _close(y, y_cpu, dtype, 5)
    if N:
        assert_parity(cp.asnumpy(loss), loss_cpu, dtype, reduce_len=N)
        _close(ops.softmax_cross_entropy_backward(y, cp.asarray(t)),
               ops.softmax_cross_entropy_backward(y_cpu, t), dtype)
    gamma, beta = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    res = ops.batchnorm_forward_train(cp.asarray(dout), cp.asarray(gamma), cp.asarray(beta))
    res_cpu = ops.batchnorm_forward_train(dout, gamma, beta)
    for a, e in zip(res, res_cpu):
        assert a.dtype == e.dtype
        _close(a, e, e.dtype, max(N, 1))
    if N > 1:
        grads = ops.batchnorm_backward(cp.asarray(dout), cp.asarray(gamma), *res[1:4])
        for a, e in zip(grads, ops.batchnorm_backward(dout, gamma, *res_cpu[1:4])):
            _close(a, e, dtype, N * N)


@gpu
def test_optimizer_updates_in_place(cp, rng, dtype):
    p = rng.standard_normal((3, 4)).astype(dtype)
    m, v, g = np.zeros_like(p), np.zeros_like(p), rng.standard_normal((3, 4)).astype(dtype)
    pd, md, vd = cp.asarray(p), cp.asarray(m), cp.asarray(v)
    ops.adam_update(pd, md, vd, cp.asarray(g), 0.01, 0.9, 0.999, 1e-8)
    ops.adam_update(p, m, v, g, 0.01, 0.9, 0.999, 1e-8)
    for a, e in ((pd, p), (md, m), (vd, v)):
        _close(a, e, dtype)


@gpu
def test_layers_on_device(cp, rng):
    """Book layers whose code goes through ops only: results stay CuPy arrays."""
    x = rng.standard_normal((2, 3, 8, 8))
    W, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    chain = [(layers.Convolution(cp.asarray(W), cp.asarray(b), 1, 1), ref.Convolution(W, b, 1, 1)),
             (layers.Relu(), ref.Relu()), (layers.Pooling(2, 2, 2), ref.Pooling(2, 2, 2))]
    xd, xr = cp.asarray(x), x
    for fast, slow in chain:
        xd, xr = fast.forward(xd), slow.forward(xr)
        _close(xd, xr, np.float64, 27)
    dd = dr = rng.standard_normal(xr.shape)
    dd = cp.asarray(dd)
    for fast, slow in reversed(chain):
        dd, dr = fast.backward(dd), slow.backward(dr)
        _close(dd, dr, np.float64, 64)


# ---------------------------------------------------------------- recurrent (rnn, lstm, gru)

@pytest.mark.skipif(cuda.is_available(), reason="checks the behaviour without a usable GPU")
def test_recurrent_layers_without_usable_cuda_raise_a_clear_error():
    x = FakeDeviceArray()
    why = re.escape(cuda.reason())
    with pytest.raises(TypeError, match="^RNN: got a GPU array"):
        ops.rnn_forward(x, None, np.zeros((3, 2)), np.zeros((2, 2)), None)
    with pytest.raises(TypeError, match="^GRU: got a GPU array"):
        ops.gru_backward(x, None, np.zeros((3, 6)), np.zeros((2, 6)), x, x, x, None, None)
    # Moving a module is refused as moving a network is (Network.to): RuntimeError, reason.
    with pytest.raises(RuntimeError, match="^LSTM.cuda: CUDA cannot be used here: " + why):
        nn.LSTM(3, 4).cuda()
    with pytest.raises(RuntimeError, match="^GRU.cuda: CUDA cannot be used here: " + why):
        nn.GRU(3, 4).to("cuda:0")
    m = nn.RNN(3, 4)
    params = m.parameters()
    assert m.to("cpu") is m and m.cpu() is m
    assert all(a is b for a, b in zip(m.parameters(), params))  # already there: no copies


def _sequence(rng, dtype, T, N, D, H, g, torch_layout, P=None):
    """x (T, N, D) and Wx, Wh, b in a layout's shapes (gate dimension g*H, Wh's input P)."""
    P = H if P is None else P
    G = g * H
    x = rng.standard_normal((T, N, D)).astype(dtype)
    Wx = (rng.standard_normal((G, D) if torch_layout else (D, G)) * 0.5).astype(dtype)
    Wh = (rng.standard_normal((G, P) if torch_layout else (P, G)) * 0.5).astype(dtype)
    return x, Wx, Wh, rng.standard_normal(G).astype(dtype)


def _dev(cp, *arrays):
    return [None if a is None else cp.asarray(a) for a in arrays]


def _close_all(got, want, dtype, reduce_len):
    """Every result a CuPy array close to the CPU's (None where the CPU gives None)."""
    assert len(got) == len(want)
    for a, e in zip(got, want):
        if e is None:
            assert a is None
        else:
            _close(a, e, dtype, max(1, reduce_len))


RECURRENT_SHAPES = [(5, 3, 4, 6), (1, 1, 1, 1), (3, 2, 0, 3), (0, 2, 3, 4), (3, 0, 2, 4),
                    (6, 33, 20, 40)]  # (T, N, D, H): D = 0 no input, T = 0, N = 0, many blocks
RECURRENT_IDS = ["x".join(map(str, s)) for s in RECURRENT_SHAPES]
LAYOUTS = pytest.mark.parametrize("torch_layout", [False, True], ids=["book", "torch"])
STATES = pytest.mark.parametrize("states", [False, True], ids=["zero-state", "h0"])


@gpu
@LAYOUTS
@STATES
@pytest.mark.parametrize("shape", RECURRENT_SHAPES, ids=RECURRENT_IDS)
def test_rnn_sequences(cp, rng, dtype, torch_layout, states, shape):
    T, N, D, H = shape
    for relu in (False, True):
        x, Wx, Wh, b = _sequence(rng, dtype, T, N, D, H, 1, torch_layout)
        h0 = rng.standard_normal((N, H)).astype(dtype) if states else None
        b = b if states else None  # the bias is optional too
        hs_cpu = ops.rnn_forward(x, h0, Wx, Wh, b, relu, torch_layout)
        hs = ops.rnn_forward(*_dev(cp, x, h0, Wx, Wh, b), relu, torch_layout)
        _close(hs, hs_cpu, dtype, T * (D + H))
        dhs = rng.standard_normal(hs_cpu.shape).astype(dtype)
        dhn = rng.standard_normal((N, H)).astype(dtype) if states else None
        args = (x, h0, Wx, Wh, hs_cpu, dhs, dhn)
        _close_all(ops.rnn_backward(*_dev(cp, *args), relu, torch_layout),
                   ops.rnn_backward(*args, relu, torch_layout), dtype, T * N * H)


@gpu
@LAYOUTS
@STATES
@pytest.mark.parametrize("shape", RECURRENT_SHAPES, ids=RECURRENT_IDS)
def test_lstm_sequences(cp, rng, dtype, torch_layout, states, shape):
    T, N, D, H = shape
    x, Wx, Wh, b = _sequence(rng, dtype, T, N, D, H, 4, torch_layout)
    h0, c0 = ((rng.standard_normal((N, H)).astype(dtype),
               rng.standard_normal((N, H)).astype(dtype)) if states else (None, None))
    fwd_cpu = ops.lstm_forward(x, h0, c0, Wx, Wh, b, None, torch_layout)
    _close_all(ops.lstm_forward(*_dev(cp, x, h0, c0, Wx, Wh, b), None, torch_layout), fwd_cpu,
               dtype, T * (D + H))
    hs, cs, gates, _ = fwd_cpu
    dhs = rng.standard_normal(hs.shape).astype(dtype)
    dhn, dcn = ((rng.standard_normal((N, H)).astype(dtype),
                 rng.standard_normal((N, H)).astype(dtype)) if states else (None, None))
    args = (x, h0, c0, Wx, Wh, None, hs, cs, gates, None, dhs, dhn, dcn)
    _close_all(ops.lstm_backward(*_dev(cp, *args), torch_layout),
               ops.lstm_backward(*args, torch_layout), dtype, T * N * 4 * H)


@gpu
@STATES
@pytest.mark.parametrize("P", [2, 0])
def test_lstm_projection_sequences(cp, rng, dtype, states, P):
    T, N, D, H = 4, 3, 5, 6
    x, Wx, Wh, b = _sequence(rng, dtype, T, N, D, H, 4, True, P)
    Whr = (rng.standard_normal((P, H)) * 0.5).astype(dtype)
    h0, c0 = ((rng.standard_normal((N, P)).astype(dtype),
               rng.standard_normal((N, H)).astype(dtype)) if states else (None, None))
    fwd_cpu = ops.lstm_forward(x, h0, c0, Wx, Wh, b, Whr, True)
    _close_all(ops.lstm_forward(*_dev(cp, x, h0, c0, Wx, Wh, b, Whr), True), fwd_cpu, dtype,
               T * (D + H))
    hs, cs, gates, hfull = fwd_cpu
    dhs = rng.standard_normal(hs.shape).astype(dtype)
    dhn = rng.standard_normal((N, P)).astype(dtype) if states else None
    args = (x, h0, c0, Wx, Wh, Whr, hs, cs, gates, hfull, dhs, dhn, None)
    _close_all(ops.lstm_backward(*_dev(cp, *args), True), ops.lstm_backward(*args, True),
               dtype, T * N * 4 * H)


@gpu
@LAYOUTS
@STATES
@pytest.mark.parametrize("shape", RECURRENT_SHAPES, ids=RECURRENT_IDS)
def test_gru_sequences(cp, rng, dtype, torch_layout, states, shape):
    T, N, D, H = shape
    x, Wx, Wh, bx = _sequence(rng, dtype, T, N, D, H, 3, torch_layout)
    h0 = rng.standard_normal((N, H)).astype(dtype) if states else None
    bh = rng.standard_normal(3 * H).astype(dtype) if torch_layout and states else None
    fwd_cpu = ops.gru_forward(x, h0, Wx, Wh, bx, bh, torch_layout)
    _close_all(ops.gru_forward(*_dev(cp, x, h0, Wx, Wh, bx, bh), torch_layout), fwd_cpu, dtype,
               T * (D + H))
    hs, gates, aux = fwd_cpu
    dhs = rng.standard_normal(hs.shape).astype(dtype)
    dhn = rng.standard_normal((N, H)).astype(dtype) if states else None
    args = (x, h0, Wx, Wh, hs, gates, aux, dhs, dhn)
    _close_all(ops.gru_backward(*_dev(cp, *args), torch_layout),
               ops.gru_backward(*args, torch_layout), dtype, T * N * 3 * H)


@gpu
@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_recurrent_mixed_inputs_and_final_state_gradients_only(cp, rng, family):
    """float32 x with float64 weights computes in float64; NumPy states join CuPy arrays on
    the device; a gradient on the final state alone (dhs None) reaches every step."""
    T, N, D, H = 4, 3, 2, 5
    g = {"rnn": 1, "lstm": 4, "gru": 3}[family]
    x, Wx, Wh, b = _sequence(rng, np.float64, T, N, D, H, g, True)
    x = x.astype(np.float32)
    h0, dhn = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    xd, Wxd, Whd, bd = _dev(cp, x, Wx, Wh, b)
    if family == "rnn":
        fwd_cpu = (ops.rnn_forward(x, h0, Wx, Wh, b, torch_layout=True),)
        fwd = (ops.rnn_forward(xd, h0, Wxd, Whd, bd, torch_layout=True),)
        args = (x, h0, Wx, Wh, fwd_cpu[0], None, dhn)
        bwd_cpu = ops.rnn_backward(*args, torch_layout=True)
        bwd = ops.rnn_backward(*_dev(cp, *args), torch_layout=True)
    elif family == "lstm":
        c0, dcn = rng.standard_normal((N, H)), rng.standard_normal((N, H))
        fwd_cpu = ops.lstm_forward(x, h0, c0, Wx, Wh, b, torch_layout=True)
        fwd = ops.lstm_forward(xd, h0, c0, Wxd, Whd, bd, torch_layout=True)
        args = (x, h0, c0, Wx, Wh, None, *fwd_cpu[:3], None, None, dhn, dcn)
        bwd_cpu = ops.lstm_backward(*args, torch_layout=True)
        bwd = ops.lstm_backward(*_dev(cp, *args), torch_layout=True)
    else:
        fwd_cpu = ops.gru_forward(x, h0, Wx, Wh, b, b, torch_layout=True)
        fwd = ops.gru_forward(xd, h0, Wxd, Whd, bd, b, torch_layout=True)
        args = (x, h0, Wx, Wh, *fwd_cpu, None, dhn)
        bwd_cpu = ops.gru_backward(*args, torch_layout=True)
        bwd = ops.gru_backward(*_dev(cp, *args), torch_layout=True)
    _close_all(fwd, fwd_cpu, np.float64, T * (D + H))
    _close_all(bwd, bwd_cpu, np.float64, T * N * g * H)
    assert float(abs(bwd_cpu[0][0]).sum()) > 0  # dhn reached the first step


def _z(*shape):
    return np.zeros(shape)


@gpu
@pytest.mark.parametrize("call", [
    lambda d: ops.rnn_forward(d(_z(2, 3, 4)), None, d(_z(4, 5)), d(_z(5, 5)), d(_z(6))),
    lambda d: ops.rnn_backward(d(_z(2, 3, 4)), None, d(_z(4, 5)), d(_z(5, 5)), d(_z(2, 3, 6)),
                                None, None),
    lambda d: ops.rnn_forward(d(_z(2, 3)), None, d(_z(4, 5)), d(_z(5, 5)), None),
    lambda d: ops.lstm_forward(d(_z(2, 3, 4)), None, None, d(_z(4, 20)), d(_z(5, 20)), None,
                                d(_z(2, 5))),
    lambda d: ops.lstm_forward(d(_z(2, 3, 4)), None, None, d(_z(4, 18)), d(_z(5, 18)), None),
    lambda d: ops.lstm_forward(d(_z(2, 3, 4)), d(_z(3, 4)), None, d(_z(4, 20)), d(_z(5, 20)),
                                None),
    lambda d: ops.lstm_backward(d(_z(2, 3, 4)), None, None, d(_z(4, 20)), d(_z(5, 20)), None,
                                 d(_z(2, 3, 5)), d(_z(2, 3, 5)), d(_z(2, 3, 20)),
                                 d(_z(2, 3, 5)), None, None, None),
    lambda d: ops.lstm_backward(d(_z(2, 3, 4)), None, None, d(_z(4, 20)), d(_z(5, 20)), None,
                                 d(_z(2, 3, 5)), d(_z(2, 3, 5)), d(_z(2, 3, 20)), None, None,
                                 None, d(_z(3, 4))),
    lambda d: ops.gru_forward(d(_z(2, 3, 4)), None, d(_z(4, 15)), d(_z(5, 15)), d(_z(15)),
                               d(_z(15))),
    lambda d: ops.gru_backward(d(_z(2, 3, 4)), None, d(_z(4, 15)), d(_z(5, 15)),
                                d(_z(2, 3, 5)), d(_z(2, 3, 15)), d(_z(2, 3, 5)), None,
                                d(_z(3, 4))),
], ids=["rnn-b", "rnn-hs", "rnn-2d", "lstm-book-projection", "lstm-gates", "lstm-h0",
        "lstm-hfull", "lstm-dcn", "gru-book-bh", "gru-dhn"])
def test_recurrent_bad_shapes_raise_the_cpu_message(cp, call):
    with pytest.raises(ValueError) as on_cpu:
        call(lambda a: a)
    with pytest.raises(ValueError) as on_gpu:
        call(cp.asarray)
    assert str(on_gpu.value) == str(on_cpu.value)


@gpu
def test_time_embedding_and_dropout_on_device(cp, rng):
    """TimeEmbedding (NumPy's gather and add.at, dispatched to CuPy) and TimeDropout (mask from
    cupy.random) keep everything on the device."""
    W = rng.standard_normal((7, 4)).astype(np.float32)
    idx = rng.integers(0, 7, (3, 5))
    host, dev = time_layers.TimeEmbedding(W.copy()), time_layers.TimeEmbedding(cp.asarray(W))
    out = dev.forward(cp.asarray(idx))
    _close(out, host.forward(idx), np.float32)
    dout = rng.standard_normal((3, 5, 4)).astype(np.float32)
    host.backward(dout)
    dev.backward(cp.asarray(dout))
    _close(dev.grads[0], host.grads[0], np.float32, 15)
    drop = time_layers.TimeDropout(0.25)
    xs = cp.asarray(rng.standard_normal((3, 5, 4)).astype(np.float32))
    ys = drop.forward(xs)
    assert isinstance(ys, cp.ndarray) and isinstance(drop.mask, cp.ndarray)
    mask = cp.asnumpy(drop.mask)
    assert set(np.unique(mask)) <= {0.0, np.float32(1 / 0.75)}
    _close(ys, cp.asnumpy(xs) * mask, np.float32)
    _close(drop.backward(cp.asarray(dout)), dout * mask, np.float32)
    drop.train_flg = False
    assert drop.forward(xs) is xs


@gpu
@pytest.mark.parametrize("cls,gates", [("TimeRNN", 1), ("TimeLSTM", 4), ("TimeGRU", 3)])
def test_time_layers_on_device(cp, rng, dtype, cls, gates):
    """Stateful book layers with CuPy parameters: two rounds (the second from the carried
    state); outputs, grads and states are CuPy arrays close to the NumPy layer's."""
    N, T, D, H = 3, 5, 4, 6
    params = [(rng.standard_normal(s) * 0.5).astype(dtype)
              for s in ((D, gates * H), (H, gates * H), (gates * H,))]
    host = getattr(time_layers, cls)(*[p.copy() for p in params], stateful=True)
    dev = getattr(time_layers, cls)(*_dev(cp, *params), stateful=True)
    for _ in range(2):
        xs = rng.standard_normal((N, T, D)).astype(dtype)
        dhs = rng.standard_normal((N, T, H)).astype(dtype)
        _close(dev.forward(cp.asarray(xs)), host.forward(xs), dtype, T * (D + H))
        _close(dev.h, host.h, dtype, T * (D + H))
        if cls == "TimeLSTM":
            _close(dev.c, host.c, dtype, T * (D + H))
        _close(dev.backward(cp.asarray(dhs)), host.backward(dhs), dtype, T * gates * H)
        _close(dev.dh, host.dh, dtype, T * gates * H)
        for g_dev, g_host in zip(dev.grads, host.grads):
            _close(g_dev, g_host, dtype, N * T * gates * H)


@gpu
@pytest.mark.parametrize("cls,gates,states", [("RNN", 1, 1), ("LSTM", 4, 2), ("GRU", 3, 1)])
def test_step_layers_on_device(cp, rng, dtype, cls, gates, states):
    N, D, H = 4, 3, 5
    params = [(rng.standard_normal(s) * 0.5).astype(dtype)
              for s in ((D, gates * H), (H, gates * H), (gates * H,))]
    host = getattr(time_layers, cls)(*[p.copy() for p in params])
    dev = getattr(time_layers, cls)(*_dev(cp, *params))
    x = rng.standard_normal((N, D)).astype(dtype)
    st = [rng.standard_normal((N, H)).astype(dtype) for _ in range(states)]
    d = [rng.standard_normal((N, H)).astype(dtype) for _ in range(states)]
    out_h, out_d = host.forward(x, *st), dev.forward(cp.asarray(x), *_dev(cp, *st))
    _close_all(out_d if states > 1 else (out_d,), out_h if states > 1 else (out_h,), dtype,
               D + H)
    _close_all(dev.backward(*_dev(cp, *d)), host.backward(*d), dtype, gates * H)
    _close_all(dev.grads, host.grads, dtype, N * gates * H)


@gpu
def test_time_bilstm_affine_softmax_on_device(cp, rng):
    N, T, D, H, V = 2, 4, 3, 5, 6
    lstm = [rng.standard_normal(s) * 0.5 for s in ((D, 4 * H), (H, 4 * H), (4 * H,)) * 2]
    W, b = rng.standard_normal((2 * H, V)), rng.standard_normal(V)
    host = [time_layers.TimeBiLSTM(*[p.copy() for p in lstm]),
            time_layers.TimeAffine(W.copy(), b.copy()), time_layers.TimeSoftmaxWithLoss()]
    dev = [time_layers.TimeBiLSTM(*_dev(cp, *lstm)), time_layers.TimeAffine(*_dev(cp, W, b)),
           time_layers.TimeSoftmaxWithLoss()]
    xs, ts = rng.standard_normal((N, T, D)), rng.integers(-1, V, (N, T))  # -1: ignored
    ts[0, 0] = 1
    out_h, out_d = xs, cp.asarray(xs)
    for layer_h, layer_d in zip(host[:2], dev[:2]):
        out_h, out_d = layer_h.forward(out_h), layer_d.forward(out_d)
        _close(out_d, out_h, np.float64, T * (D + H))
    loss_h, loss_d = host[2].forward(out_h, ts), dev[2].forward(out_d, cp.asarray(ts))
    _close(loss_d, loss_h, np.float64, N * T * V)
    d_h, d_d = host[2].backward(), dev[2].backward()
    for layer_h, layer_d in zip(reversed(host[:2]), reversed(dev[:2])):
        d_h, d_d = layer_h.backward(d_h), layer_d.backward(d_d)
        _close(d_d, d_h, np.float64, N * T * 4 * H)
        _close_all(layer_d.grads, layer_h.grads, np.float64, N * T * 4 * H)


@gpu
@pytest.mark.parametrize("kind,kw", [("LSTM", {}), ("LSTM", {"proj_size": 3}), ("GRU", {}),
                                     ("RNN", {"nonlinearity": "relu"})],
                         ids=["lstm", "lstm-proj", "gru", "rnn-relu"])
def test_nn_modules_on_device(cp, rng, kind, kw):
    """Two bidirectional layers with dropout between them, moved with load_state_dict of CuPy
    arrays: outputs, states, input gradient and grads are CuPy arrays close to the NumPy
    module's; cpu() brings the parameters back unchanged."""
    kw = dict(kw, num_layers=2, bidirectional=True, dropout=0.25, dtype=np.float64)
    host, dev = getattr(fastnn.nn, kind)(4, 5, **kw), getattr(fastnn.nn, kind)(4, 5, **kw)
    dev.load_state_dict({k: cp.asarray(v) for k, v in host.state_dict().items()})
    assert all(isinstance(p, cp.ndarray) for p in dev.parameters())
    host._rng, dev._rng = np.random.default_rng(7), np.random.default_rng(7)  # same masks
    T, N = 6, 3
    H_out = kw.get("proj_size") or 5
    x = rng.standard_normal((T, N, 4))
    h0 = rng.standard_normal((4, N, H_out))
    hx = (h0, rng.standard_normal((4, N, 5))) if kind == "LSTM" else h0
    hx_d = tuple(_dev(cp, *hx)) if kind == "LSTM" else cp.asarray(hx)
    out_h, state_h = host(x, hx)
    out_d, state_d = dev(cp.asarray(x), hx_d)
    _close(out_d, out_h, np.float64, T * 10)
    _close_all(state_d if kind == "LSTM" else (state_d,),
               state_h if kind == "LSTM" else (state_h,), np.float64, T * 10)
    d_out = rng.standard_normal(out_h.shape)
    d_hn = rng.standard_normal((4, N, H_out))
    d_cn = rng.standard_normal((4, N, 5)) if kind == "LSTM" else None
    dx_h = host.backward(d_out, d_hn, d_cn)
    dx_d = dev.backward(*_dev(cp, d_out, d_hn, d_cn))
    _close(dx_d, dx_h, np.float64, T * N * 40)
    assert list(dev.grads) == list(host.grads)
    _close_all(list(dev.grads.values()), list(host.grads.values()), np.float64, T * N * 40)
    _close(dev.d_h0, host.d_h0, np.float64, T * N * 40)
    if kind == "LSTM":
        _close(dev.d_c0, host.d_c0, np.float64, T * N * 40)
    dev.cpu()
    for k, p in dev.state_dict().items():
        assert isinstance(p, np.ndarray)
        np.testing.assert_array_equal(p, host.state_dict()[k])
    host.to("cuda")
    assert all(isinstance(p, cp.ndarray) for p in host.parameters())
