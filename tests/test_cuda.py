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
from fastnn import _ops, cuda, layers
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


def test_every_dispatched_op_has_a_cuda_twin_with_the_same_signature():
    for name in _ops._CUDA_OPS:
        host = inspect.signature(getattr(_ops, name))
        device = inspect.signature(getattr(cuda, name))
        assert list(host.parameters) == list(device.parameters), name
        assert [p.default for p in host.parameters.values()] == \
            [p.default for p in device.parameters.values()], name


@pytest.mark.skipif(cuda.is_available(), reason="checks the behaviour without a usable GPU")
@pytest.mark.parametrize("call", [
    lambda a: _ops.relu_forward(a),
    lambda a: _ops.conv2d_forward(a, np.zeros((1, 3, 1, 1)), None),
    lambda a: _ops.affine_forward(a, np.zeros((3, 2)), np.zeros(2)),
    lambda a: _ops.softmax_cross_entropy_forward(a, np.zeros(2, np.int64)),
], ids=["relu", "conv", "affine", "softmax_ce"])
def test_device_array_without_usable_cuda_is_a_clear_type_error(call):
    with pytest.raises(TypeError, match="GPU array"):
        call(FakeDeviceArray())


@pytest.mark.skipif(cuda.is_available(), reason="checks the behaviour without a usable GPU")
def test_cuda_entry_points_name_the_layer_and_the_reason():
    why = re.escape(cuda.reason()[:20])
    with pytest.raises(TypeError, match="^Convolution: got a GPU array .*" + why):
        cuda.conv2d_forward(FakeDeviceArray(), np.zeros((1, 3, 1, 1)), None)
    with pytest.raises(TypeError, match="^Affine: got a GPU array"):
        cuda.affine_forward(FakeDeviceArray(), np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(TypeError, match="^Adam: got a GPU array"):
        cuda.check_param("Adam", "W1", FakeDeviceArray(), FakeDeviceArray())


def test_array_module_follows_the_arrays():
    assert _ops.array_module("Affine", np.zeros(2), None, 3.0) is np
    if cuda.is_available():
        import cupy
        assert _ops.array_module("Affine", np.zeros(2), cupy.zeros(2)) is cupy
    else:
        with pytest.raises(TypeError, match="^Affine: got a GPU array"):
            _ops.array_module("Affine", FakeDeviceArray())


def _cuda_calls():
    """(name, number of arguments) of every _C.cuda_* call in fastnn/cuda.py; *k.args() is
    the three (f64, device, stream)."""
    tree = ast.parse(Path(cuda.__file__).read_text())
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
        y, mask = _ops.relu_forward(cp.asarray(x))
        y_cpu, mask_cpu = _ops.relu_forward(x)
        np.testing.assert_array_equal(cp.asnumpy(mask), mask_cpu)
        _close(_ops.relu_backward(cp.asarray(dout), mask), _ops.relu_backward(dout.copy(),
                                                                              mask_cpu), dtype)
    else:
        fwd, bwd = getattr(_ops, f"{name}_forward"), getattr(_ops, f"{name}_backward")
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
    col = _ops.im2col(cp.asarray(x), FH, FW, stride, pad)
    _close(col, _ops.im2col(x, FH, FW, stride, pad), dtype)
    _close(_ops.col2im(col, x.shape, FH, FW, stride, pad),
           _ops.col2im(cp.asnumpy(col), x.shape, FH, FW, stride, pad), dtype, FH * FW)
    out = _ops.conv2d_forward(cp.asarray(x), cp.asarray(Wt), cp.asarray(b), stride, pad)
    out_cpu = _ops.conv2d_forward(x, Wt, b, stride, pad)
    _close(out, out_cpu, dtype, C * FH * FW)
    dout = rng.standard_normal(out_cpu.shape).astype(dtype)
    grads = _ops.conv2d_backward(cp.asarray(dout), cp.asarray(x), cp.asarray(Wt), None, stride,
                                 pad)
    for g, g_cpu in zip(grads, _ops.conv2d_backward(dout, x, Wt, None, stride, pad)):
        _close(g, g_cpu, dtype, max(1, dout.size))


@gpu
@pytest.mark.parametrize("geo", GEOMETRIES)
def test_pooling(cp, rng, dtype, geo):
    N, C, H, W, FH, FW, stride, pad = geo
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    out, arg = _ops.maxpool2d_forward(cp.asarray(x), FH, FW, stride, pad)
    out_cpu, arg_cpu = _ops.maxpool2d_forward(x, FH, FW, stride, pad)
    _close(out, out_cpu, dtype)
    np.testing.assert_array_equal(cp.asnumpy(arg), arg_cpu)
    dout = rng.standard_normal(out_cpu.shape).astype(dtype)
    _close(_ops.maxpool2d_backward(cp.asarray(dout), arg, x.shape, FH, FW, stride, pad),
           _ops.maxpool2d_backward(dout, arg_cpu, x.shape, FH, FW, stride, pad), dtype, FH * FW)
    _close(_ops.avgpool2d_forward(cp.asarray(x), FH, FW, stride, pad),
           _ops.avgpool2d_forward(x, FH, FW, stride, pad), dtype, FH * FW)
    _close(_ops.avgpool2d_backward(cp.asarray(dout), x.shape, FH, FW, stride, pad),
           _ops.avgpool2d_backward(dout, x.shape, FH, FW, stride, pad), dtype, FH * FW)


@gpu
@pytest.mark.parametrize("N", [0, 1, 37])
def test_affine_softmax_batchnorm(cp, rng, dtype, N):
    x = rng.standard_normal((N, 2, 3)).astype(dtype)
    W, b = rng.standard_normal((6, 5)).astype(dtype), rng.standard_normal(5).astype(dtype)
    out = _ops.affine_forward(cp.asarray(x), cp.asarray(W), cp.asarray(b))
    _close(out, _ops.affine_forward(x, W, b), dtype, 6)
    dout = rng.standard_normal((N, 5)).astype(dtype)
    for g, g_cpu in zip(_ops.affine_backward(cp.asarray(dout), cp.asarray(x), cp.asarray(W)),
                        _ops.affine_backward(dout, x, W)):
        _close(g, g_cpu, dtype, max(N, 6))
    t = rng.integers(0, 5, N)
    y, loss = _ops.softmax_cross_entropy_forward(cp.asarray(dout), cp.asarray(t))
    y_cpu, loss_cpu = _ops.softmax_cross_entropy_forward(dout, t)
    _close(y, y_cpu, dtype, 5)
    if N:
        assert_parity(cp.asnumpy(loss), loss_cpu, dtype, reduce_len=N)
        _close(_ops.softmax_cross_entropy_backward(y, cp.asarray(t)),
               _ops.softmax_cross_entropy_backward(y_cpu, t), dtype)
    gamma, beta = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    res = _ops.batchnorm_forward_train(cp.asarray(dout), cp.asarray(gamma), cp.asarray(beta))
    res_cpu = _ops.batchnorm_forward_train(dout, gamma, beta)
    for a, e in zip(res, res_cpu):
        assert a.dtype == e.dtype
        _close(a, e, e.dtype, max(N, 1))
    if N > 1:
        grads = _ops.batchnorm_backward(cp.asarray(dout), cp.asarray(gamma), *res[1:4])
        for a, e in zip(grads, _ops.batchnorm_backward(dout, gamma, *res_cpu[1:4])):
            _close(a, e, dtype, N * N)


@gpu
def test_optimizer_updates_in_place(cp, rng, dtype):
    p = rng.standard_normal((3, 4)).astype(dtype)
    m, v, g = np.zeros_like(p), np.zeros_like(p), rng.standard_normal((3, 4)).astype(dtype)
    pd, md, vd = cp.asarray(p), cp.asarray(m), cp.asarray(v)
    _ops.adam_update(pd, md, vd, cp.asarray(g), 0.01, 0.9, 0.999, 1e-8)
    _ops.adam_update(p, m, v, g, 0.01, 0.9, 0.999, 1e-8)
    for a, e in ((pd, p), (md, m), (vd, v)):
        _close(a, e, dtype)


@gpu
def test_layers_on_device(cp, rng):
    """Book layers whose code goes through _ops only: results stay CuPy arrays."""
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
