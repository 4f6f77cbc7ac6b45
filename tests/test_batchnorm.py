import warnings

import numpy as np
import pytest

import fastnn
from fastnn import ops
from fastnn import layers as L
from fastnn.reference import layers as R
from conftest import assert_parity, gradcheck

SHAPES = [(1, 3), (7, 5), (64, 130), (4, 3, 2, 5), (2, 1, 3, 3)]


def _close(actual, expected, dtype, reduce_len=1, err_msg=""):
    """Parity at dtype's tolerance for results whose own dtype may be wider (float32 input
    normalised with float64 running averages is computed in float64)."""
    assert_parity(np.asarray(actual).astype(dtype), np.asarray(expected).astype(dtype), dtype,
                  reduce_len, err_msg)


def _params(rng, D, dtype=np.float64):
    return (1 + 0.3 * rng.standard_normal(D)).astype(dtype), rng.standard_normal(D).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES)
def test_parity_with_reference_over_training_steps(rng, dtype, shape):
    N, D = shape[0], int(np.prod(shape[1:]))
    gamma, beta = _params(rng, D, dtype)
    ours = L.BatchNormalization(gamma, beta, momentum=0.8)
    ref = R.BatchNormalization(gamma, beta, momentum=0.8)
    for step in range(3):
        x = (2 * rng.standard_normal(shape) + step).astype(dtype)
        out = ours.forward(x)
        assert out.dtype == dtype and out.shape == shape
        assert_parity(out, ref.forward(x), dtype, reduce_len=N)
        dout = rng.standard_normal(shape).astype(dtype)
        assert_parity(ours.backward(dout), ref.backward(dout), dtype, reduce_len=4 * N)
        assert_parity(ours.dgamma, ref.dgamma, dtype, reduce_len=N)
        assert_parity(ours.dbeta, ref.dbeta, dtype, reduce_len=N)
    assert ours.running_mean.dtype == ours.running_var.dtype == np.float64  # the book's zeros
    for name in ("running_mean", "running_var", "std", "xc", "xn"):
        assert getattr(ours, name).dtype == getattr(ref, name).dtype, name
        _close(getattr(ours, name), getattr(ref, name), dtype, reduce_len=N, err_msg=name)
    assert ours.batch_size == N and ours.input_shape == shape
    x = rng.standard_normal(shape).astype(dtype)
    out = ours.forward(x, train_flg=False)
    assert out.dtype == np.float64  # x - running_mean promotes, as in the book
    _close(out, ref.forward(x, train_flg=False), dtype, reduce_len=N)


def test_the_books_epsilon_and_running_average():
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    layer = L.BatchNormalization(np.ones(2), np.zeros(2), momentum=0.9)
    out = layer.forward(x)
    var = np.array([1.0, 4.0])
    np.testing.assert_allclose(out, (x - [2.0, 4.0]) / np.sqrt(var + 1e-6), rtol=1e-12)
    np.testing.assert_allclose(layer.running_mean, 0.1 * np.array([2.0, 4.0]), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, 0.1 * var, rtol=1e-12)
    inf = layer.forward(x, train_flg=False)
    np.testing.assert_allclose(inf, (x - [0.2, 0.4]) / np.sqrt(0.1 * var + 1e-6), rtol=1e-12)


def test_4d_input_is_normalised_per_feature_like_the_book(rng):
    x = rng.standard_normal((6, 2, 3, 3))
    layer = L.BatchNormalization(np.ones(18), np.zeros(18))
    out = layer.forward(x).reshape(6, 18)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    assert layer.running_mean.shape == (18,)
    with pytest.raises(ValueError, match=r"gamma.shape=\(2,\) but x has 18 features per sample"):
        L.BatchNormalization(np.ones(2), np.zeros(2)).forward(x)


def test_gradients_match_finite_differences(rng):
    for shape in [(5, 4), (3, 2, 2, 1)]:
        D = int(np.prod(shape[1:]))
        x = rng.standard_normal(shape)
        gamma, beta = _params(rng, D)
        G = rng.standard_normal(shape)
        layer = L.BatchNormalization(gamma, beta)
        loss = lambda: float(np.sum(layer.forward(x) * G))  # noqa: E731
        loss()
        dx = layer.backward(G)
        dgamma, dbeta = layer.dgamma.copy(), layer.dbeta.copy()
        gradcheck(loss, x, dx, rtol=1e-5, atol=1e-7)
        gradcheck(loss, gamma, dgamma)
        gradcheck(loss, beta, dbeta)


