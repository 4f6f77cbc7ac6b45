"""The book's Trainer (common/trainer.py): mini-batch training with per-epoch accuracies."""

import math
import time

import numpy as np

from . import _ops, optim

_OPTIMIZERS = {'sgd': optim.SGD, 'momentum': optim.Momentum, 'nesterov': optim.Nesterov,
               'adagrad': optim.AdaGrad, 'rmsprop': optim.RMSprop, 'adam': optim.Adam}


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
    """

    def __init__(self, network, x_train, t_train, x_test, t_test,
                 epochs=20, mini_batch_size=100,
                 optimizer='SGD', optimizer_param={'lr': 0.01},
                 evaluate_sample_num_per_epoch=None, verbose=True):
        self.network = network
        self.verbose = verbose
        xp = _ops.array_module("Trainer", x_train, t_train)
        if xp is not np:  # both on the device, so that batches are gathered there
            x_train, t_train = xp.asarray(x_train), xp.asarray(t_train)
        self._xp = xp
        self.x_train, self.t_train = x_train, t_train
        self.x_test, self.t_test = x_test, t_test
        self.epochs = int(epochs)
        self.batch_size = int(mini_batch_size)
        if self.batch_size < 1:
            raise ValueError(f"Trainer: mini_batch_size must be >= 1, got {mini_batch_size}")
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

    def _batch_indices(self):
        pos = self.current_iter % self.iter_per_epoch
        if pos == 0:
            self._order = self._xp.asarray(np.random.permutation(self.train_size))
        return self._order[pos * self.batch_size:(pos + 1) * self.batch_size]

    def train_step(self):
        """One mini-batch update; at the end of an epoch, evaluate and record accuracies."""
        pos = self.current_iter % self.iter_per_epoch
        if pos == 0:
            self._epoch_start = time.perf_counter()
            self._open_bar()
        idx = self._batch_indices()
        x_batch, t_batch = self.x_train[idx], self.t_train[idx]
        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)
        loss = getattr(self.network, 'last_loss', None)
        if loss is None:  # a network without last_loss (e.g. the book's own): as the book does
            loss = self.network.loss(x_batch, t_batch)
        self.train_loss_list.append(float(loss))
        if self._bar is not None:
            elapsed = time.perf_counter() - self._epoch_start
            seen = min((pos + 1) * self.batch_size, self.train_size)
            self._bar.update(1)
            if pos % 10 == 0 or pos + 1 == self.iter_per_epoch:
                self._bar.set_postfix(loss=f"{float(loss):.4f}",
                                      img_s=f"{seen / max(elapsed, 1e-9):.0f}")
        self.current_iter += 1
        if pos + 1 == self.iter_per_epoch:
            self._end_epoch()

    def _open_bar(self):
        if not self.verbose:
            return
        from ._progress import progress_bar
        self._bar = progress_bar(total=self.iter_per_epoch, unit="batch", leave=False,
                         desc=f"epoch {self.current_epoch + 1}/{self.epochs}")

    def _end_epoch(self):
        self.epoch_time_list.append(time.perf_counter() - self._epoch_start)
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.current_epoch += 1
        n = self.evaluate_sample_num_per_epoch
        train_acc = float(self.network.accuracy(self.x_train[:n], self.t_train[:n]))
        test_acc = float(self.network.accuracy(self.x_test[:n], self.t_test[:n]))
        self.train_acc_list.append(train_acc)
        self.test_acc_list.append(test_acc)
        if self.verbose:
            t = self.epoch_time_list[-1]
            print(f"=== epoch:{self.current_epoch}, train acc:{train_acc:.4f}, "
                  f"test acc:{test_acc:.4f}, loss:{self.train_loss_list[-1]:.4f}, "
                  f"time:{t:.1f}s ({self.train_size / t:.0f} img/s) ===", flush=True)

    def train(self):
        """Run all epochs; return the final test accuracy on the whole test set."""
        for _ in range(self.max_iter - self.current_iter):
            self.train_step()
        if self.evaluate_sample_num_per_epoch is None and self.test_acc_list:
            test_acc = self.test_acc_list[-1]  # already measured on the whole test set
        else:
            test_acc = float(self.network.accuracy(self.x_test, self.t_test))
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print(f"test acc:{test_acc:.4f}", flush=True)
        return test_acc
