"""Instruction-set levels of the CPU kernels: the level chosen at import, FASTNN_CPU's cap, and
the same results at every level this machine supports (each level in its own process, since
the level is chosen once at import). The whole suite also runs at each level in CI."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import fastnn

X86_LEVELS = ["baseline", "avx2", "avx512"]

# Runs in a child with FASTNN_CPU set: the level in use and a few kernels against the reference.
CHILD = r"""
import json, sys
import numpy as np
import fastnn
from fastnn import layers as L, time_layers as TL
from fastnn.reference import layers as RL, time_layers as RTL

def pair(cls, rcls, *args):
    return cls(*args), rcls(*[a.copy() if hasattr(a, 'copy') else a for a in args])

rng = np.random.default_rng(7)
worst = 0.0
for dt in (np.float32, np.float64):
    x = rng.standard_normal((3, 2, 9, 9)).astype(dt)
    W = rng.standard_normal((4, 2, 3, 3)).astype(dt); b = rng.standard_normal(4).astype(dt)
    conv, rconv = pair(L.Convolution, RL.Convolution, W, b, 1, 1)
    pool, rpool = pair(L.Pooling, RL.Pooling, 2, 2, 2)
    y, ry = pool.forward(conv.forward(x)), rpool.forward(rconv.forward(x))
    d = rng.standard_normal(y.shape).astype(dt)
    dx, rdx = conv.backward(pool.backward(d)), rconv.backward(rpool.backward(d))
    # Convolution -> Relu -> Pooling as one kernel (2x2 windows: the vector code), wide rows.
    xw = rng.standard_normal((2, 2, 10, 37)).astype(dt)
    rrelu = RL.Relu()
    pool2, rpool2 = L.Pooling(2, 2, 2), RL.Pooling(2, 2, 2)
    yf, arg = fastnn.ops.conv2d_relu_maxpool_forward(xw, W, b, 1, 1)
    rconv2 = RL.Convolution(W.copy(), b.copy(), 1, 1)
    ryf = rpool2.forward(rrelu.forward(rconv2.forward(xw)))
    df = rng.standard_normal(yf.shape).astype(dt)
    dxf, dWf, _ = fastnn.ops.conv2d_relu_maxpool_backward(df, arg, yf, xw, W, b, 1, 1)
    rdxf = rconv2.backward(rrelu.backward(rpool2.backward(df)))
    xs = rng.standard_normal((2, 5, 3)).astype(dt)
    Wx, Wh = rng.standard_normal((3, 16)).astype(dt), rng.standard_normal((4, 16)).astype(dt)
    bl = rng.standard_normal(16).astype(dt)
    lstm, rlstm = pair(TL.TimeLSTM, RTL.TimeLSTM, Wx, Wh, bl)
    hs, rhs = lstm.forward(xs), rlstm.forward(xs)
    dh = rng.standard_normal(hs.shape).astype(dt)
    dxs, rdxs = lstm.backward(dh), rlstm.backward(dh)
    s, rs = L.SoftmaxWithLoss(), RL.SoftmaxWithLoss()
    z = rng.standard_normal((6, 10)).astype(dt); t = rng.integers(0, 10, 6)
    loss, rloss = s.forward(z, t), rs.forward(z, t)
    for a, r in [(y, ry), (dx, rdx), (conv.dW, rconv.dW), (yf, ryf), (dxf, rdxf), (dWf, rconv2.dW),
                 (pool2.forward(xw), rpool2.forward(xw)), (hs, rhs), (dxs, rdxs),
                 (lstm.grads[1], rlstm.grads[1]), (loss, rloss), (s.backward(), rs.backward())]:
        err = float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(r, np.float64))))
        scale = max(1.0, float(np.max(np.abs(r))))
        worst = max(worst, err / scale / (1e-5 if dt == np.float32 else 1e-10))
info = fastnn.build_info()
print(json.dumps({k: info[k] for k in ("cpu_level", "cpu_level_detected", "cpu_levels_compiled")}
                 | {"worst": worst}))