def test_running_stats_are_rebound_not_mutated(rng):
    rm, rv = np.zeros(3), np.ones(3)
    rm0, rv0 = rm.copy(), rv.copy()
    layer = L.BatchNormalization(np.ones(3), np.zeros(3), running_mean=rm, running_var=rv)
    layer.forward(rng.standard_normal((4, 3)))
    np.testing.assert_array_equal(rm, rm0)
    np.testing.assert_array_equal(rv, rv0)
    assert layer.running_mean is not rm
    # gamma and beta are the caller's: an in-place update is seen by the next forward.
    layer.gamma *= 2
    x = rng.standard_normal((4, 3))
    np.testing.assert_allclose(layer.forward(x, False),
                               2 * (x - layer.running_mean) / np.sqrt(layer.running_var + 1e-6))


def test_inference_before_training_starts_from_zero_stats(rng):
    x = rng.standard_normal((3, 4))
    layer = L.BatchNormalization(np.ones(4), np.zeros(4))
    np.testing.assert_allclose(layer.forward(x, train_flg=False), x / np.sqrt(1e-6))
    assert layer.running_mean.dtype == np.float64
    np.testing.assert_array_equal(layer.running_var, np.zeros(4))


@pytest.mark.parametrize("x_dt,p_dt,run_dt,out_dt,run_out_dt", [
    (np.float32, np.float64, None, np.float64, np.float64),
    (np.float32, np.float32, np.float32, np.float32, np.float32),
    (np.float32, np.float32, None, np.float32, np.float64),
    (np.int64, np.float32, np.float32, np.float64, np.float64),
])
def test_mixed_dtypes_follow_numpy_promotion(rng, x_dt, p_dt, run_dt, out_dt, run_out_dt):
    x = (3 * rng.standard_normal((5, 3))).astype(x_dt)
    gamma, beta = _params(rng, 3, p_dt)
    run = (None, None) if run_dt is None else (np.zeros(3, run_dt), np.ones(3, run_dt))
    ours = L.BatchNormalization(gamma, beta, 0.9, *run)
    ref = R.BatchNormalization(gamma, beta, 0.9, *run)
    out, ref_out = ours.forward(x), ref.forward(x)
    assert out.dtype == ref_out.dtype == out_dt
    assert ours.running_mean.dtype == ref.running_mean.dtype == run_out_dt
    _close(out, ref_out, np.float32, reduce_len=5)
    _close(ours.running_var, ref.running_var, np.float32, reduce_len=5)
    dout = rng.standard_normal((5, 3)).astype(out_dt)
    dx, ref_dx = ours.backward(dout), ref.backward(dout)
    assert dx.dtype == ref_dx.dtype and ours.dgamma.dtype == ref.dgamma.dtype
    _close(dx, ref_dx, np.float32, reduce_len=20)


