"""basenn's diffusion_model: the U-Net's gradients, the DDPM schedule and steps against
BaseNN's formulas, training, checkpoints, sampling shapes, pictures and argument checks."""

import os
import sys

import numpy as np
import pytest

from conftest import gradcheck
from fastnn.basenn import diffusion as D
from fastnn.basenn import nn

pytestmark = pytest.mark.usefixtures("one_kernel_thread")


def _sum_against(f, g):
    return lambda: float((f() * g).sum())


# ------------------------------------------------------------------ gradients

def test_resblock_gradients_with_time_embedding():
    rng = np.random.default_rng(0)
    block = D.ResBlock(2, 4, 6, rng, np.float64, groups=2)      # 1x1 projection on the skip
    x = rng.standard_normal((2, 2, 4, 4))
    temb = rng.standard_normal((2, 6))
    g = rng.standard_normal((2, 4, 4, 4))
    block.forward(x, temb, True)
    dx, dtemb = block.backward(g)
    grads = {k: np.array(v) for k, v in block.grads.items()}
    assert set(grads) == set(block.params)
    f = _sum_against(lambda: block.forward(x, temb, True), g)
    gradcheck(f, x, dx)
    gradcheck(f, temb, dtemb)
    for k, p in block.params.items():
        gradcheck(f, p, grads[k], rtol=1e-5, atol=1e-7)


def test_unet_gradients_through_every_block():
    """conv, group norm, SiLU, time embedding, down (pixel-unshuffle + 1x1 conv), nearest
    up-sampling and the concatenated skip: input and every parameter."""
    rng = np.random.default_rng(1)
    net = D.UNet(2, 4, rng, np.float64, groups=2)
    x = rng.standard_normal((2, 2, 4, 4))
    t = np.array([3, 17])
    g = rng.standard_normal(x.shape)
    net.forward(x, t, True)
    dx = net.backward(g)
    grads = {k: np.array(v) for k, v in net.grads.items()}
    assert set(grads) == set(net.params)
    assert sum(p.size for p in net.params.values()) == D.unet_sizes(2, 4)
    f = _sum_against(lambda: net.forward(x, t, True), g)
    gradcheck(f, x, dx)
    for k, p in net.params.items():
        gradcheck(f, p, grads[k], rtol=1e-5, atol=1e-7)


