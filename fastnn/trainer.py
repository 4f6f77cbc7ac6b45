"""The book's Trainer (common/trainer.py): mini-batch training with per-epoch accuracies,
checkpoints that resume exactly, and a clean stop on Ctrl-C or a NaN loss."""

import contextlib
import json
import math
import signal
import sys
import threading
import time

import numpy as np

from . import _device, ops, optim

_OPTIMIZERS = {'sgd': optim.SGD, 'momentum': optim.Momentum, 'nesterov': optim.Nesterov,
               'adagrad': optim.AdaGrad, 'rmsprop': optim.RMSprop, 'adam': optim.Adam}


# Optimizer state: dicts of arrays keyed like params, and plain numbers.
_OPT_ARRAYS = ("v", "h", "m")
_OPT_SCALARS = ("lr", "momentum", "beta1", "beta2", "decay_rate", "iter")
CHECKPOINT_FORMAT = "fastnn.checkpoint"


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the parameters are those before that step."""


class Trainer:
    """Train ``network`` with mini-batches and record the book's three lists.

    ``train_loss_list`` holds one mini-batch loss per iteration, ``train_acc_list`` and
    ``test_acc_list`` one accuracy per epoch, measured at the end of the epoch (on the first
    ``evaluate_sample_num_per_epoch`` images when given). ``epoch_time_list`` holds the
    training seconds of each epoch (without the evaluation). Each epoch visits every image
    once in a fresh random order (``np.random``; seed it for repeatable runs). With
    ``verbose`` a tqdm progress bar shows the loss and images/s, and a line per epoch gives
    the accuracies.

    Differences from the book, all in what is measured rather than the API: the book samples
    batches with replacement, evaluates at the start of each epoch, and recomputes the loss
    after each update; here the loss is that of the forward pass that gave the gradients.

    On the GPU (CuPy ``x_train``/``t_train``, a network moved with ``network.to('cuda')``)
    the batches are gathered on the device, in the same order as on the CPU for the same
    ``np.random`` seed; the recorded losses and accuracies are Python floats either way.

    Stopping and resuming: ``train()`` takes Ctrl-C (SIGINT, in the main thread) at the end of
    the current step, so that the parameters, the optimizer's state and the counters agree,
    then raises KeyboardInterrupt (a second Ctrl-C interrupts at once). ``save_checkpoint``
    writes everything a resumed run needs (parameters, running statistics, optimizer state,
    NumPy's random state, the epoch's batch order, the lists) and ``load_checkpoint`` restores
    it, so that a seeded run interrupted and resumed ends with the same parameters as an
    uninterrupted one. A NaN or infinite loss raises :class:`TrainingDiverged` before the
    update (``stop_on_nan=False`` trains on as the book does).

    Under ``mpiexec`` (after :func:`fastnn.distributed.init`) the trainer is data-parallel:
    ``mini_batch_size`` is each rank's batch and one step consumes ``global_batch_size``
    images (default: ``mini_batch_size`` x the number of ranks), split between the ranks in
    rank 0's shuffled order; the gradients are averaged with one allreduce per step, so N ranks
    train like one process with the global batch. Rank 0's parameters are copied to all ranks
    at the start, the recorded loss is that of the global batch, the accuracies are computed
    with the images split between the ranks, BatchNorm running statistics are averaged at the
    end of each epoch, only rank 0 prints, and ``save_checkpoint`` writes on rank 0 only. A
    Ctrl-C (which mpiexec passes to every rank) stops all ranks after the same step.
    Without MPI, ``global_batch_size`` is simply the batch size.
    """

    def __init__(self, network, x_train, t_train, x_test, t_test,
                 epochs=20, mini_batch_size=100,
                 optimizer='SGD', optimizer_param={'lr': 0.01},
                 evaluate_sample_num_per_epoch=None, verbose=True, stop_on_nan=True,
                 global_batch_size=None):
        from . import distributed as dist

        self.network = network
        dist.init()  # a no-op outside mpiexec
        self._dist = dist.is_initialized()
        self._root = dist.is_root()  # True without MPI
        self.verbose = verbose and self._root
        self.stop_on_nan = stop_on_nan
        xp = ops.array_module("Trainer", x_train, t_train)
        if xp is not np:  # both on the device, so that batches are gathered there
            x_train, t_train = xp.asarray(x_train), xp.asarray(t_train)
        self._xp = xp
        self.x_train, self.t_train = x_train, t_train
        self.x_test, self.t_test = x_test, t_test
        self.epochs = int(epochs)
        self.batch_size = int(mini_batch_size)
        if self.batch_size < 1:
            raise ValueError(f"Trainer: mini_batch_size must be >= 1, got {mini_batch_size}")
        if global_batch_size is not None:  # images per step, all ranks together
            if int(global_batch_size) < dist.size():
                raise ValueError(f"Trainer: global_batch_size must be at least the number of "
                                 f"ranks ({dist.size()}), got {global_batch_size}")
            self.batch_size = int(global_batch_size)
        else:
            self.batch_size *= dist.size()
        self._sharder = dist.Sharder(self.batch_size)
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        if isinstance(optimizer, str):
            try:
                cls = _OPTIMIZERS[optimizer.lower()]
            except KeyError:
                raise ValueError(f"Trainer: unknown optimizer {optimizer!r} (choose from "
                                 f"{', '.join(_OPTIMIZERS)})") from None
            self.optimizer = cls(**optimizer_param)
        else:
            self.optimizer = optimizer  # an object with update(params, grads)

        self.train_size = x_train.shape[0]
        if self.train_size == 0:
            raise ValueError("Trainer: x_train is empty")
        self.iter_per_epoch = max(math.ceil(self.train_size / self.batch_size), 1)
        self.max_iter = self.epochs * self.iter_per_epoch
        self.current_iter = 0
        self.current_epoch = 0
        self.train_loss_list = []
        self.train_acc_list = []
        self.test_acc_list = []
        self.epoch_time_list = []
        self._order = None
        self._epoch_start = None
        self._bar = None
        self._stop_requested = False
        self._stop_agreed = False  # under MPI: a rank asked to stop, all stop after this step
        self.in_step = False  # True while a step is changing the parameters
        if self._dist:  # every rank starts from rank 0's parameters and running statistics
            from .models._base import layer_buffers
            dist.broadcast_params(network.params)
            dist.broadcast_params(layer_buffers(getattr(network, "layers", {})))
            dist.seed_rank(None, 0)  # dropout: each rank its own masks

    def _batch_indices(self):
        pos = self.current_iter % self.iter_per_epoch
        if self._order is None:
            order = self._sharder.epoch_order(np.random.permutation(self.train_size))
            self._order = self._xp.asarray(order)
        return self._order[pos * self.batch_size:(pos + 1) * self.batch_size]

    def _check_loss(self, loss):
        value = float(loss)
        if self.stop_on_nan and not math.isfinite(value):
            raise TrainingDiverged(
                f"the loss is {value} at epoch {self.current_epoch + 1}, iteration "
                f"{self.current_iter % self.iter_per_epoch + 1}/{self.iter_per_epoch}: training "
                f"diverged (try a smaller learning rate)")
        return value

    def train_step(self):
        """One mini-batch update; at the end of an epoch, evaluate and record accuracies."""
        pos = self.current_iter % self.iter_per_epoch
        if self._epoch_start is None or pos == 0:
            self._epoch_start = time.perf_counter()
            self._epoch_first = pos
        if self._bar is None:
            self._open_bar(pos)
        self.in_step = True
        if pos == 0:
            self._order = None
        idx = self._batch_indices()
        if self._dist:
            return self._distributed_step(pos, idx)
        x_batch, t_batch = self.x_train[idx], self.t_train[idx]
        grads = self.network.gradient(x_batch, t_batch)
        loss = getattr(self.network, 'last_loss', None)
        if loss is not None:
            try:
                loss = self._check_loss(loss)  # before the update: the parameters stay finite
            except TrainingDiverged:
                self.in_step = False
                raise
        self.optimizer.update(self.network.params, grads)
        if loss is None:  # a network without last_loss (e.g. the book's own): as the book does
            loss = self._check_loss(self.network.loss(x_batch, t_batch))
        self._finish_step(pos, loss)

    def _distributed_step(self, pos, idx):
        """This rank's shard of the global batch; gradients averaged over the ranks weighted
        by their shard sizes, together with the loss and the stop flag (one allreduce)."""
        from . import distributed as dist

        idx = self._sharder.shard(idx)
        n = len(idx)
        x_batch, t_batch = self.x_train[idx], self.t_train[idx]
        if n:
            grads = self.network.gradient(x_batch, t_batch)
            loss = getattr(self.network, 'last_loss', None)
        else:  # fewer images than ranks in the last batch: this rank contributes nothing
            grads = {k: self._xp.zeros_like(v) for k, v in self.network.params.items()}
            loss = None
        mine = n > 0 and loss is not None
        red = dist.allreduce_grads(grads, count=n, values=(
            float(loss) * n if mine else 0.0, float(self._stop_requested), float(mine)))
        self._stop_agreed = bool(red.values[1] > 0)
        has_loss = bool(red.values[2] > 0)  # the same decision on every rank
        if has_loss:
            loss = red.values[0] / red.count
            try:
                loss = self._check_loss(loss)  # the same global loss, so every rank raises
            except TrainingDiverged:
                self.in_step = False
                raise
        self.optimizer.update(self.network.params, grads)
        if not has_loss:
            local = float(self.network.loss(x_batch, t_batch)) * n if n else 0.0
            total, count = dist.allreduce_sum([local, n])
            loss = self._check_loss(total / count)
        self._finish_step(pos, loss)

    def _finish_step(self, pos, loss):
        self.train_loss_list.append(loss)
        if self._bar is not None:
            elapsed = time.perf_counter() - self._epoch_start
            seen = min((pos + 1 - self._epoch_first) * self.batch_size, self.train_size)
            self._bar.update(1)
            if pos % 10 == 0 or pos + 1 == self.iter_per_epoch:
                self._bar.set_postfix(loss=f"{loss:.4f}",
                                      img_s=f"{seen / max(elapsed, 1e-9):.0f}", refresh=False)
        self.current_iter += 1
        if pos + 1 == self.iter_per_epoch:
            self._end_epoch()
        self.in_step = False

    def _open_bar(self, pos=0):
        if not self.verbose:
            return
        from ._progress import progress_bar
        self._bar = progress_bar(total=self.iter_per_epoch, initial=pos, unit="batch",
                                 leave=False,
                                 desc=f"epoch {self.current_epoch + 1}/{self.epochs}")

    def close(self):
        """Close the progress bar (after an interruption)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _end_epoch(self):
        self.epoch_time_list.append(time.perf_counter() - self._epoch_start)
        self._epoch_start = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.current_epoch += 1
        n = self.evaluate_sample_num_per_epoch
        if self._dist:  # the ranks evaluate the same model: average the running statistics
            from . import distributed as dist
            from .models._base import layer_buffers
            dist.average_arrays(layer_buffers(getattr(self.network, "layers", {})))
        train_acc = self._accuracy(self.x_train[:n], self.t_train[:n])
        test_acc = self._accuracy(self.x_test[:n], self.t_test[:n])
        self.train_acc_list.append(train_acc)
        self.test_acc_list.append(test_acc)
        if self.verbose:
            t = self.epoch_time_list[-1]
            seen = (self.iter_per_epoch - self._epoch_first) / self.iter_per_epoch
            print(f"=== epoch:{self.current_epoch}, train acc:{train_acc:.4f}, "
                  f"test acc:{test_acc:.4f}, loss:{self.train_loss_list[-1]:.4f}, "
                  f"time:{t:.1f}s ({seen * self.train_size / t:.0f} img/s) ===", flush=True)

    def _accuracy(self, x, t):
        """network.accuracy; under MPI each rank counts the correct predictions of its part
        of the images and the counts are summed."""
        if not self._dist:
            return float(self.network.accuracy(x, t))
        from . import distributed as dist
        part = dist.split(len(x))
        xs, ts = x[part], t[part]
        correct = round(float(self.network.accuracy(xs, ts)) * len(xs)) if len(xs) else 0
        total, count = dist.allreduce_sum([correct, len(xs)])
        return float(total / count)

    @contextlib.contextmanager
    def _deferred_interrupts(self):
        """Ctrl-C during a step only asks to stop; the step completes first. A second Ctrl-C
        interrupts at once. Only the main thread can take signals; elsewhere nothing changes."""
        if threading.current_thread() is not threading.main_thread() or \
                signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield
            return

        def request_stop(signum, frame):
            # Under MPI a first Ctrl-C between steps also waits for the next step, where the
            # ranks agree on it: one rank leaving alone would leave the others waiting.
            if self._stop_requested or not (self.in_step or self._dist):
                raise KeyboardInterrupt
            self._stop_requested = True
            if self._root:
                print("\nstopping after this step (Ctrl-C again to stop at once)",
                      file=sys.stderr, flush=True)

        self._stop_requested = self._stop_agreed = False
        signal.signal(signal.SIGINT, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def train(self, on_step_end=None, on_epoch_end=None):
        """Run the remaining epochs; return the final test accuracy on the whole test set.

        ``on_step_end(trainer)`` runs after every step and ``on_epoch_end(trainer)`` after
        every epoch (e.g. to save a checkpoint); both see a consistent state, and either may
        raise KeyboardInterrupt to stop there."""
        with self._deferred_interrupts():
            try:
                while self.current_iter < self.max_iter:
                    self.train_step()
                    if on_step_end is not None:
                        on_step_end(self)
                    if on_epoch_end is not None and self.current_iter % self.iter_per_epoch == 0:
                        on_epoch_end(self)
                    if self._stop_agreed if self._dist else self._stop_requested:
                        raise KeyboardInterrupt
            except BaseException:
                self.close()
                raise
        if self.evaluate_sample_num_per_epoch is None and self.test_acc_list:
            test_acc = self.test_acc_list[-1]  # already measured on the whole test set
        else:
            test_acc = self._accuracy(self.x_test, self.t_test)
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print(f"test acc:{test_acc:.4f}", flush=True)
        return test_acc

    # ------------------------------------------------------------ checkpoints

    def state_dict(self):
        """(arrays, info): everything a resumed run needs, as NumPy arrays (names like
        ``param.W1``, ``buffer.BatchNorm1.running_mean``, ``optim.m.W1``) and JSON data."""
        from .models._base import layer_buffers

        if self.in_step:
            raise RuntimeError("Trainer.state_dict: a step is in progress; the state is not "
                               "consistent")
        host = _device.to_host
        arrays = {f"param.{k}": host(v) for k, v in self.network.params.items()}
        arrays.update({f"buffer.{k}": host(v) for k, v in
                       layer_buffers(getattr(self.network, "layers", {})).items()})
        opt = {"class": type(self.optimizer).__name__}
        for attr in _OPT_SCALARS:
            v = getattr(self.optimizer, attr, None)
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
                opt[attr] = v.item() if isinstance(v, np.number) else v
        for attr in _OPT_ARRAYS:
            store = getattr(self.optimizer, attr, None)
            if isinstance(store, dict):
                arrays.update({f"optim.{attr}.{k}": host(v) for k, v in store.items()})
                opt.setdefault("stores", []).append(attr)
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        arrays["rng.keys"] = np.asarray(keys, dtype=np.uint32)
        if self._order is not None and self.current_iter % self.iter_per_epoch:
            arrays["trainer.order"] = np.asarray(host(self._order), dtype=np.int64)
        for name in ("train_loss_list", "train_acc_list", "test_acc_list", "epoch_time_list"):
            arrays[f"history.{name}"] = np.asarray(getattr(self, name), dtype=np.float64)
        info = {"version": 1, "current_iter": self.current_iter,
                "current_epoch": self.current_epoch, "epochs": self.epochs,
                "batch_size": self.batch_size, "train_size": self.train_size,
                "evaluate_sample_num_per_epoch": self.evaluate_sample_num_per_epoch,
                "optimizer": opt,
                "rng": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss),
                        "cached_gaussian": float(gauss)}}
        return arrays, info

    def load_state_dict(self, arrays, info, where="checkpoint"):
        """Restore what :meth:`state_dict` returned (into this trainer, its network and its
        optimizer). The data set size, batch size and optimizer must be those of the saved run;
        ``epochs`` may be larger (to train on)."""
        from .models import ParamsError
        from .models._base import layer_buffers

        def fail(msg):
            raise ParamsError(f"{where}: {msg}")

        if info.get("version") != 1:
            fail(f"unsupported checkpoint version {info.get('version')!r}")
        for key, mine in (("train_size", self.train_size), ("batch_size", self.batch_size)):
            if info.get(key) != mine:
                fail(f"saved with {key} {info.get(key)}, this run has {mine}")
        opt = info.get("optimizer") or {}
        if opt.get("class") != type(self.optimizer).__name__:
            fail(f"saved with optimizer {opt.get('class')}, this run uses "
                 f"{type(self.optimizer).__name__}")
        if info["current_iter"] > self.max_iter:
            fail(f"already trained {info['current_epoch']} epochs, more than the {self.epochs} "
                 "asked for")
        params = self.network.params
        buffers = layer_buffers(getattr(self.network, "layers", {}))
        want = {f"param.{k}": v for k, v in params.items()}
        want.update({f"buffer.{k}": v for k, v in buffers.items()})
        problems = [k for k, v in want.items()
                    if k not in arrays or tuple(arrays[k].shape) != tuple(v.shape)]
        if problems:
            fail(f"does not fit this network ({', '.join(problems[:5])} missing or of another "
                 "shape)")
        for k, p in params.items():
            p[...] = ops.array_module("load_checkpoint", p).asarray(arrays[f"param.{k}"])
        layers = self.network.layers
        for k, old in buffers.items():
            name, attr = k.rsplit(".", 1)
            xp = ops.array_module("load_checkpoint", old)
            setattr(layers[name], attr, xp.asarray(arrays[f"buffer.{k}"], dtype=old.dtype).copy())
        for attr in _OPT_SCALARS:
            if attr in opt:
                setattr(self.optimizer, attr, opt[attr])
        for attr in opt.get("stores", []):
            pre = f"optim.{attr}."
            setattr(self.optimizer, attr, {k[len(pre):]: np.array(v) for k, v in arrays.items()
                                           if k.startswith(pre)})
        rng = info["rng"]
        np.random.set_state((rng["kind"], arrays["rng.keys"], rng["pos"], rng["has_gauss"],
                             rng["cached_gaussian"]))
        self._order = (self._xp.asarray(arrays["trainer.order"]) if "trainer.order" in arrays
                       else None)
        for name in ("train_loss_list", "train_acc_list", "test_acc_list", "epoch_time_list"):
            setattr(self, name, [float(v) for v in arrays[f"history.{name}"]])
        self.current_iter = int(info["current_iter"])
        self.current_epoch = int(info["current_epoch"])
        self._epoch_start = None
        if self._dist:  # the checkpoint holds rank 0's random state: the others derive theirs
            from . import distributed as dist
            dist.seed_rank(None, self.current_iter)

    def save_checkpoint(self, file_name, metadata=None):
        """Write :meth:`state_dict` to a safetensors file, atomically; ``metadata`` (a dict of
        JSON data) is stored with it and returned by :meth:`load_checkpoint`. Under MPI only
        rank 0 writes (all ranks hold the same state)."""
        from . import distributed as dist
        from ._files import atomic_write

        if not dist.is_root():
            return
        from ._safeio import safetensors_bytes

        arrays, info = self.state_dict()
        meta = {"format": CHECKPOINT_FORMAT, "trainer": json.dumps(info),
                "user": json.dumps(metadata or {})}
        describe = getattr(self.network, "description", None)
        if describe is not None:
            meta["model"] = json.dumps(describe())
        with atomic_write(file_name) as f:
            f.write(safetensors_bytes(arrays, meta))

    def load_checkpoint(self, file_name):
        """Restore a checkpoint written by :meth:`save_checkpoint`; returns its metadata.
        Under MPI rank 0 reads the file and sends it to the other ranks."""
        from . import distributed as dist

        if self._dist:
            got = None
            if dist.is_root():
                try:
                    got = read_checkpoint(file_name)
                except Exception as e:  # every rank raises it
                    got = e
            got = dist.broadcast_object(got)
            if isinstance(got, Exception):
                raise got
            metadata, info, arrays = got
        else:
            metadata, info, arrays = read_checkpoint(file_name)
        self.load_state_dict(arrays, info, where=str(file_name))
        return metadata


def checkpoint_metadata(file_name):
    """The ``metadata`` a checkpoint was saved with, from its header alone."""
    from ._safeio import ParamsError, safetensors_header

    meta, _ = safetensors_header(file_name)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ParamsError(f"{file_name}: not a fastnn training checkpoint")
    try:
        return json.loads(meta["user"])
    except (KeyError, ValueError):
        raise ParamsError(f"{file_name}: malformed checkpoint metadata") from None


def read_checkpoint(file_name):
    """(metadata, trainer info, arrays) of a checkpoint file, checked."""
    from ._safeio import ParamsError, read_safetensors

    arrays, meta = read_safetensors(file_name)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ParamsError(f"{file_name}: not a fastnn training checkpoint")
    try:
        info = json.loads(meta["trainer"])
        user = json.loads(meta.get("user", "{}"))
        int(info["current_iter"]), int(info["current_epoch"])
        rng = info["rng"]
        if rng["kind"] != "MT19937" or arrays["rng.keys"].shape != (624,):
            raise ValueError("bad random state")
    except (KeyError, ValueError, TypeError) as e:
        raise ParamsError(f"{file_name}: malformed checkpoint ({type(e).__name__}: {e})") \
            from None
    return user, info, arrays
