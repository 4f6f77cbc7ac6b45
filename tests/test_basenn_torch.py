"""Builder layers against torch.nn.functional (float64): PyTorch is the behaviour BaseNN users
expect from each layer, forward and input gradient."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch parity tests need torch (CI installs it)")
F = torch.nn.functional

from fastnn.basenn import modules as M  # noqa: E402

RTOL = 1e-9


# Small workloads: one kernel thread (see conftest.one_kernel_thread).
pytestmark = pytest.mark.usefixtures("one_kernel_thread")


def _torch_pair(fn, x, dout):
    xt = torch.from_numpy(x.copy()).requires_grad_()
    out = fn(xt)
    out.backward(torch.from_numpy(dout))
    return out.detach().numpy(), xt.grad.numpy()


def _check(module, fn, x, rng, train=False, rtol=RTOL):
    out = module.forward(x, train)
    dout = rng.standard_normal(out.shape)
    t_out, t_dx = _torch_pair(fn, x, dout)
    np.testing.assert_allclose(out, t_out, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(module.backward(dout), t_dx, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("k,stride,pad,length", [(3, 1, 0, 9), (3, 2, 1, 10), (1, 1, 0, 4),
                                                 (4, 3, 2, 11)])
def test_conv1d(rng, k, stride, pad, length):
    m = M.Conv1d((2, 3), k, rng, np.float64, stride=stride, padding=pad)
    x = rng.standard_normal((2, 2, length))
    xt = torch.from_numpy(x.copy()).requires_grad_()
    Wt = torch.from_numpy(m.params["W"][:, :, 0, :].copy()).requires_grad_()
    bt = torch.from_numpy(m.params["b"].copy()).requires_grad_()
    out_t = F.conv1d(xt, Wt, bt, stride=stride, padding=pad)
    out = m.forward(x, True)
    dout = rng.standard_normal(out.shape)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(m.backward(dout), xt.grad.numpy(), rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(m.grads["W"][:, :, 0, :], Wt.grad.numpy(), rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(m.grads["b"], bt.grad.numpy(), rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("k,stride,pad,hw", [(2, None, 0, (8, 8)), (2, None, 0, (7, 9)),
                                             (3, 2, 1, (8, 8)), (3, 1, 1, (5, 6)),
                                             ((2, 3), 1, 0, (5, 7))])
@pytest.mark.parametrize("mode", ["maxpool", "avgpool"])
def test_pooling(rng, mode, k, stride, pad, hw):
    m = M.Pool2d(mode, k, stride, pad)
    x = rng.standard_normal((2, 3) + hw)
    s = stride if stride is not None else k
    if mode == "maxpool":
        fn = lambda t: F.max_pool2d(t, k, s, pad)          # noqa: E731
    else:
        fn = lambda t: F.avg_pool2d(t, k, s, pad)          # noqa: E731
    _check(m, fn, x, rng)


@pytest.mark.parametrize("shape,dims", [((6, 4), 1), ((5, 3, 7), 1), ((4, 3, 5, 6), 2)])
def test_batchnorm_train_and_eval(rng, shape, dims):
    m = M.BatchNorm(shape[1], dims, np.float64)
    m.params["gamma"][...] = rng.uniform(0.5, 1.5, shape[1])
    m.params["beta"][...] = rng.standard_normal(shape[1])
    gamma, beta = torch.from_numpy(m.params["gamma"]), torch.from_numpy(m.params["beta"])
    x = rng.standard_normal(shape) * 2 + 1
    _check(m, lambda t: F.batch_norm(t, None, None, gamma, beta, training=True, eps=1e-6), x,
           rng, train=True, rtol=1e-4)
    # running statistics follow PyTorch's momentum 0.1 update of the batch mean
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(m.buffers["running_mean"], 0.1 * x.mean(axis=axes), rtol=1e-6)
    y = m.forward(x, False)
    rm, rv = m.buffers["running_mean"], m.buffers["running_var"]
    expect = F.batch_norm(torch.from_numpy(x), torch.from_numpy(rm), torch.from_numpy(rv), gamma,
                          beta, training=False, eps=1e-6).numpy()
    np.testing.assert_allclose(y, expect, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride,c_out", [(1, 4), (2, 4), (1, 6)])
def test_basic_block_matches_torch_composition(rng, stride, c_out):
    block = M.basic_block(4, c_out, stride, rng, np.float64)
    x = rng.standard_normal((3, 4, 6, 6))
    p = {k: torch.from_numpy(v) for k, v in block.params.items()}

    def bn(t, pre):
        return F.batch_norm(t, None, None, p[pre + "gamma"], p[pre + "beta"], training=True,
                            eps=1e-6)

    def fn(t):
        h = F.relu(bn(F.conv2d(t, p["main.0.W"], stride=stride, padding=1), "main.1."))
        h = bn(F.conv2d(h, p["main.3.W"], padding=1), "main.4.")
        s = bn(F.conv2d(t, p["short.0.W"], stride=stride), "short.1.") if block.shortcut else t
        return F.relu(h + s)

    assert (block.shortcut is None) == (stride == 1 and c_out == 4)
    _check(block, fn, x, rng, train=True, rtol=1e-4)


def test_bottleneck_expands_four_times(rng):
    stage = M.res_stage(M.bottleneck_block, (8, 2), 2, 2, rng, np.float64)
    assert stage.out_shape((8, 6, 6)) == (8, 3, 3)
    x = rng.standard_normal((2, 8, 6, 6))
    assert stage.forward(x, True).shape == (2, 8, 3, 3)


def test_softmax_leakyrelu_mean_embedding(rng):
    x = rng.standard_normal((4, 5))
    _check(M.Softmax(), lambda t: F.softmax(t, dim=-1), x, rng)
    _check(M.LeakyReLU(), lambda t: F.leaky_relu(t, 0.01), x, rng)
    x4 = rng.standard_normal((2, 3, 4, 5))
    _check(M.Mean(), lambda t: t.mean(dim=(2, 3)), x4, rng)
    x3 = rng.standard_normal((2, 6, 5))
    _check(M.Mean(), lambda t: t.mean(dim=1), x3, rng)
    emb = M.Embedding(9, 3, rng, np.float64)
    idx = rng.integers(0, 9, size=(2, 4))
    np.testing.assert_array_equal(
        emb.forward(idx, True),
        F.embedding(torch.from_numpy(idx), torch.from_numpy(emb.params["W"])).numpy())
    with pytest.raises(IndexError, match=r"token index out of range \[0, 9\)"):
        emb.forward(np.array([[9]]), True)
