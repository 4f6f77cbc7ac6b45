"""Convolution -> Relu -> Pooling as one kernel (ops.conv2d_relu_maxpool_*, the networks'
fused blocks), and the 2x2 stride-2 max pooling it shares with the Pooling layer: the same
numbers as the layers run one by one, and the layers' state left as their own calls leave it."""

import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import ops
from fastnn.models import DeepConvNet, SimpleConvNet
from fastnn.reference import layers as ref


def unfused(x, W, b, stride, pad, ph, pw, ps, dout, need_dx):
    """The layers' ops one by one: (out, arg) and (dx, dW, db)."""
    conv = ops.conv2d_forward(x, W, b, stride, pad)
    y, mask = ops.relu_forward(conv)
    out, arg = ops.maxpool2d_forward(y, ph, pw, ps, 0)
    d = ops.maxpool2d_backward(dout, arg, y.shape, ph, pw, ps, 0)
    d = ops.relu_backward(d, mask)
    return (out, arg), ops.conv2d_backward(d, x, W, b, stride, pad, need_dx=need_dx)


def special_values(rng, shape, kind):
    """Random images, ties, signed zeros and infinities, or scattered NaN."""
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "ties":
        return rng.integers(-2, 3, shape).astype(float)
    if kind == "special":
        return rng.choice([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf], shape)
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.02] = np.nan
    return x


