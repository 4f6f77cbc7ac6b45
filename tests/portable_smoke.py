"""Parity smoke test of an installed fastnn, small enough for CPU emulation (qemu-user).

    python tests/portable_smoke.py [--save out.npz] [--compare other.npz] [--expect-level L]

Runs the kernels where the instruction set matters (convolution forward and backward, max
pooling, affine, TimeLSTM forward and backward, softmax-with-loss) in float32 and float64
against ``fastnn.reference`` (the plain-NumPy oracle, same classes) and prints the worst error
of each against its tolerance. ``--save`` writes every fastnn output to an .npz file;
``--compare`` checks them against such a file written on another CPU (or another build): both
are within one tolerance of the reference, so within two of each other. ``--expect-level``
checks the kernel level ``fastnn.build_info()`` reports, where it reports one. Prints the
build's ``cpu_levels_compiled``/``cpu_level_detected``/``cpu_level`` and OpenBLAS's core.
Exits 1 when a check fails, so ``.ci/wheels.sh`` can run it from outside the source tree
against each installed wheel, natively and under ``qemu-x86_64 -cpu ...`` (~20 s under
``-cpu Haswell``, ~3 s under ``-cpu Nehalem``, well under a second natively).

Standalone on purpose: it imports only NumPy and fastnn (not the test suite's conftest, which
needs pytest and hypothesis).
"""

import argparse
import os
import sys
import time

import numpy as np

# Relative tolerances per dtype as in tests/conftest.py (DESIGN.md convention 11): float64
# ~1e-10, float32 ~1e-5, both scaled by the square root of the reduction length; absolute
# tolerances scale with the largest value compared.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def tolerance(dtype, reduce_len):
    rtol = RTOL[np.dtype(dtype)] * max(1.0, np.sqrt(reduce_len))
    atol = rtol * (1.0 if np.dtype(dtype) == np.float32 else 1e-2)
    return rtol, atol


class Checker:
    def __init__(self):
        self.failures = []
        self.outputs = {}
        self.reduce_len = {}

    def check(self, name, actual, expected, dtype, reduce_len, factor=1.0):
        """fastnn's `actual` against `expected` (the reference, or a saved run)."""
        actual, expected = np.asarray(actual), np.asarray(expected)
        rtol, atol = (factor * t for t in tolerance(dtype, reduce_len))
        if actual.shape != expected.shape or actual.dtype != np.dtype(dtype):
            self.fail(name, f"got {actual.dtype}{actual.shape}, expected "
                            f"{np.dtype(dtype)}{expected.shape}")
            return
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        allowed = atol * scale + rtol * np.abs(expected.astype(np.float64))
        ok = bool(np.all(err <= allowed)) and np.all(np.isfinite(actual))
        worst = float(np.max(err / np.maximum(allowed, np.finfo(np.float64).tiny), initial=0.0))
        print(f"  {'ok  ' if ok else 'FAIL'} {name:<40} max err {float(np.max(err, initial=0)):.2e}"
              f" ({worst:.2g} of tolerance, rtol {rtol:.1e})")
        if not ok:
            self.fail(name, f"max error {float(np.max(err)):.3e} over tolerance")

    def fail(self, name, why):
        print(f"  FAIL {name}: {why}")
        self.failures.append(f"{name}: {why}")

    def parity(self, name, actual, expected, dtype, reduce_len):
        self.outputs[name] = np.asarray(actual)
        self.reduce_len[name] = reduce_len
        self.check(name, actual, expected, dtype, reduce_len)


