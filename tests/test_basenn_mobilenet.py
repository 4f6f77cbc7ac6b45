"""fastnn.basenn's MobileNetV2 (add('mobilenet_backbone') / add('mobilenet')): torchvision's
outputs from torchvision's weights, gradients against torch and numerically, checkpoints, ONNX
export and bad weight files."""

import os
import sys

import numpy as np
import pytest

from fastnn.basenn import modules as M
from fastnn.basenn import nn
from conftest import gradcheck

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if ROOT not in sys.path:
    sys.path.append(ROOT)  # after site-packages: an installed fastnn stays the one imported

pytestmark = pytest.mark.usefixtures("one_kernel_thread")
torch = None  # imported by the tests that compare with it (torch_net)


def torch_net(num_classes=10, seed=0):
    """The torch network with random weights and random batch-norm statistics, float64."""
    global torch
    torch = pytest.importorskip("torch")
    from benchmarks.torch_mobilenet import MobileNetV2
    torch.manual_seed(seed)
    net = MobileNetV2(num_classes).double()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net


def state_of(net):
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


def state_without_torch(num_classes=None, seed=0):
    """A torchvision-named state_dict made from fastnn's own network (no torch needed)."""
    net = M.mobilenet_v2(num_classes, np.random.default_rng(seed), np.float32)
    state = {}
    for prefix, m in net.torchvision_names:
        if isinstance(m, M.Conv2d):
            state[prefix + ".weight"] = m.params["W"]
        elif isinstance(m, M.Linear):
            state[prefix + ".weight"], state[prefix + ".bias"] = m.params["W"].T, m.params["b"]
        else:
            state.update({f"{prefix}.weight": m.params["gamma"], f"{prefix}.bias":
                          m.params["beta"], f"{prefix}.running_mean": m.buffers["running_mean"],
                          f"{prefix}.running_var": m.buffers["running_var"]})
    return state


@pytest.fixture(scope="module")
def tnet():
    return torch_net()


@pytest.fixture(scope="module")
def weights_npz(tmp_path_factory, tnet):
    path = tmp_path_factory.mktemp("w") / "mobilenet_v2.npz"
    np.savez(path, **state_of(tnet))
    return str(path)


def test_sizes_match_the_torchvision_layout(tnet):
    params = sum(p.numel() for p in tnet.parameters())
    buffers = sum(b.numel() for name, b in tnet.named_buffers()
                  if not name.endswith("num_batches_tracked"))
    assert M.mobilenet_v2_sizes(10) == (params, buffers)
    assert M.mobilenet_v2_sizes(None) == (params - 1280 * 10 - 10, buffers)


@pytest.mark.parametrize("size", [32, 45])
def test_inference_gives_torchvisions_outputs(tnet, weights_npz, size):
    x = np.random.default_rng(1).standard_normal((2, 3, size, size))
    m = nn()
    m.dtype = np.float64
    m.add("mobilenet", num_classes=10, weights=weights_npz)
    backbone = nn()
    backbone.dtype = np.float64
    backbone.add("mobilenet_backbone", weights=weights_npz)
    tnet.eval()
    with torch.no_grad():
        xt = torch.tensor(x)
        logits, features = tnet(xt).numpy(), tnet.backbone(xt).numpy()
    np.testing.assert_allclose(m.inference(x), logits, rtol=1e-9, atol=1e-12)
    out = backbone.inference(x)
    assert out.shape == (2, 1280)
    np.testing.assert_allclose(out, features, rtol=1e-9, atol=1e-12)


def test_safetensors_weights_in_float32(tmp_path):
    from safetensors.numpy import save_file
    tnet = torch_net().float()
    path = str(tmp_path / "w.safetensors")
    save_file({k: v.astype(np.float32) if v.dtype.kind == "f" else v
               for k, v in state_of(tnet).items()}, path)
    m = nn()
    m.add("mobilenet_backbone", weights=path)
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32)).astype(np.float32)
    tnet.eval()
    with torch.no_grad():
        expect = tnet.backbone(torch.tensor(x)).numpy()
    np.testing.assert_allclose(m.inference(x), expect, rtol=2e-4, atol=2e-5)