# (N, C, H, W, FN, FH, FW, stride, pad, pool_h, pool_w, pool_stride)
CASES = [
    (100, 1, 28, 28, 30, 5, 5, 1, 0, 2, 2, 2),  # SimpleConvNet
    (3, 4, 17, 40, 5, 3, 3, 1, 1, 2, 2, 2),     # odd height: a row left out of every window
    (2, 3, 20, 37, 4, 3, 3, 1, 1, 2, 2, 2),     # odd width, wide rows (vector runs + overlap)
    (2, 2, 9, 9, 3, 3, 3, 2, 1, 2, 2, 2),       # output narrower than one vector
    (2, 3, 12, 13, 4, 3, 3, 1, 1, 3, 3, 2),     # overlapping windows: the general scan
    (1, 2, 11, 11, 2, 2, 2, 1, 0, 3, 2, 3),     # gapped windows
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("kind", ["normal", "ties", "special", "nan"])
def test_fused_equals_the_layers_one_by_one(case, kind, dtype, threads, rng):
    N, C, H, Wd, FN, FH, FW, stride, pad, ph, pw, ps = case
    x = special_values(rng, (N, C, H, Wd), kind).astype(dtype)
    W = rng.standard_normal((FN, C, FH, FW)).astype(dtype)
    b = rng.standard_normal(FN).astype(dtype)
    b[::2] = -4.0  # filters whose windows are often all negative: the ReLU blocks them
    keep = np.empty_like(x)
    out, arg = ops.conv2d_relu_maxpool_forward(x, W, b, stride, pad, ph, pw, ps, keep=keep)
    dout = rng.standard_normal(out.shape).astype(dtype)
    (ref_out, ref_arg), grads = unfused(x, W, b, stride, pad, ph, pw, ps, dout, True)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(arg, ref_arg)
    np.testing.assert_array_equal(keep, x)
    assert out.dtype == dtype and arg.dtype == np.int32
    for need_dx in (True, False):
        got = ops.conv2d_relu_maxpool_backward(dout, arg, out, x, W, b, stride, pad, ph, pw,
                                               ps, need_dx=need_dx)
        # The same kernels on the same per-image dout: bit for bit.
        for g, r in zip(got, grads if need_dx else (None,) + grads[1:]):
            if r is None:
                assert g is None
            else:
                np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("N, C, FN", [(2, 0, 3), (0, 2, 3), (2, 2, 0)],
                         ids=["no-channels", "no-images", "no-filters"])
def test_empty_sizes(N, C, FN, rng):
    # No channels: the output is the bias, whose gradient db still gets through.
    x = rng.standard_normal((N, C, 8, 8))
    W, b = rng.standard_normal((FN, C, 3, 3)), rng.standard_normal(FN)
    out, arg = ops.conv2d_relu_maxpool_forward(x, W, b, 1, 0)
    dout = rng.standard_normal(out.shape)
    (ref_out, ref_arg), grads = unfused(x, W, b, 1, 0, 2, 2, 2, dout, True)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(arg, ref_arg)
    for g, r in zip(ops.conv2d_relu_maxpool_backward(dout, arg, out, x, W, b, 1, 0), grads):
        assert g.shape == r.shape
        np.testing.assert_array_equal(g, r)


def test_fused_backward_skips_windows_whose_arg_is_not_theirs(rng):
    x = rng.standard_normal((2, 2, 10, 20)).astype(np.float32)
    W = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    out, arg = ops.conv2d_relu_maxpool_forward(x, W, None, 1, 1)
    arg[0, 0, 0, 0], arg[1, 2, 3, 4] = 7, -1  # route nothing, as maxpool2d_backward does
    dout = rng.standard_normal(out.shape).astype(np.float32)
    _, grads = unfused(x, W, None, 1, 1, 2, 2, 2, dout, True)
    # unfused() routes with its own arg: redo its pooling backward with the edited one.
    y, mask = ops.relu_forward(ops.conv2d_forward(x, W, None, 1, 1))
    d = ops.relu_backward(ops.maxpool2d_backward(dout, arg, y.shape, 2, 2, 2, 0), mask)
    expect = ops.conv2d_backward(d, x, W, None, 1, 1)
    got = ops.conv2d_relu_maxpool_backward(dout, arg, out, x, W, None, 1, 1)
    for g, r in zip(got, expect):
        np.testing.assert_array_equal(g, r)
    assert not np.array_equal(got[1], grads[1])


@pytest.mark.parametrize("shape", [(2, 3, 24, 24), (1, 2, 31, 57), (2, 1, 6, 100), (1, 1, 2, 2)])
@pytest.mark.parametrize("kind", ["normal", "ties", "special", "nan"])
def test_2x2_pooling_matches_the_reference(shape, kind, dtype, threads, rng):
    x = special_values(rng, shape, kind).astype(dtype)
    layer, book = L.Pooling(2, 2, 2), ref.Pooling(2, 2, 2)
    out, expect = layer.forward(x), book.forward(x)
    np.testing.assert_array_equal(out, expect)
    np.testing.assert_array_equal(layer.arg_max, book.arg_max)
    dout = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_array_equal(layer.backward(dout), book.backward(dout))


def test_bad_arguments_are_refused(rng):
    x = rng.standard_normal((2, 1, 6, 6))
    W = rng.standard_normal((3, 1, 3, 3))
    with pytest.raises(ValueError, match="Pooling: window 5x5 is larger than the convolution's "
                                         "output 4x4"):
        ops.conv2d_relu_maxpool_forward(x, W, None, 1, 0, 5, 5, 1)
    with pytest.raises(ValueError, match="Pooling: stride must be >= 1"):
        ops.conv2d_relu_maxpool_forward(x, W, None, 1, 0, 2, 2, 0)
    out, arg = ops.conv2d_relu_maxpool_forward(x, W, None, 1, 0)
    with pytest.raises(ValueError, match="Pooling.backward: dout has shape"):
        ops.conv2d_relu_maxpool_backward(out[:1], arg, out, x, W)
    with pytest.raises(ValueError, match="Pooling.backward: arg has shape"):
        ops.conv2d_relu_maxpool_backward(out, arg[:1], out, x, W)
    with pytest.raises(ValueError, match="Pooling.backward: out has shape"):
        ops.conv2d_relu_maxpool_backward(out, arg, out[:1], x, W)
    with pytest.raises(ValueError, match="keep must be a NumPy array"):
        ops.conv2d_relu_maxpool_forward(x, W, None, keep=np.empty((1, 1, 6, 6)))


class PlainRelu(L.Relu):
    """A Relu that is not the layer class itself: the network runs it on its own."""


def twins(make, seed=3):
    """A network and the same one whose Relu layers are PlainRelu (no fused blocks)."""
    np.random.seed(seed)
    net, plain = make(), make()
    for k, v in net.params.items():
        plain.params[k][...] = v
    for name in plain.layers:
        if type(plain.layers[name]) is L.Relu:
            plain.layers[name] = PlainRelu()
    return net, plain


@pytest.mark.parametrize("make", [lambda: SimpleConvNet(), lambda: DeepConvNet(),
                                  lambda: SimpleConvNet(dtype=np.float32)],
                         ids=["simple", "deep", "simple-f32"])
def test_networks_fuse_their_blocks_with_the_same_gradients(make, rng):
    net, plain = twins(make)
    x = rng.random((12, 1, 28, 28))
    t = rng.integers(0, 10, 12)
    np.random.seed(5)  # DeepConvNet's dropout masks
    grads = net.gradient(x, t)
    np.random.seed(5)
    expect = plain.gradient(x, t)
    assert sum(isinstance(layer.__dict__.get("_block"), L._ConvReluPool)
               for layer in net.layers.values()) > 0
    for key in expect:
        np.testing.assert_array_equal(grads[key], expect[key])
    np.testing.assert_array_equal(net.predict(x), plain.predict(x))
    assert net.accuracy(x, t) == plain.accuracy(x, t)


def test_fused_layers_keep_their_own_state(rng):
    net, plain = twins(SimpleConvNet)
    x = rng.random((6, 1, 28, 28))
    t = rng.integers(0, 10, 6)
    net.gradient(x, t)
    plain.gradient(x, t)
    # An optimizer step and a new forward of the convolution alone: the ReLU's mask and the
    # pooling's input are still those of the network's forward.
    for p in (net.params, plain.params):
        p["W1"] -= 0.5
        p["b1"] += 0.3
    net.layers["Conv1"].forward(rng.random((6, 1, 28, 28)))
    relu, pool = net.layers["Relu1"], net.layers["Pool1"]
    np.testing.assert_array_equal(relu.mask, plain.layers["Relu1"].mask)
    np.testing.assert_array_equal(pool.x, plain.layers["Pool1"].x)
    np.testing.assert_array_equal(pool.arg_max, plain.layers["Pool1"].arg_max)
    del relu.mask
    assert relu.mask is None


def test_the_books_backward_loop_works_after_a_fused_forward(rng):
    # The book's gradient(): loss(), then backward() through every layer in turn.
    net, _ = twins(SimpleConvNet)
    x = rng.random((5, 1, 28, 28))
    t = rng.integers(0, 10, 5)
    expect = net.gradient(x, t)
    net.loss(x, t)
    dout = net.last_layer.backward(1)
    for layer in reversed(list(net.layers.values())):
        dout = layer.backward(dout)
    for key, name in (("W1", "Conv1"), ("b1", "Conv1"), ("W2", "Affine1")):
        got = getattr(net.layers[name], "dW" if key[0] == "W" else "db")
        np.testing.assert_allclose(got, expect[key], rtol=1e-12, atol=1e-15)
    assert dout.shape == x.shape


def test_an_edit_of_x_after_the_forward_changes_nothing(rng):
    # The book's layers keep their own copy of x (col); the fused block's lazily computed
    # ReLU mask comes from the convolution's copy too.
    net, plain = twins(SimpleConvNet)
    x = rng.random((4, 1, 28, 28))
    t = rng.integers(0, 10, 4)
    dx = {}
    for n in (net, plain):
        xn = x.copy()
        n.loss(xn, t)
        xn[...] = 0
        d = n.last_layer.backward(1)
        for layer in reversed(list(n.layers.values())):
            d = layer.backward(d)
        dx[n] = d
    np.testing.assert_array_equal(dx[net], dx[plain])
    np.testing.assert_array_equal(net.layers["Conv1"].dW, plain.layers["Conv1"].dW)


class ShiftInPlace:
    """A user layer that changes its input in place (x -= 1) and passes gradients through."""

    def forward(self, x):
        x -= 1.0
        return x

    def backward(self, dout):
        return dout


def test_a_later_layer_editing_its_input_does_not_change_the_gradients(rng):
    net, plain = twins(SimpleConvNet)
    for n in (net, plain):
        items = list(n.layers.items())
        n.layers.clear()
        for name, layer in items:
            n.layers[name] = layer
            if name == "Pool1":
                n.layers["Shift"] = ShiftInPlace()
    x = rng.random((6, 1, 28, 28))
    t = rng.integers(0, 10, 6)
    grads, expect = net.gradient(x, t), plain.gradient(x, t)
    for key in expect:
        np.testing.assert_array_equal(grads[key], expect[key])


def test_lazy_state_is_computed_on_the_forwards_thread_count(restore_threads, rng):
    # With fewer images than threads a convolution splits its GEMMs, whose sums may round
    # differently on another thread count: the recomputed state must not.
    net, plain = twins(lambda: DeepConvNet(dtype=np.float32))
    x = rng.random((1, 1, 28, 28)).astype(np.float32)
    fastnn.set_num_threads(1)
    net.predict(x)
    plain.predict(x)
    fastnn.set_num_threads(2)
    for name in ("Pool1", "Pool2", "Pool3"):
        np.testing.assert_array_equal(net.layers[name].x, plain.layers[name].x)
    assert fastnn.get_num_threads() == 2


def test_layers_pickle_and_copy_with_their_state(rng):
    import copy
    import pickle

    old = L.Relu.__new__(L.Relu)  # a Relu pickled with mask a plain attribute
    old.__dict__.update({"mask": np.array([True, False])})
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(old)).mask, [True, False])
    net, plain = twins(SimpleConvNet)
    x = rng.random((3, 1, 28, 28))
    net.predict(x)
    plain.predict(x)
    for other in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(other.layers["Relu1"].mask, plain.layers["Relu1"].mask)
        np.testing.assert_array_equal(other.layers["Pool1"].x, plain.layers["Pool1"].x)


def test_a_window_larger_than_the_output_gets_the_pooling_layers_error(rng):
    conv = L.Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2))
    x = rng.standard_normal((1, 1, 4, 4))
    assert L._ConvReluPool.forward(conv, L.Relu(), L.Pooling(3, 3, 1), x) is None
    with pytest.raises(ValueError, match="Pooling: window 3x3 is larger than the padded input"):
        L.Pooling(3, 3, 1).forward(L.Relu().forward(conv.forward(x)))