def conv_and_pool(c, fl, ref, dtype, rng):
    # (N, C, H, W, FN, FH, FW, stride, pad): a padded 3x3, a strided non-square window, and
    # one whose GEMM (576x32x144) is over OpenBLAS's small-matrix limit (M*N*K > 1e6), where
    # fastnn's GEMM may go in chunks of rows (csrc/core/blas.h). Kept small: under qemu-user,
    # AVX2 code runs ~40x slower than SSE code (a 100x784x256 sgemm took 5 s under -cpu Haswell).
    for N, C, H, W, FN, FH, FW, stride, pad in [(4, 3, 12, 12, 8, 3, 3, 1, 1),
                                                (3, 2, 11, 9, 5, 4, 3, 2, 0),
                                                (4, 16, 12, 12, 32, 3, 3, 1, 1)]:
        tag = f"{dtype.name} conv {C}->{FN} {FH}x{FW}s{stride}p{pad}"
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        Wt = (0.3 * rng.standard_normal((FN, C, FH, FW))).astype(dtype)
        b = rng.standard_normal(FN).astype(dtype)
        mine, oracle = fl.Convolution(Wt, b, stride, pad), ref.Convolution(Wt.copy(), b.copy(),
                                                                           stride, pad)
        y, y_ref = mine.forward(x), oracle.forward(x.copy())
        K = C * FH * FW
        c.parity(f"{tag} forward", y, y_ref, dtype, K)
        dout = rng.standard_normal(y_ref.shape).astype(dtype)
        dx, dx_ref = mine.backward(dout), oracle.backward(dout.copy())
        c.parity(f"{tag} dx", dx, dx_ref, dtype, FN * FH * FW)
        rows = y_ref.size // FN
        c.parity(f"{tag} dW", mine.dW, oracle.dW, dtype, rows)
        c.parity(f"{tag} db", mine.db, oracle.db, dtype, rows)

    # Max pooling: 2x2 stride 2, and overlapping 3x3 stride 2 with (-inf) padding.
    x = rng.standard_normal((4, 6, 12, 12)).astype(dtype)
    for ph, pw, stride, pad in [(2, 2, 2, 0), (3, 3, 2, 1)]:
        tag = f"{dtype.name} maxpool {ph}x{pw}s{stride}p{pad}"
        mine, oracle = fl.Pooling(ph, pw, stride, pad), ref.Pooling(ph, pw, stride, pad)
        y, y_ref = mine.forward(x), oracle.forward(x.copy())
        c.parity(f"{tag} forward", y, y_ref, dtype, 1)
        dout = rng.standard_normal(y_ref.shape).astype(dtype)
        c.parity(f"{tag} dx", mine.backward(dout), oracle.backward(dout.copy()), dtype, ph * pw)


def affine(c, fl, ref, dtype, rng):
    for N, D, M in [(24, 200, 64), (32, 256, 160)]:
        tag = f"{dtype.name} affine {N}x{D}->{M}"
        x = rng.standard_normal((N, D)).astype(dtype)
        W = (0.1 * rng.standard_normal((D, M))).astype(dtype)
        b = rng.standard_normal(M).astype(dtype)
        mine, oracle = fl.Affine(W, b), ref.Affine(W.copy(), b.copy())
        c.parity(f"{tag} forward", mine.forward(x), oracle.forward(x.copy()), dtype, D)
        dout = rng.standard_normal((N, M)).astype(dtype)
        c.parity(f"{tag} dx", mine.backward(dout), oracle.backward(dout.copy()), dtype, M)
        c.parity(f"{tag} dW", mine.dW, oracle.dW, dtype, N)
        c.parity(f"{tag} db", mine.db, oracle.db, dtype, N)


def lstm(c, tl, ref_tl, dtype, rng):
    for N, T, D, H in [(4, 7, 10, 16), (16, 6, 32, 64)]:
        tag = f"{dtype.name} TimeLSTM N{N} H{H}"
        xs = rng.standard_normal((N, T, D)).astype(dtype)
        Wx = (0.3 * rng.standard_normal((D, 4 * H))).astype(dtype)
        Wh = (0.3 * rng.standard_normal((H, 4 * H))).astype(dtype)
        b = (0.1 * rng.standard_normal(4 * H)).astype(dtype)
        mine = tl.TimeLSTM(Wx, Wh, b)
        oracle = ref_tl.TimeLSTM(Wx.copy(), Wh.copy(), b.copy())
        hs, hs_ref = mine.forward(xs), oracle.forward(xs.copy())
        # Errors compound over the T steps of the recurrence: reductions of ~T*(D+H).
        K = T * (D + H)
        c.parity(f"{tag} forward", hs, hs_ref, dtype, K)
        dhs = rng.standard_normal(hs_ref.shape).astype(dtype)
        dxs, dxs_ref = mine.backward(dhs), oracle.backward(dhs.copy())
        c.parity(f"{tag} dxs", dxs, dxs_ref, dtype, K * 4)
        for name, g, g_ref in zip(["dWx", "dWh", "db"], mine.grads, oracle.grads):
            c.parity(f"{tag} {name}", g, g_ref, dtype, K * N * 4)


