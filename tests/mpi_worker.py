"""Programs that tests/test_distributed.py runs under ``mpiexec -n 2`` (and some on 1 process).

    python tests/mpi_worker.py train MODEL DTYPE PER_RANK_BATCH STEPS OUT.npz
    python tests/mpi_worker.py basenn PER_RANK_BATCH EPOCHS OUT.npz
    python tests/mpi_worker.py interrupt | streams | fake_cupy | fail | hang | mismatch

``train`` trains a small book network with fastnn.trainer.Trainer for STEPS steps on 83 images
(so that the last global batch is uneven), checks after every step that all ranks hold the same
parameters, and writes rank 0's parameters, losses and accuracies to OUT.npz.
"""

import os
import signal
import sys
import time

import numpy as np

from fastnn import distributed as dist

N_TRAIN, N_TEST = 83, 41


def data(shape, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N_TRAIN + N_TEST,) + shape).astype(dtype)
    t = rng.integers(0, 10, N_TRAIN + N_TEST)
    return (x[:N_TRAIN], t[:N_TRAIN]), (x[N_TRAIN:], t[N_TRAIN:])


def build(model, dtype, hidden=20):
    from fastnn import models
    if model == "simple_convnet":
        return models.SimpleConvNet(input_dim=(1, 10, 10), hidden_size=hidden, dtype=dtype,
                                    conv_param={"filter_num": 4, "filter_size": 3, "pad": 0,
                                                "stride": 1}), (1, 10, 10)
    return models.MultiLayerNet(36, [hidden, hidden], 10, activation="relu",
                                weight_init_std="he", dtype=dtype), (36,)


def same_on_all_ranks(params):
    """Every rank's parameters equal rank 0's, bit for bit."""
    mine = np.concatenate([np.ravel(params[k]).astype(np.float64) for k in sorted(params)])
    ref = dist.broadcast_object(mine)
    return bool(np.array_equal(mine, ref))


def cmd_train(model, dtype, batch, steps, out):
    from fastnn.trainer import Trainer
    dtype = np.dtype(dtype)
    np.random.seed(3)
    net, shape = build(model, dtype)
    (x, t), (xt, tt) = data(shape, dtype)
    tr = Trainer(net, x, t, xt, tt, epochs=100, mini_batch_size=int(batch), optimizer="sgd",
                 optimizer_param={"lr": 0.1}, verbose=False)
    for _ in range(int(steps)):
        tr.train_step()
        if not same_on_all_ranks(net.params):
            raise AssertionError(f"rank {dist.rank()}: parameters differ from rank 0's after "
                                 f"step {tr.current_iter}")
    acc = tr._accuracy(xt, tt)
    if dist.is_root():
        np.savez(out, loss=np.array(tr.train_loss_list), acc=np.array([acc]),
                 train_acc=np.array(tr.train_acc_list), size=np.array([dist.size()]),
                 **{f"param_{k}": v for k, v in net.params.items()})


def cmd_basenn(batch, epochs, out):
    from fastnn.basenn import nn
    import tempfile
    x = np.random.default_rng(5).standard_normal((N_TRAIN, 12)).astype(np.float64)
    y = (x[:, :3].sum(1) > 0).astype(np.int64) + (x[:, 3] > 1)
    m = nn(dtype=np.float64)
    m.set_seed(11)
    m.add("linear", size=(12, 16), activation="relu")
    m.add("linear", size=(16, 3), activation="softmax")
    m.add(optimizer="SGD")
    m.load_dataset(x, y, batch_size=int(batch), train_val_ratio=0.8)
    m.train(lr=0.2, epochs=int(epochs), save_fold=tempfile.mkdtemp(), verbose=False)
    params = m._params()
    if not same_on_all_ranks(params):
        raise AssertionError(f"rank {dist.rank()}: basenn parameters differ from rank 0's")
    if dist.is_root():
        hist = m.history[-1]
        np.savez(out, loss=np.array([h["loss"] for h in m.history]),
                 acc=np.array([hist["acc"], hist["val_acc"]]),
                 **{f"param_{k}": v for k, v in params.items()})


def cmd_interrupt():
    """Ctrl-C (SIGINT) reaching rank 1 only, between steps 2 and 3: every rank stops after
    step 3, the next step, where the ranks agree on it."""
    from fastnn.trainer import Trainer
    np.random.seed(3)
    net, shape = build("multilayer", np.float64)
    (x, t), (xt, tt) = data(shape, np.float64)
    tr = Trainer(net, x, t, xt, tt, epochs=100, mini_batch_size=4, verbose=False)

    def ask_to_stop(trainer):
        if trainer.current_iter == 2 and dist.rank() == 1:
            os.kill(os.getpid(), signal.SIGINT)
    try:
        tr.train(on_step_end=ask_to_stop)
    except KeyboardInterrupt:
        print(f"rank {dist.rank()} stopped after step {tr.current_iter}", flush=True)


def cmd_streams():
    """The random draws (dropout masks) each rank makes after building a Trainer."""
    from fastnn.trainer import Trainer
    np.random.seed(3)
    net, shape = build("multilayer", np.float64)
    (x, t), (xt, tt) = data(shape, np.float64)
    Trainer(net, x, t, xt, tt, epochs=1, mini_batch_size=4, verbose=False)
    print(f"rank {dist.rank()}: {np.random.rand(3).round(6).tolist()}", flush=True)