def test_group_norm_matches_its_definition():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 6, 2, 5))
    gn = D.GroupNorm(3, 6, np.float64)
    gn.params["gamma"][:] = rng.standard_normal(6)
    gn.params["beta"][:] = rng.standard_normal(6)
    y = gn.forward(x)
    xr = x.reshape(3, 3, -1)
    want = ((xr - xr.mean(2, keepdims=True)) / np.sqrt(xr.var(2, keepdims=True) + 1e-5))
    want = want.reshape(x.shape) * gn.params["gamma"][:, None, None] + \
        gn.params["beta"][:, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_unet_matches_its_torch_twin():
    """Forward and all gradients equal torch.nn's network of the same layout (float64)."""
    torch = pytest.importorskip("torch")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.append(root)
    from benchmarks.torch_diffusion import UNet, fastnn_key

    rng = np.random.default_rng(3)
    net = D.UNet(1, 8, rng, np.float64)
    tnet = UNet(1, 8).double()
    with torch.no_grad():
        for name, v in tnet.state_dict().items():
            w = net.params[fastnn_key(name)]
            v.copy_(torch.from_numpy(w.T.copy() if w.ndim == 2 else w))
    x = rng.standard_normal((3, 1, 8, 8))
    t = np.array([0, 5, 499])
    g = rng.standard_normal(x.shape)
    y = net.forward(x, t, True)
    net.backward(g)
    xt = torch.from_numpy(x).requires_grad_()
    yt = tnet(xt, torch.from_numpy(t))
    (yt * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for name, p in tnet.named_parameters():
        want = p.grad.numpy()
        got = net.grads[fastnn_key(name)]
        np.testing.assert_allclose(got.T if got.ndim == 2 else got, want, rtol=1e-9,
                                   atol=1e-11, err_msg=name)


def test_benchmark_steps_agree_with_torch():
    """The basenn:diffusion benchmark row times the same computation on both sides: equal
    losses over three Adam steps from the shared weights."""
    pytest.importorskip("torch")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.append(root)
    from benchmarks import bench_basenn as B

    ours, theirs = B._diffusion_build("fastnn"), B._diffusion_build("torch")
    a = [ours() for _ in range(3)]
    b = [theirs() for _ in range(3)]
    np.testing.assert_allclose(a, b, rtol=2e-4)
    assert a[2] < a[0]


# ------------------------------------------------------------------ the process

def test_schedules_follow_basenns_formulas():
    T = 500
    s = D.Schedule(T, "linear")
    scale = 1000 / T
    np.testing.assert_allclose(s.betas[[0, -1]], [1e-4 * scale, 0.02 * scale], rtol=1e-14)
    np.testing.assert_allclose(np.diff(s.betas), (0.02 - 1e-4) * scale / (T - 1), rtol=1e-9)
    np.testing.assert_allclose(s.alphas_cumprod, np.cumprod(1 - s.betas), rtol=1e-14)
    # sigmoid (BaseNN's default): abar(t) = (sigmoid(3) - sigmoid(6t/T - 3)) /
    # (sigmoid(3) - sigmoid(-3)), normalised to abar(0) = 1, betas = 1 - abar_t / abar_{t-1}
    sg = D.Schedule(T, "sigmoid")
    sig = lambda z: 1 / (1 + np.exp(-z))     # noqa: E731
    tt = np.arange(T + 1) / T
    abar = (sig(3) - sig(6 * tt - 3)) / (sig(3) - sig(-3))
    abar /= abar[0]
    betas = np.clip(1 - abar[1:] / abar[:-1], 0, 0.999)
    np.testing.assert_allclose(sg.betas, betas, rtol=1e-12)
    np.testing.assert_allclose(sg.alphas_cumprod, np.cumprod(1 - betas), rtol=1e-12)
    np.testing.assert_allclose(sg.posterior_variance[1:], sg.betas[1:] * (
        1 - sg.alphas_cumprod[:-1]) / (1 - sg.alphas_cumprod[1:]), rtol=1e-12)
    assert sg.posterior_variance[0] == 0
    torch = pytest.importorskip("torch")       # the same numbers in float64 torch
    t64 = torch.linspace(1e-4 * scale, 0.02 * scale, T, dtype=torch.float64)
    np.testing.assert_allclose(s.betas, t64.numpy(), rtol=1e-12)


def test_forward_process_has_the_closed_form_statistics():
    model = nn()
    model.set_seed(0)
    model.add("diffusion_model", img_size=4, timestep=100, dim=8)
    module = model.layers[0].module
    x0 = np.linspace(-1, 1, 16).reshape(1, 1, 4, 4)
    n = 20000
    t = 37
    noise = np.random.default_rng(1).standard_normal((n, 1, 4, 4))
    xt = module.q_sample(np.broadcast_to(x0, noise.shape), np.full(n, t), noise)
    ab = module.schedule.alphas_cumprod[t]
    np.testing.assert_allclose(xt.mean(0), np.sqrt(ab) * x0[0], atol=5 * np.sqrt((1 - ab) / n))
    np.testing.assert_allclose(xt.var(0), np.full((1, 4, 4), 1 - ab), rtol=0.05)
    # noisy(): the same process on a [0, 1] picture at t = timestep * i // num, drawing its
    # noise from the model's generator
    model.set_seed(3)
    out = model.noisy((x0[0] + 1) / 2, timestep=100, num=4, show=False)
    assert out.shape == (4, 1, 4, 4)
    z = np.random.default_rng(3).standard_normal((4, 1, 4, 4)).astype(np.float32)
    ab = module.schedule.alphas_cumprod[[0, 25, 50, 75]].reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(out * 2 - 1, np.sqrt(ab) * x0[0] + np.sqrt(1 - ab) * z,
                               rtol=1e-5, atol=1e-6)


def test_one_reverse_step_equals_the_formula():
    model = nn(dtype=np.float64)
    model.set_seed(0)
    model.add("diffusion_model", img_size=2, timestep=40, dim=8, beta_schedule="linear")
    module = model.layers[0].module
    for name in module.params:          # a U-Net that predicts eps = 0.5 everywhere
        module.params[name][...] = 0
    module.params["final.b"][...] = 0.5
    x = np.array([[[[0.2, -0.4], [1.5, -3.0]]]])
    z = np.array([[[[1.0, -1.0], [0.5, 0.0]]]])
    t = 2
    betas = 25 * (1e-4 + np.arange(40) * (0.02 - 1e-4) / 39)      # 1000 / 40 = 25
    ab = np.cumprod(1 - betas)
    x0 = np.clip(x / np.sqrt(ab[t]) - np.sqrt(1 / ab[t] - 1) * 0.5, -1, 1)
    mean = betas[t] * np.sqrt(ab[t - 1]) / (1 - ab[t]) * x0 + \
        (1 - ab[t - 1]) * np.sqrt(1 - betas[t]) / (1 - ab[t]) * x
    var = betas[t] * (1 - ab[t - 1]) / (1 - ab[t])
    np.testing.assert_allclose(module.p_sample(x, t, z), mean + np.sqrt(var) * z, rtol=1e-12)
    x0 = np.clip(x / np.sqrt(ab[0]) - np.sqrt(1 / ab[0] - 1) * 0.5, -1, 1)     # t = 0: the mean
    np.testing.assert_allclose(module.p_sample(x, 0, z), x0, rtol=1e-12)


# ------------------------------------------------------------------ the builder

def _digits(n=32, size=8):
    """Blobs that move: a learnable set of size x size pictures in [0, 1]."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(2, size - 2, (2, n, 1, 1))
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 3.0)[:, None].astype(np.float32)


def test_training_reduces_the_loss_and_checkpoints_round_trip(tmp_path):
    model = nn()
    model.set_seed(0)
    model.add("diffusion_model", img_size=8, timestep=50, dim=8)
    model.load_dataset(_digits(64))
    model.add(optimizer="Adam")
    hist = model.train(epochs=12, lr=3e-3, batch_size=16, metrics=[],
                       save_fold=str(tmp_path), verbose=False)
    losses = [h["loss"] for h in hist]
    assert np.mean(losses[-3:]) < 0.6 * losses[0], losses
    path = tmp_path / "basenn.pth"
    again = nn()
    again.load(str(path))
    for k, v in model._params().items():
        np.testing.assert_array_equal(again._params()[k], v)
    again.set_seed(5)
    model.set_seed(5)
    a = again.inference(num=3, return_all_timesteps=False)
    b = model.inference(num=3, return_all_timesteps=False)
    np.testing.assert_array_equal(a, b)
    c = nn().inference(checkpoint=str(path), num=2, return_all_timesteps=False)
    assert c.shape == (2, 1, 8, 8)
    model.train(epochs=1, lr=1e-3, batch_size=16, verbose=False, filename="more.pth")
    assert (tmp_path / "more.pth").is_file()


def test_inference_shapes_and_layout():
    model = nn()
    model.set_seed(0)
    model.add("diffusion_model", img_size=4, timestep=6, dim=8)
    out = model.inference(num=3, return_all_timesteps=False)
    assert out.shape == (3, 1, 4, 4) and out.dtype == np.float32
    model.set_seed(1)
    every = model.inference(num=3)                 # BaseNN's default: every step
    assert every.shape == (3, 7, 1, 4, 4)
    model.set_seed(1)
    final = model.inference(num=3, return_all_timesteps=False)
    np.testing.assert_allclose(every[:, -1], final)
    # step 0 is the starting noise (drawn first from the model's generator) mapped by
    # (x + 1) / 2; the clipped x0 keeps the end near [0, 1]
    start = np.random.default_rng(1).standard_normal((3, 1, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(every[:, 0], (start + 1) / 2, rtol=1e-6)
    assert every[:, -1].min() > -0.5 and every[:, -1].max() < 1.5


def test_channels_follow_color_when_no_data_is_loaded():
    m = nn()
    m.color = "RGB"
    m.add("diffusion_model", img_size=4, timestep=3, dim=8)
    assert m.layers[0].module.channels == 3
    m2 = nn()
    m2.add("diffusion_model", img_size=4, timestep=3, dim=8)
    assert m2.layers[0].module.channels == 1
    m3 = nn()
    m3.load_dataset(np.zeros((2, 3, 4, 4)))
    m3.add("diffusion_model", img_size=4, timestep=3, dim=8)
    assert m3.layers[0].module.channels == 3


def test_untrained_model_follows_the_datas_channels(tmp_path):
    m = nn()
    m.color = "RGB"
    m.add("diffusion_model", img_size=4, timestep=3, dim=8)
    m.load_dataset(np.random.default_rng(0).random((4, 1, 4, 4)))
    m.train(epochs=1, lr=1e-3, verbose=False, save_fold=str(tmp_path))
    assert m.layers[0].module.channels == 1
    assert m.layers[0].spec["kw"]["channels"] == 1
    m.load_dataset(np.random.default_rng(0).random((4, 1, 6, 6)))
    with pytest.raises(ValueError, match=r"img_size=4.*\(1, 6, 6\).*Resize"):
        m.train(epochs=1, verbose=False)


def test_show_and_noisy_write_pngs(tmp_path):
    from PIL import Image
    model = nn()
    model.set_seed(0)
    model.save_fold = str(tmp_path / "out")
    model.add("diffusion_model", img_size=8, timestep=10, dim=8)
    Image.fromarray((_digits(1)[0, 0] * 255).astype(np.uint8)).save(tmp_path / "0.jpg")
    result = model.noisy(str(tmp_path / "0.jpg"), timestep=10, num=5, show=True)
    assert result.shape == (5, 1, 8, 8)
    assert (tmp_path / "out" / "noisy.png").stat().st_size > 0
    imgs = model.inference(num=4, return_all_timesteps=True)
    path = model.show(imgs, size=(2, 3), visual_timesteps=True)
    assert path == str(tmp_path / "out" / "diffusion_timesteps.png")
    with Image.open(path) as im:
        assert im.format == "PNG"
    path = model.show(imgs, size=(2, 2))
    assert os.path.basename(path) == "diffusion_grid.png" and os.path.getsize(path) > 0
    with pytest.raises(ValueError, match="needs 9 images"):
        model.show(imgs, size=(3, 3))
    with pytest.raises(ValueError, match="return_all_timesteps=True"):
        model.show(imgs[:, -1], size=(2, 2), visual_timesteps=True)


@pytest.mark.parametrize("kw, msg", [
    ({"img_size": 0}, "img_size must be an even integer"),
    ({"img_size": 7}, "img_size must be an even integer"),
    ({"timestep": 10 ** 6}, "timestep must be an integer from 1 to 10000"),
    ({"timestep": 0}, "timestep must be"),
    ({"dim": 12}, "dim must be a multiple of 8"),
    ({"beta_schedule": "cosine"}, "beta_schedule must be one of"),
    ({"beta_schedule": "linear", "timestep": 20}, "more than 20 steps"),
    ({"channels": 9}, "channels must be"),
])
def test_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        nn().add("diffusion_model", **kw)


def test_bad_calls():
    m = nn()
    with pytest.raises(ValueError, match="no diffusion model"):
        m.noisy(np.zeros((4, 4)))
    m.add("diffusion_model", img_size=4, timestep=5, dim=8)
    with pytest.raises(ValueError, match="timestep must be an integer from 1 to the model's 5"):
        m.noisy(np.zeros((4, 4)), timestep=6, show=False)
    with pytest.raises(ValueError, match="num must be"):
        m.inference(num=0)
    big = nn()
    big.add("diffusion_model", img_size=512, timestep=10000, dim=8)
    with pytest.raises(ValueError, match="GiB.*return_all_timesteps=False"):
        big.inference(num=2, return_all_timesteps=True)
    with pytest.raises(ValueError, match="give the data"):
        nn().inference()


def test_forged_checkpoint_is_refused(tmp_path):
    import json
    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open
    m = nn()
    m.add("diffusion_model", img_size=4, timestep=5, dim=8)
    path = str(tmp_path / "m.pth")
    m.save(path)
    with safe_open(path, "np") as f:
        meta = f.metadata()
    arrays = load_file(path)
    for change, msg in [({"dim": 512}, "declares"), ({"timestep": 10 ** 9}, "timestep"),
                        ({"channels": None}, "channels"), ({"img_size": 3}, "img_size")]:
        spec = json.loads(meta["spec"])
        spec["layers"][0]["kw"].update(change)
        bad = str(tmp_path / "bad.pth")
        save_file(arrays, bad, metadata={**meta, "spec": json.dumps(spec)})
        with pytest.raises(ValueError, match=msg):
            nn().load(bad)


def test_onnx_export_is_refused_clearly():
    pytest.importorskip("onnx")
    from fastnn.export import basenn_to_onnx
    m = nn()
    m.add("diffusion_model", img_size=4, timestep=5, dim=8)
    with pytest.raises(NotImplementedError, match="DiffusionModel module, which has no ONNX"):
        basenn_to_onnx(m, input_shape=(1, 4, 4))


def test_example_diffusion_digits(tmp_path):
    """The example on a small budget: the loss falls and the pictures are written."""
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "basenn",
                        "diffusion_digits.py")
    spec = importlib.util.spec_from_file_location("basenn_example_diffusion", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    losses, imgs = ex.main(epochs=3, n_train=512, timestep=50, dim=16, num=4,
                           save_fold=str(tmp_path))
    assert losses[-1] < 0.7 * losses[0], losses
    assert imgs.shape == (4, 51, 1, 16, 16)
    for name in ("noisy.png", "diffusion_grid.png", "diffusion_timesteps.png", "basenn.pth"):
        assert (tmp_path / name).stat().st_size > 0


def test_training_under_mpiexec_is_refused(monkeypatch):
    from fastnn import distributed as dist
    m = nn()
    m.add("diffusion_model", img_size=8, timestep=30)
    m.load_dataset(np.zeros((4, 1, 8, 8), np.float32))
    monkeypatch.setattr(dist, "init", lambda timeout=None: (0, 2))
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    with pytest.raises(RuntimeError, match="trains in one process .* without mpiexec"):
        m.train(epochs=1, metrics=[], verbose=False)