def test_empty_batch_keeps_running_stats(dtype):
    layer = L.BatchNormalization(np.ones(4, dtype), np.zeros(4, dtype),
                                 running_mean=np.full(4, 0.5), running_var=np.full(4, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = layer.forward(np.zeros((0, 4), dtype))
        dx = layer.backward(np.zeros((0, 4), dtype))
    assert out.shape == (0, 4) and dx.shape == (0, 4)
    np.testing.assert_array_equal(layer.running_mean, np.full(4, 0.5))
    np.testing.assert_array_equal(layer.running_var, np.full(4, 2.0))
    np.testing.assert_array_equal(layer.dgamma, np.zeros(4))
    np.testing.assert_array_equal(layer.dbeta, np.zeros(4))
    ref = R.BatchNormalization(np.ones(4, dtype), np.zeros(4, dtype), 0.9, np.full(4, 0.5),
                               np.full(4, 2.0))
    ref.forward(np.zeros((0, 4), dtype))
    np.testing.assert_array_equal(ref.running_mean, layer.running_mean)
    assert layer.forward(np.zeros((0, 2, 1, 2), dtype), train_flg=False).shape == (0, 2, 1, 2)


def test_batch_of_one(dtype):
    x = np.array([[1.0, -2.0, 3.0]], dtype)
    layer = L.BatchNormalization(np.ones(3, dtype), np.full(3, 0.5, dtype))
    np.testing.assert_allclose(layer.forward(x), [[0.5, 0.5, 0.5]])
    np.testing.assert_allclose(layer.backward(np.ones((1, 3), dtype)), np.zeros((1, 3)),
                               atol=1e-6)


def test_nan_propagates_per_feature(dtype):
    x = np.arange(12, dtype=dtype).reshape(4, 3)
    x[2, 1] = np.nan
    layer = L.BatchNormalization(np.ones(3, dtype), np.zeros(3, dtype))
    out = layer.forward(x)
    assert np.isnan(out[:, 1]).all() and np.isfinite(out[:, [0, 2]]).all()
    assert np.isnan(layer.running_mean[1]) and np.isfinite(layer.running_mean[[0, 2]]).all()
    dx = layer.backward(np.ones((4, 3), dtype))
    assert np.isnan(dx[:, 1]).all() and np.isfinite(dx[:, [0, 2]]).all()


def test_non_contiguous_and_fortran_inputs(rng, dtype):
    x = np.asfortranarray(rng.standard_normal((6, 5)).astype(dtype))
    gamma = rng.standard_normal(10).astype(dtype)[::2]
    beta = rng.standard_normal(5).astype(dtype)
    ours, ref = L.BatchNormalization(gamma, beta), R.BatchNormalization(gamma, beta)
    _close(ours.forward(x), ref.forward(x), dtype, reduce_len=6)
    dout = rng.standard_normal((5, 6)).astype(dtype).T
    assert_parity(ours.backward(dout), ref.backward(dout), dtype, reduce_len=24)
    x4 = rng.standard_normal((3, 4, 2, 6)).astype(dtype)[..., ::2]  # (3, 4, 2, 3) strided
    ours = L.BatchNormalization(np.ones(24, dtype), np.zeros(24, dtype))
    ref = R.BatchNormalization(np.ones(24, dtype), np.zeros(24, dtype))
    assert_parity(ours.forward(x4), ref.forward(x4), dtype, reduce_len=3)


def test_bad_inputs_raise_clear_errors():
    layer = L.BatchNormalization(np.ones(4), np.zeros(4))
    with pytest.raises(RuntimeError, match="BatchNormalization.backward: call forward"):
        layer.backward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"BatchNormalization: x must be 2-D \(N, D\) or 4-D "
                                         r"\(N, C, H, W\), got x.shape=\(2, 2, 2\)"):
        layer.forward(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"x.shape=\(4,\)"):
        layer.forward(np.ones(4))
    with pytest.raises(ValueError, match=r"BatchNormalization: gamma.shape=\(4,\) but x has 5 "
                                         r"features per sample \(x.shape=\(2, 5\)"):
        layer.forward(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"beta.shape=\(1, 4\)"):
        L.BatchNormalization(np.ones(4), np.zeros((1, 4))).forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"running_var.shape=\(3,\)"):
        L.BatchNormalization(np.ones(4), np.zeros(4), 0.9, np.zeros(4),
                             np.zeros(3)).forward(np.ones((2, 4)), train_flg=False)
    layer.forward(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"BatchNormalization.backward: dout has shape \(2, 4\) "
                                         r"but the forward input was \(3, 4\)"):
        layer.backward(np.ones((2, 4)))
    for bad in (np.ones((2, 4), complex), np.array([[object()] * 4] * 2)):
        with pytest.raises(TypeError, match="BatchNormalization"):
            layer.forward(bad)
    with pytest.raises(TypeError, match="BatchNormalization"):
        layer.backward(np.ones((3, 4), complex))
    with pytest.raises(TypeError, match="BatchNormalization"):
        L.BatchNormalization(np.ones(4, complex), np.zeros(4)).forward(np.ones((2, 4)))


def test_ops_entry_points(rng):
    x = rng.standard_normal((5, 3))
    out, xc, xn, std, rm, rv = ops.batchnorm_forward_train(x, np.ones(3), np.zeros(3))
    np.testing.assert_allclose(std, np.sqrt(x.var(axis=0) + ops.BATCHNORM_EPS))
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=0))
    dx, dgamma, dbeta = ops.batchnorm_backward(np.ones((5, 3)), np.ones(3), xc, xn, std)
    np.testing.assert_allclose(dx, 0, atol=1e-9)
    np.testing.assert_allclose(dbeta, 5)


def test_threaded_path_matches_reference(rng, dtype):
    n = fastnn.get_num_threads()
    fastnn.set_num_threads(2)  # past kParallelGrain elements the kernels split the columns
    try:
        x = rng.standard_normal((100, 4, 5, 20)).astype(dtype)
        gamma, beta = _params(rng, 400, dtype)
        rm, rv = np.zeros(400, dtype), np.ones(400, dtype)
        ours = L.BatchNormalization(gamma, beta, 0.9, rm, rv)
        ref = R.BatchNormalization(gamma, beta, 0.9, rm, rv)
        assert_parity(ours.forward(x), ref.forward(x), dtype, reduce_len=100)
        dout = rng.standard_normal(x.shape).astype(dtype)
        assert_parity(ours.backward(dout), ref.backward(dout), dtype, reduce_len=400)
        assert_parity(ours.dgamma, ref.dgamma, dtype, reduce_len=100)
        assert_parity(ours.forward(x, False), ref.forward(x, False), dtype)
    finally:
        fastnn.set_num_threads(n)
