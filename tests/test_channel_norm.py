"""Per-channel normalization kernels (csrc/cpu/batchnorm.cpp: channel_batchnorm_*,
channel_affine, group_norm_*) against fastnn/reference/builder_layers.py, and the builder's
BatchNorm/GroupNorm modules that run on them."""

import numpy as np
import pytest

import fastnn
from fastnn import ops
from fastnn.basenn.diffusion import GroupNorm as BuilderGroupNorm
from fastnn.basenn.modules import BatchNorm as BuilderBatchNorm
from fastnn.reference import builder_layers as R
from conftest import assert_parity, gradcheck

SHAPES = [(4, 6), (3, 5, 7), (4, 6, 5, 5), (2, 3, 1, 1), (33, 8, 17, 9)]


def _params(rng, C, dtype):
    return (rng.uniform(0.5, 1.5, C).astype(dtype), rng.standard_normal(C).astype(dtype))


@pytest.mark.parametrize("shape", SHAPES)
def test_channel_batchnorm_matches_reference(rng, dtype, shape):
    x = (3 * rng.standard_normal(shape) + 1).astype(dtype)
    C = shape[1]
    gamma, beta = _params(rng, C, dtype)
    ref = R.ChannelBatchNorm(gamma, beta, np.zeros(C, dtype), np.ones(C, dtype), eps=1e-5)
    expected = ref.forward(x)
    out, xn, mean, var, inv_std = ops.channel_batchnorm_forward(x, gamma, beta, 1e-5)
    m = x.size // C
    assert_parity(out, expected, dtype, reduce_len=m)
    assert_parity(xn, ref.xn, dtype, reduce_len=m)
    axes = (0,) + tuple(range(2, x.ndim))
    assert_parity(mean, x.mean(axis=axes), dtype, reduce_len=m)
    assert_parity(var, x.var(axis=axes), dtype, reduce_len=m)
    dout = rng.standard_normal(shape).astype(dtype)
    dx, dgamma, dbeta = ops.channel_batchnorm_backward(dout, xn, gamma, inv_std)
    assert_parity(dx, ref.backward(dout), dtype, reduce_len=m)
    assert_parity(dgamma, ref.dgamma, dtype, reduce_len=m)
    assert_parity(dbeta, ref.dbeta, dtype, reduce_len=m)


@pytest.mark.parametrize("shape", SHAPES)
def test_channel_affine_is_inference_batchnorm(rng, dtype, shape):
    x = rng.standard_normal(shape).astype(dtype)
    C = shape[1]
    gamma, beta = _params(rng, C, dtype)
    rm, rv = rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype)
    ref = R.ChannelBatchNorm(gamma, beta, rm, rv, eps=1e-6)
    scale = gamma / np.sqrt(rv + np.dtype(dtype).type(1e-6))
    assert_parity(ops.channel_affine(x, scale, beta - scale * rm), ref.forward(x, train=False),
                  dtype)


@pytest.mark.parametrize("shape,groups", [((4, 6, 5, 5), 3), ((2, 8, 7, 3), 1), ((3, 4, 6), 4),
                                          ((5, 32, 9, 9), 8), ((2, 6), 2)])