def test_training_step_matches_torch():
    """Batch statistics, ReLU6, depthwise and residual gradients in training mode."""
    tnet = torch_net()
    net = M.mobilenet_v2(None, np.random.default_rng(0), np.float64)
    M.load_torchvision_weights(net, state_of(tnet))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 32, 32))
    dout = rng.standard_normal((4, 1280))
    y = net.forward(x, True)
    dx = net.backward(dout)
    # Training normalises by the batch's statistics with the book's epsilon (1e-6; torch's
    # default is 1e-5, which small late feature maps would feel): the same in both here.
    for m in tnet.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = 1e-6
    tnet.train()
    xt = torch.tensor(x, requires_grad=True)
    yt = tnet.backbone(xt)
    yt.backward(torch.tensor(dout))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6, atol=1e-9)
    grads = {k: v.grad.numpy() for k, v in tnet.named_parameters() if v.grad is not None}
    for prefix, m in net.torchvision_names:
        if isinstance(m, M.Conv2d):
            expect = grads[prefix + ".weight"]
            np.testing.assert_allclose(m.grads["W"], expect, rtol=1e-6,
                                       atol=1e-9 * np.abs(expect).max(), err_msg=prefix)
    assert next(m for p, m in net.torchvision_names if p == "features.2.conv.1.0").groups == 96


def test_inverted_residual_gradients_numerically():
    rng = np.random.default_rng(4)

    def block():
        main = M.Sequence([M.Conv2d((4, 8), 1, rng, np.float64, bias=False),
                           M.BatchNorm(8, 2, np.float64), M.ReLU6(),
                           M.Conv2d((8, 8), 3, rng, np.float64, stride=1, padding=1,
                                    bias=False, groups=8),
                           M.BatchNorm(8, 2, np.float64), M.ReLU6(),
                           M.Conv2d((8, 4), 1, rng, np.float64, bias=False),
                           M.BatchNorm(4, 2, np.float64)])
        return M.Residual(main, None, relu=False)

    b = block()
    x = 2 * rng.standard_normal((3, 4, 5, 5))
    dout = rng.standard_normal((3, 4, 5, 5))
    b.forward(x, True)
    dx = b.backward(dout)

    def loss():
        return float(np.sum(b.forward(x, True) * dout))
    gradcheck(loss, x, dx, rtol=1e-5, atol=1e-7)
    depthwise = b.main.modules[3]
    gradcheck(loss, depthwise.params["W"], depthwise.grads["W"], rtol=1e-5, atol=1e-7)


def test_trains_saves_and_reloads(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.random((16, 3, 32, 32)).astype(np.float32)
    y = (x[:, 0].mean(axis=(1, 2)) > x[:, 1].mean(axis=(1, 2))).astype(np.int64)
    m = nn()
    m.set_seed(0)
    m.load_dataset(x, y, batch_size=8)
    m.add("mobilenet_backbone")
    m.add("linear", size=(1280, 2), activation="softmax")
    m.add(optimizer="Adam")
    m.save_fold = str(tmp_path / "ckpt")
    m.train(lr=1e-3, epochs=2, metrics=["acc"], verbose=False)
    ckpt = str(tmp_path / "ckpt" / "basenn.pth")
    expect = m.inference(x)
    again = nn().inference(x, checkpoint=ckpt)
    np.testing.assert_allclose(again, expect, rtol=1e-5, atol=1e-6)


def test_mobilenet_takes_the_class_count_from_the_data():
    m = nn()
    m.load_dataset(np.zeros((4, 3, 32, 32), np.float32), np.array([0, 1, 2, 0]))
    m.add("mobilenet")
    assert m.layers[-1].spec["kw"]["num_classes"] == 3
    assert m.inference(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 3)


def test_onnx_export_matches_inference(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from fastnn.export import basenn_to_onnx
    weights = str(tmp_path / "w.npz")
    np.savez(weights, **state_without_torch(10, seed=3))
    m = nn()
    m.add("mobilenet", num_classes=10, weights=weights)
    path = str(tmp_path / "m.onnx")
    basenn_to_onnx(m, path, input_shape=(3, 32, 32))
    x = np.random.default_rng(6).standard_normal((2, 3, 32, 32)).astype(np.float32)
    got = ort.InferenceSession(path).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, m.inference(x), rtol=1e-3, atol=1e-4)


def test_bad_weight_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        nn().add("mobilenet_backbone", weights=str(tmp_path / "missing.npz"))
    state = state_without_torch()
    del state["features.3.conv.1.0.weight"]
    np.savez(tmp_path / "short.npz", **state)
    with pytest.raises(ValueError, match=r"1 arrays missing, e.g. features.3.conv.1.0.weight"):
        nn().add("mobilenet_backbone", weights=str(tmp_path / "short.npz"))
    state = state_without_torch()
    state["features.0.0.weight"] = state["features.0.0.weight"][:, :1]
    np.savez(tmp_path / "bad.npz", **state)
    with pytest.raises(ValueError, match=r"features.0.0.weight has shape \(32, 1, 3, 3\)"):
        nn().add("mobilenet_backbone", weights=str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="num_classes"):
        nn().add("mobilenet", num_classes=0)