def softmax_with_loss(c, fl, ref, dtype, rng):
    N, C = 32, 10
    tag = f"{dtype.name} softmax-with-loss"
    x = (3 * rng.standard_normal((N, C))).astype(dtype)
    t = rng.integers(0, C, N)
    mine, oracle = fl.SoftmaxWithLoss(), ref.SoftmaxWithLoss()
    loss, loss_ref = mine.forward(x, t), oracle.forward(x.copy(), t.copy())
    c.parity(f"{tag} loss", np.asarray(loss, dtype=dtype), np.asarray(loss_ref, dtype=dtype),
             dtype, N * C)
    c.parity(f"{tag} dx", mine.backward(), oracle.backward(), dtype, C)


LEVELS = ["baseline", "avx2", "avx512"]  # the values of FASTNN_CPU, lowest first


def check_level(c, info, expect):
    """build_info()['cpu_level'] is `expect`, or with 'auto' the lower of the cap in
    $FASTNN_CPU and the level the CPU supports (cpu_level_detected)."""
    if "cpu_level" not in info:
        print(f"  cpu_level not reported by this build: --expect-level {expect} not checked")
        return
    if expect == "auto":
        cap, detected = os.environ.get("FASTNN_CPU"), info.get("cpu_level_detected")
        unknown = [x for x in (cap, detected) if x is not None and x not in LEVELS]
        if unknown or detected is None:
            c.fail("cpu_level", f"cannot work out the expected level from FASTNN_CPU={cap!r} "
                                f"and cpu_level_detected={detected!r} (levels: {LEVELS})")
            return
        expect = detected if cap is None else LEVELS[min(LEVELS.index(cap),
                                                         LEVELS.index(detected))]
    if info["cpu_level"] != expect:
        c.fail("cpu_level", f"{info['cpu_level']!r}, expected {expect!r}")
    else:
        print(f"  cpu_level {expect!r} as expected")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--save", help="write fastnn's outputs to this .npz file")
    ap.add_argument("--compare", help="check fastnn's outputs against this .npz file")
    ap.add_argument("--expect-level", help="fail unless build_info()['cpu_level'] is this; "
                    "'auto': the lower of $FASTNN_CPU and cpu_level_detected (checked only "
                    "where the build reports a level)")
    args = ap.parse_args(argv)

    start = time.perf_counter()
    import fastnn
    import fastnn.layers as fl
    import fastnn.reference.layers as ref
    import fastnn.reference.time_layers as ref_tl
    import fastnn.time_layers as tl

    info = fastnn.build_info()
    print(f"fastnn {fastnn.__version__} from {os.path.dirname(fastnn.__file__)}")
    print(f"python {sys.version.split()[0]} at {sys.executable}, numpy {np.__version__}")
    for key in ("cpu_levels_compiled", "cpu_level_detected", "cpu_level"):
        print(f"  build_info {key}: {info[key] if key in info else '(not in this build)'}")
    print(f"  FASTNN_CPU={os.environ.get('FASTNN_CPU', '(unset)')}, "
          f"threads {info.get('num_threads')}, BLAS: {info.get('blas_config')}")

    c = Checker()
    if args.expect_level:
        check_level(c, info, args.expect_level)
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        rng = np.random.default_rng(20261206 + dtype.itemsize)
        conv_and_pool(c, fl, ref, dtype, rng)
        affine(c, fl, ref, dtype, rng)
        lstm(c, tl, ref_tl, dtype, rng)
        softmax_with_loss(c, fl, ref, dtype, rng)

    if args.compare:
        print(f"against {args.compare}:")
        saved = np.load(args.compare)
        missing = sorted(set(c.outputs) ^ set(saved.files))
        if missing:
            c.fail("compare", f"outputs differ in name: {missing}")
        for name, out in c.outputs.items():
            if name in saved.files:
                # Both runs are within one tolerance of the reference: within two of each other.
                c.check(f"{name} (saved)", out, saved[name], out.dtype, c.reduce_len[name],
                        factor=2.0)
    if args.save:
        np.savez(args.save, **c.outputs)
        print(f"saved {len(c.outputs)} outputs to {args.save}")

    took = time.perf_counter() - start
    if c.failures:
        print(f"portable_smoke: {len(c.failures)} FAILED ({took:.1f} s):", *c.failures,
              sep="\n  ")
        return 1
    print(f"portable_smoke: all {len(c.outputs)} checks passed ({took:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