def test_group_norm_matches_reference(rng, dtype, shape, groups):
    x = (2 * rng.standard_normal(shape) - 0.5).astype(dtype)
    C = shape[1]
    gamma, beta = _params(rng, C, dtype)
    ref = R.GroupNorm(groups, gamma, beta)
    expected = ref.forward(x)
    out, xn, inv_std = ops.group_norm_forward(x, gamma, beta, groups)
    m = x[0].size // groups
    assert_parity(out, expected, dtype, reduce_len=m)
    assert inv_std.shape == (shape[0], groups)
    dout = rng.standard_normal(shape).astype(dtype)
    dx, dgamma, dbeta = ops.group_norm_backward(dout, xn, gamma, inv_std, groups)
    assert_parity(dx, ref.backward(dout), dtype, reduce_len=m)
    assert_parity(dgamma, ref.dgamma, dtype, reduce_len=x.size // C)
    assert_parity(dbeta, ref.dbeta, dtype, reduce_len=x.size // C)


def _loss_grad(rng, shape):
    w = rng.standard_normal(shape)
    return w, lambda out: float(np.sum(out * w))


def test_channel_batchnorm_gradients_match_finite_differences(rng):
    x = rng.standard_normal((3, 4, 3, 2))
    gamma, beta = _params(rng, 4, np.float64)
    w, loss = _loss_grad(rng, x.shape)
    out, xn, _, _, inv_std = ops.channel_batchnorm_forward(x, gamma, beta, 1e-5)
    dx, dgamma, dbeta = ops.channel_batchnorm_backward(w, xn, gamma, inv_std)
    f = lambda: loss(ops.channel_batchnorm_forward(x, gamma, beta, 1e-5)[0])  # noqa: E731
    gradcheck(f, x, dx)
    gradcheck(f, gamma, dgamma)
    gradcheck(f, beta, dbeta)


def test_group_norm_gradients_match_finite_differences(rng):
    x = rng.standard_normal((2, 6, 3, 3))
    gamma, beta = _params(rng, 6, np.float64)
    w, loss = _loss_grad(rng, x.shape)
    out, xn, inv_std = ops.group_norm_forward(x, gamma, beta, 3)
    dx, dgamma, dbeta = ops.group_norm_backward(w, xn, gamma, inv_std, 3)
    f = lambda: loss(ops.group_norm_forward(x, gamma, beta, 3)[0])  # noqa: E731
    gradcheck(f, x, dx)
    gradcheck(f, gamma, dgamma)
    gradcheck(f, beta, dbeta)


def test_results_do_not_depend_on_the_thread_count(rng):
    x = rng.standard_normal((16, 64, 20, 20)).astype(np.float32)
    gamma, beta = _params(rng, 64, np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    n = fastnn.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 3):
            fastnn.set_num_threads(threads)
            out, xn, _, _, inv = ops.channel_batchnorm_forward(x, gamma, beta, 1e-5)
            g_out, g_xn, g_inv = ops.group_norm_forward(x, gamma, beta, 8)
            runs.append((out, *ops.channel_batchnorm_backward(dout, xn, gamma, inv), g_out,
                         *ops.group_norm_backward(dout, g_xn, gamma, g_inv, 8)))
    finally:
        fastnn.set_num_threads(n)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_empty_batch(dtype):
    gamma, beta = np.ones(3, dtype), np.zeros(3, dtype)
    x = np.zeros((0, 3, 4, 4), dtype)
    out, xn, mean, var, inv_std = ops.channel_batchnorm_forward(x, gamma, beta, 1e-5)
    assert out.shape == x.shape and np.all(np.isnan(mean))
    dx, dgamma, dbeta = ops.channel_batchnorm_backward(x, xn, gamma, inv_std)
    assert dx.shape == x.shape and np.all(dgamma == 0) and np.all(dbeta == 0)
    out, xn, inv_std = ops.group_norm_forward(x, gamma, beta, 3)
    assert out.shape == x.shape and inv_std.shape == (0, 3)
    dx, dgamma, dbeta = ops.group_norm_backward(x, xn, gamma, inv_std, 3)
    assert dx.shape == x.shape and np.all(dgamma == 0)


def test_nan_stays_in_its_channel_or_group(dtype):
    x = np.ones((2, 4, 3, 3), dtype)
    x[0, 1, 0, 0] = np.nan
    gamma, beta = np.ones(4, dtype), np.zeros(4, dtype)
    out = ops.channel_batchnorm_forward(x, gamma, beta, 1e-5)[0]
    assert np.all(np.isnan(out[:, 1])) and np.all(np.isfinite(np.delete(out, 1, axis=1)))
    out = ops.group_norm_forward(x, gamma, beta, 2)[0]
    assert np.all(np.isnan(out[0, :2])) and np.all(np.isfinite(out[0, 2:]))
    assert np.all(np.isfinite(out[1]))


def test_bad_inputs_raise_clear_errors():
    g, b = np.ones(4), np.zeros(4)
    with pytest.raises(ValueError, match=r"GroupNorm: 4 channels do not split into 3 groups"):
        ops.group_norm_forward(np.ones((2, 4, 3, 3)), g, b, 3)
    with pytest.raises(ValueError, match=r"gamma.shape=\(3,\) but x has 4 channels"):
        ops.channel_batchnorm_forward(np.ones((2, 4, 3, 3)), np.ones(3), b, 1e-5)
    with pytest.raises(ValueError, match=r"x must be \(N, C, \.\.\.\)"):
        ops.channel_batchnorm_forward(np.ones(4), g, b, 1e-5)
    with pytest.raises(TypeError, match="GroupNorm: groups must be an integer"):
        ops.group_norm_forward(np.ones((2, 4, 3, 3)), g, b, 2.5)
    out, xn, _, _, inv = ops.channel_batchnorm_forward(np.ones((2, 4, 3, 3)), g, b, 1e-5)
    with pytest.raises(ValueError, match=r"BatchNorm.backward: dout has shape \(2, 4, 3\)"):
        ops.channel_batchnorm_backward(np.ones((2, 4, 3)), xn, g, inv)
    with pytest.raises(TypeError, match="BatchNorm"):
        ops.channel_batchnorm_forward(np.ones((2, 4), complex), g, b, 1e-5)


def test_builder_modules_match_reference_over_steps(rng):
    """The builder's BatchNorm keeps the book's running-average rule across training steps,
    and its inference uses them; its GroupNorm matches the reference's output and gradients."""
    C = 5
    bn = BuilderBatchNorm(C, dims=2, dtype=np.float64)
    ref = R.ChannelBatchNorm(bn.params["gamma"], bn.params["beta"], np.zeros(C), np.ones(C),
                             momentum=0.9, eps=ops.BATCHNORM_EPS)
    for _ in range(3):
        x = rng.standard_normal((4, C, 3, 3)) * 2 + 1
        assert_parity(bn.forward(x, True), ref.forward(x), np.float64)
        dout = rng.standard_normal(x.shape)
        assert_parity(bn.backward(dout), ref.backward(dout), np.float64)
        assert_parity(bn.grads["gamma"], ref.dgamma, np.float64)
    assert_parity(bn.buffers["running_mean"], ref.running_mean, np.float64)
    assert_parity(bn.buffers["running_var"], ref.running_var, np.float64)
    x = rng.standard_normal((2, C, 3, 3))
    assert_parity(bn.forward(x, False), ref.forward(x, train=False), np.float64)
    before = bn.buffers["running_mean"].copy()
    bn.forward(np.zeros((0, C, 3, 3)), True)
    np.testing.assert_array_equal(bn.buffers["running_mean"], before)

    gn = BuilderGroupNorm(2, 6, np.float64)
    gn.params["gamma"][...] = rng.uniform(0.5, 1.5, 6)
    ref = R.GroupNorm(2, gn.params["gamma"], gn.params["beta"])
    x = rng.standard_normal((3, 6, 4, 4))
    assert_parity(gn.forward(x, True), ref.forward(x), np.float64)
    dout = rng.standard_normal(x.shape)
    assert_parity(gn.backward(dout), ref.backward(dout), np.float64)
    assert_parity(gn.grads["gamma"], ref.dgamma, np.float64)


def test_statistics_of_data_far_from_zero(rng):
    """The variance of float32 data whose mean lies 1e4 standard deviations from zero (taken
    about the mean, not as E[x^2] - E[x]^2, which would lose it all). The mean itself is a
    float32 sum of blocks of 256: accurate to float32's rounding over such a block."""
    x = (1e4 + rng.standard_normal((8, 3, 16, 16))).astype(np.float32)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    x64 = x.astype(np.float64)
    _, _, mean, var, _ = ops.channel_batchnorm_forward(x, gamma, beta, 1e-5)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2, 3)), rtol=1e-5)
    out, _, inv = ops.group_norm_forward(x, gamma, beta, 3)
    ref = R.GroupNorm(3, gamma.astype(np.float64), beta.astype(np.float64)).forward(x64)
    np.testing.assert_allclose(out, ref, atol=2e-3)