def cmd_fake_cupy():
    """allreduce_grads and broadcast_params on arrays that look like CuPy's (a NumPy subclass
    in a module named cupy: no GPU needed), through host memory; checks the averages."""
    import types
    cupy = types.ModuleType("cupy")

    class ndarray(np.ndarray):
        def set(self, host):
            self[...] = host

        def get(self):
            return np.array(self)

    ndarray.__module__ = "cupy"
    cupy.ndarray = ndarray
    cupy.empty = lambda n, dtype: np.empty(n, dtype).view(ndarray)
    cupy.asarray = lambda a, dtype=None: np.array(a, dtype=dtype).view(ndarray)
    cupy.asnumpy = lambda a: np.array(a)
    sys.modules["cupy"] = cupy
    dist.init()
    dist._gpu_path_available = lambda: "host"
    r = dist.rank()
    grads = {"W": cupy.asarray(np.full((3, 4), r + 1.0, np.float32)),
             "b": cupy.asarray(np.arange(5.0) * (r + 1))}
    red = dist.allreduce_grads(grads, count=r + 1, values=(2.0 * (r + 1),))
    # weights 1 and 2: W = (1*1 + 2*2) / 3, b = arange * 5/3
    assert type(grads["W"]) is ndarray and grads["W"].dtype == np.float32
    np.testing.assert_allclose(np.asarray(grads["W"]), 5 / 3, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grads["b"]), np.arange(5.0) * 5 / 3, rtol=1e-12)
    assert red.count == 3 and red.values.tolist() == [6.0]
    params = [cupy.asarray(np.full(4, float(r)))]
    dist.broadcast_params(params)
    assert np.asarray(params[0]).tolist() == [0.0] * 4
    order = dist.Sharder(4).epoch_order(cupy.asarray(np.arange(6) + 10 * r))
    assert type(order) is ndarray and np.asarray(order).tolist() == list(range(6))
    print(f"rank {r}: ok ({dist.info()['gpu_allreduce']})", flush=True)


def cmd_fault(mode):
    from fastnn.trainer import Trainer
    np.random.seed(3)
    hidden = 20 + (dist.init()[0] if mode == "mismatch" else 0)
    net, shape = build("multilayer", np.float64, hidden)
    (x, t), (xt, tt) = data(shape, np.float64)
    tr = Trainer(net, x, t, xt, tt, epochs=100, mini_batch_size=4, verbose=False)
    for step in range(6):
        if step == 2 and dist.rank() == 1:
            if mode == "fail":
                raise RuntimeError("injected failure on rank 1")
            if mode == "hang":
                time.sleep(600)
        tr.train_step()
    print(f"rank {dist.rank()}: finished without noticing the fault", flush=True)


def cmd_dlfs2(kind, batch, out):
    """vol. 2's Trainer (TwoLayerNet on spiral data, clipping) or RnnlmTrainer (SimpleRnnlm on a
    generated corpus) for one epoch with per-rank batch/rows ``batch``; rank 0 writes the
    parameters and the loss/perplexity list."""
    from fastnn.dlfs2.optimizer import SGD
    from fastnn.dlfs2.trainer import RnnlmTrainer, Trainer
    np.random.seed(5)
    batch = int(batch)
    if kind == "trainer":
        from fastnn.dlfs2.dataset import spiral
        from fastnn.dlfs2.two_layer_net import TwoLayerNet
        x, t = spiral.load_data()
        model = TwoLayerNet(input_size=2, hidden_size=10, output_size=3)
        tr = Trainer(model, SGD(lr=1.0))
        tr.fit(x, t, max_epoch=2, batch_size=batch, max_grad=1.0, eval_interval=2)
        history = tr.loss_list
    else:
        from fastnn.dlfs2.simple_rnnlm import SimpleRnnlm
        corpus = np.random.default_rng(0).integers(0, 12, 400)
        model = SimpleRnnlm(12, 8, 8)
        tr = RnnlmTrainer(model, SGD(lr=0.5))
        tr.fit(corpus[:-1], corpus[1:], max_epoch=2, batch_size=batch, time_size=5,
               max_grad=0.25, eval_interval=1)
        history = tr.ppl_list
    if not same_on_all_ranks({str(i): p for i, p in enumerate(model.params)}):
        raise AssertionError(f"rank {dist.rank()}: parameters differ from rank 0's")
    if dist.is_root():
        np.savez(out, size=[dist.size()], history=np.array(history, dtype=np.float64),
                 **{f"param_{i}": p for i, p in enumerate(model.params)})


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "train":
        cmd_train(*args)
    elif cmd == "dlfs2":
        cmd_dlfs2(*args)
    elif cmd == "basenn":
        cmd_basenn(*args)
    elif cmd == "interrupt":
        cmd_interrupt()
    elif cmd == "streams":
        cmd_streams()
    elif cmd == "fake_cupy":
        cmd_fake_cupy()
    else:
        cmd_fault(cmd)