"""


def run_child(level, code=CHILD):
    """``code`` in a fresh interpreter with FASTNN_CPU=level (unset for None), importing the
    fastnn under test: its folder goes first on PYTHONPATH, and the child runs outside the
    repository, whose fastnn/ `python -c` would otherwise find first."""
    env = dict(os.environ)
    env.pop("FASTNN_CPU", None)
    if level is not None:
        env["FASTNN_CPU"] = level
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tempfile.gettempdir())


def info():
    return fastnn.build_info()


def test_build_info_reports_levels():
    i = info()
    compiled = i["cpu_levels_compiled"]
    assert compiled == ["native"] or compiled[0] == "baseline", compiled
    assert i["cpu_level"] in compiled
    assert i["cpu_level_detected"] in X86_LEVELS + ["below x86-64-v2"]
    if compiled != ["native"] and "FASTNN_CPU" not in os.environ:
        # Without a cap: the highest compiled level the CPU supports.
        usable = [lv for lv in compiled if X86_LEVELS.index(lv)
                  <= X86_LEVELS.index(i["cpu_level_detected"])]
        assert i["cpu_level"] == usable[-1]


def supported_levels():
    i = info()
    if i["cpu_levels_compiled"] == ["native"]:
        return ["native"]
    top = X86_LEVELS.index(i["cpu_level_detected"])
    return [lv for lv in i["cpu_levels_compiled"] if X86_LEVELS.index(lv) <= top]


@pytest.mark.parametrize("level", X86_LEVELS)
def test_each_level_matches_the_reference(level):
    """FASTNN_CPU=level runs that level (or the highest below it that this CPU supports), and
    its conv, pooling, LSTM and softmax-with-loss agree with fastnn.reference."""
    i = info()
    if i["cpu_levels_compiled"] == ["native"]:
        pytest.skip("a FASTNN_NATIVE build has one level, native")
    r = run_child(level)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    cap = X86_LEVELS.index(level)
    usable = [lv for lv in supported_levels() if X86_LEVELS.index(lv) <= cap]
    assert out["cpu_level"] == usable[-1]
    assert out["worst"] < 50, out  # in units of the dtype's tolerance (1e-5 / 1e-10 relative)


def test_no_cap_when_empty():
    r = run_child("", "import fastnn; print(fastnn.build_info()['cpu_level'])")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == supported_levels()[-1]


def test_unknown_level_fails_the_import_with_the_choices():
    r = run_child("avx3", "import fastnn")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "FASTNN_CPU='avx3' is not a level of this build" in last, r.stderr
    for lv in info()["cpu_levels_compiled"]:
        assert lv in last


def test_a_cpu_below_the_baseline_gets_a_message_not_sigill(tmp_path, monkeypatch):
    """fastnn/__init__.py checks /proc/cpuinfo against the build's needs before loading _C."""
    import types

    req = types.SimpleNamespace(NAME="x86-64-v2 (SSE4.2, POPCNT)",
                                FLAGS=("pni", "ssse3", "sse4_1", "sse4_2", "popcnt", "cx16",
                                       "lahf_lm"))
    monkeypatch.setitem(sys.modules, "fastnn._cpu_requirements", req)
    monkeypatch.setattr(fastnn, "_cpu_requirements", req, raising=False)
    core2 = tmp_path / "cpuinfo"
    core2.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 pni ssse3 cx16 lahf_lm\n")
    with pytest.raises(ImportError, match=r"needs an x86-64-v2 \(SSE4.2, POPCNT\) CPU; this "
                                          r"one lacks sse4_1, sse4_2, popcnt"):
        fastnn._check_cpu(str(core2))
    nehalem = tmp_path / "cpuinfo2"
    nehalem.write_text("flags\t: fpu sse sse2 pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm\n")
    fastnn._check_cpu(str(nehalem))  # enough
    monkeypatch.setattr(req, "FLAGS", ())
    fastnn._check_cpu(str(core2))  # a native or non-x86 build checks nothing