def test_variance_with_an_outlier_first(rng):
    """The variance is taken about the mean (two passes): an outlier as the set's first element
    costs no accuracy in float32 (a one-pass sum shifted by it lost 1e-3 relative)."""
    x = (1e-3 * rng.standard_normal((4, 2, 256, 256))).astype(np.float32)
    x[0, :, 0, 0] = 30.0
    gamma, beta = np.ones(2, np.float32), np.zeros(2, np.float32)
    x64 = x.astype(np.float64)
    _, _, _, var, _ = ops.channel_batchnorm_forward(x, gamma, beta, 1e-5)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2, 3)), rtol=1e-5)
    _, _, inv = ops.group_norm_forward(x, gamma, beta, 1)
    np.testing.assert_allclose(inv, 1 / np.sqrt(x64.reshape(4, 1, -1).var(axis=2) + 1e-5),
                               rtol=1e-5)


def test_builder_batchnorm_edges(rng):
    """(N, C) input takes the book's column kernel (same numbers as the reference); a batch with
    no elements leaves the running averages alone; backward before a training forward says so."""
    bn = BuilderBatchNorm(6, dims=1, dtype=np.float64)
    ref = R.ChannelBatchNorm(bn.params["gamma"], bn.params["beta"], np.zeros(6), np.ones(6),
                             momentum=0.9, eps=ops.BATCHNORM_EPS)
    x = rng.standard_normal((10, 6))
    assert_parity(bn.forward(x, True), ref.forward(x), np.float64)
    dout = rng.standard_normal(x.shape)
    assert_parity(bn.backward(dout), ref.backward(dout), np.float64)
    assert_parity(bn.buffers["running_var"], ref.running_var, np.float64)
    before = {k: v.copy() for k, v in bn.buffers.items()}
    bn1 = BuilderBatchNorm(3, dims=1)
    bn1.buffers = {k: v.copy() for k, v in bn1.buffers.items()}
    saved = {k: v.copy() for k, v in bn1.buffers.items()}
    bn1.forward(np.zeros((4, 3, 0), np.float32), True)
    for k in saved:
        np.testing.assert_array_equal(bn1.buffers[k], saved[k])
    assert before["running_mean"].shape == (6,)
    with pytest.raises(RuntimeError, match=r"BatchNorm.backward: call forward\(x, train=True\)"):
        BuilderBatchNorm(3, dims=2).backward(np.ones((1, 3, 2, 2), np.float32))
