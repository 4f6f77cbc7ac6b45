"""fastnn against another build of itself: the table's fastnn workloads, each build in its own
processes, processes alternated (A, B, A, B, ...), medians over rounds with their spread.

    python -m benchmarks.compare_builds NAME=DIR [NAME=DIR ...] [--rounds 5] [--threads 2]
                                        [--clock wall|cpu] [--env NAME=VAR=VALUE ...]
                                        [--json out.json]

Each DIR holds a built ``fastnn`` package (a source tree after .ci/dev_build.sh, or a
site-packages folder); --env sets a variable for one build's processes only (for example
``--env portable-avx2=FASTNN_CPU=avx2`` with ``portable-avx2=DIR``). The ratio column is each
build's time over the first build's (below 1: faster).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

F32 = np.float32


def _workloads():
    """{name: step()} on fixed inputs, float32 unless the name says float64."""
    import fastnn.layers as L
    import fastnn.time_layers as TL
    from fastnn.models import DeepConvNet, SimpleConvNet, d2l_mlp
    from fastnn.optim import SGD, Adam

    rng = np.random.default_rng(0)

    def train(build, batch, shape, opt):
        np.random.seed(0)
        net = build()
        x = rng.random((batch,) + shape, dtype=F32)
        t = rng.integers(0, 10, batch)

        def step():
            opt.update(net.params, net.gradient(x, t))
        return step

    def layer(lyr, x):
        y = lyr.forward(x)
        d = np.ones_like(y)

        def step():
            lyr.forward(x)
            lyr.backward(d.copy())
        return step

    def conv(N, C, H, FN, k, stride, pad):
        W = (0.01 * rng.standard_normal((FN, C, k, k))).astype(F32)
        return layer(L.Convolution(W, np.zeros(FN, F32), stride, pad),
                     rng.standard_normal((N, C, H, H)).astype(F32))

    def recurrent(cls, gates, N, T, D, H):
        Wx = (0.1 * rng.standard_normal((D, gates * H))).astype(F32)
        Wh = (0.1 * rng.standard_normal((H, gates * H))).astype(F32)
        return layer(cls(Wx, Wh, np.zeros(gates * H, F32)),
                     rng.standard_normal((N, T, D)).astype(F32))

    def softmax(N, C):
        s = L.SoftmaxWithLoss()
        x = rng.standard_normal((N, C)).astype(F32)
        t = rng.integers(0, C, N)

        def step():
            s.forward(x, t)
            s.backward()
        return step

    return {
        "SimpleConvNet step, batch 100": train(lambda: SimpleConvNet(dtype=F32), 100,
                                               (1, 28, 28), Adam()),
        "SimpleConvNet step float64": train(lambda: SimpleConvNet(), 100, (1, 28, 28), Adam()),
        "MLP 784-256-10 step, batch 256": train(lambda: d2l_mlp(dtype=F32), 256, (784,),
                                                SGD(lr=0.1)),
        "DeepConvNet step, batch 100": train(lambda: DeepConvNet(dtype=F32), 100, (1, 28, 28),
                                             Adam()),
        "conv 100x1x28x28, 30 5x5": conv(100, 1, 28, 30, 5, 1, 0),
        "conv 8x3x224x224, 64 7x7 s2 p3": conv(8, 3, 224, 64, 7, 2, 3),
        "maxpool 2x2 s2 100x30x24x24": layer(L.Pooling(2, 2, 2),
                                             rng.standard_normal((100, 30, 24, 24)).astype(F32)),
        "maxpool 3x3 s2 p1 32x64x112x112": layer(
            L.Pooling(3, 3, 2, 1), rng.standard_normal((32, 64, 112, 112)).astype(F32)),
        "relu 100x30x24x24": layer(L.Relu(), rng.standard_normal((100, 30, 24, 24)).astype(F32)),
        "batchnorm 100x4320": layer(L.BatchNormalization(np.ones(4320, F32),
                                                         np.zeros(4320, F32)),
                                    rng.standard_normal((100, 4320)).astype(F32)),
        "softmax-cross-entropy 100x10": softmax(100, 10),
        "softmax-cross-entropy 256x1000": softmax(256, 1000),
        "affine 4320->100, batch 100": layer(
            L.Affine((0.01 * rng.standard_normal((4320, 100))).astype(F32), np.zeros(100, F32)),
            rng.standard_normal((100, 4320)).astype(F32)),
        "LSTM small N32 T50 D64 H128": recurrent(TL.TimeLSTM, 4, 32, 50, 64, 128),
        "GRU small N32 T50 D64 H128": recurrent(TL.TimeGRU, 3, 32, 50, 64, 128),
        "RNN small N32 T50 D64 H128": recurrent(TL.TimeRNN, 1, 32, 50, 64, 128),
        "LSTM large N20 T35 D650 H650": recurrent(TL.TimeLSTM, 4, 20, 35, 650, 650),
    }


def child(threads, repeats, min_time, clock):
    """One process of one build: median seconds of each workload, as JSON on stdout."""
    import fastnn

    now = {"wall": time.perf_counter, "cpu": time.process_time}[clock]

    fastnn.set_num_threads(threads)
    out = {"_build": {k: fastnn.build_info().get(k) for k in ("cpu_level", "cpu_levels_compiled")}}
    out["_build"]["file"] = fastnn.__file__
    for name, step in _workloads().items():
        step()
        step()
        t0 = now()
        step()
        inner = max(1, int(min_time / max(now() - t0, 1e-6)))
        samples = []
        for _ in range(repeats):
            t0 = now()
            for _ in range(inner):
                step()
            samples.append((now() - t0) / inner)
        out[name] = statistics.median(samples)
    print(json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("builds", nargs="*", help="NAME=DIR, the first is the baseline of the ratios")
    ap.add_argument("--rounds", type=int, default=5, help="processes per build, alternated")
    ap.add_argument("--repeats", type=int, default=5, help="samples per workload per process")
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds per sample at least")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: the process's CPU time, which other load on the machine disturbs "
                         "far less than wall time; meaningful with --threads 1")
    ap.add_argument("--env", action="append", default=[], help="NAME=VAR=VALUE for one build")
    ap.add_argument("--json", help="write every round's figures here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.threads, a.repeats, a.min_time, a.clock)
        return
    builds = [b.split("=", 1) for b in a.builds]
    if len(builds) < 2 or any(len(b) != 2 for b in builds):
        ap.error("give at least two builds as NAME=DIR")
    extra = {}
    for e in a.env:
        name, var, value = e.split("=", 2)
        extra.setdefault(name, {})[var] = value
    rounds = {name: [] for name, _ in builds}
    for r in range(a.rounds):
        for name, path in builds if r % 2 == 0 else builds[::-1]:
            # The child runs this file as a script, so that only DIR provides fastnn.
            env = dict(os.environ, PYTHONPATH=os.path.abspath(path), OPENBLAS_THREAD_TIMEOUT="4",
                       **extra.get(name, {}))
            res = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--child", "--threads",
                 str(a.threads), "--repeats", str(a.repeats), "--min-time", str(a.min_time),
                 "--clock", a.clock],
                env=env, capture_output=True, text=True, check=True)
            rounds[name].append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}/{a.rounds} {name}: {rounds[name][-1]['_build']}", flush=True)
    first = builds[0][0]
    names = [k for k in rounds[first][0] if not k.startswith("_")]
    header = "| workload | " + " | ".join(f"{n} ms (min-max)" for n, _ in builds) + " | " + \
        " | ".join(f"{n}/{first}" for n, _ in builds[1:]) + " |"
    print(header)
    print("|---" * (1 + 2 * len(builds) - 1) + "|")
    for w in names:
        med = {n: statistics.median(x[w] for x in rounds[n]) for n, _ in builds}
        cells = [f"{med[n] * 1e3:.3f} ({min(x[w] for x in rounds[n]) * 1e3:.2f}-"
                 f"{max(x[w] for x in rounds[n]) * 1e3:.2f})" for n, _ in builds]
        ratios = [f"{med[n] / med[first]:.3f}" for n, _ in builds[1:]]
        print(f"| {w} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"builds": dict(builds), "env": extra, "threads": a.threads, "clock": a.clock,
                       "rounds": rounds}, f, indent=1)


if __name__ == "__main__":
    main()
