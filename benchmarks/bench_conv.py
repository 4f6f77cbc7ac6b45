"""Convolution and pooling, forward + backward: fastnn vs fastnn.reference (NumPy).

    PYTHONPATH=. python benchmarks/bench_conv.py [--threads N] [--repeats R]

A and B run interleaved in one process, median of the repeats after a warm-up; the best run
is printed too, as medians on a shared machine include time lost to other processes.
"""

import argparse
import time

import numpy as np

import fastnn
from fastnn import layers
from fastnn.reference import layers as reference


def step(layer, x):
    out = layer.forward(x)
    layer.backward(np.ones_like(out))


def compare(name, make, x, repeats):
    a, b = make(layers), make(reference)
    step(a, x), step(b, x)
    ta, tb = [], []
    for _ in range(repeats):
        for layer, times in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            step(layer, x)
            times.append(time.perf_counter() - t0)
    ma, mb = np.median(ta) * 1e3, np.median(tb) * 1e3
    ba, bb = min(ta) * 1e3, min(tb) * 1e3
    print(f"{name:<44} fastnn {ma:7.2f} ms (best {ba:6.2f})   reference {mb:7.2f} ms "
          f"(best {bb:6.2f})   speed-up {mb / ma:5.1f}x (best/best {bb / ba:5.1f}x)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=fastnn.get_num_threads())
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    fastnn.set_num_threads(args.threads)
    print(f"threads: {fastnn.get_num_threads()}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 1, 28, 28)).astype(np.float32)
    W = (0.01 * rng.standard_normal((30, 1, 5, 5))).astype(np.float32)
    b = np.zeros(30, np.float32)
    compare("Convolution x(100,1,28,28) W(30,1,5,5) f32", lambda m: m.Convolution(W, b), x,
            args.repeats)
    x2 = rng.standard_normal((32, 16, 32, 32)).astype(np.float32)
    W2 = (0.01 * rng.standard_normal((32, 16, 3, 3))).astype(np.float32)
    b2 = np.zeros(32, np.float32)
    compare("Convolution x(32,16,32,32) W(32,16,3,3) p1", lambda m: m.Convolution(W2, b2, 1, 1),
            x2, args.repeats)
    h = rng.standard_normal((100, 30, 24, 24)).astype(np.float32)
    compare("Pooling 2x2/2 on (100,30,24,24) f32", lambda m: m.Pooling(2, 2, 2), h, args.repeats)
    compare("AvgPooling 2x2/2 on (100,30,24,24) f32", lambda m: m.AvgPooling(2, 2, 2), h,
            args.repeats)


if __name__ == "__main__":
    main()
