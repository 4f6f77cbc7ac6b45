"""The book's vol. 2 common/trainer.py: ``Trainer(model, optimizer).fit(x, t, ...)`` for
models with ``forward(x, t)``/``backward()`` and ``params``/``grads`` lists, and
``RnnlmTrainer`` for language models fed a corpus as ``batch_size`` parallel streams.

Same signatures, shuffling (``numpy.random.permutation``), batches, printing and ``loss_list``
/ ``ppl_list`` as the book's; ``plot`` imports matplotlib only when called.

Under ``mpiexec`` both trainers are data-parallel (fastnn.distributed): ``batch_size`` is each
rank's, a step consumes ``batch_size`` x ranks samples (RnnlmTrainer: rows), the gradients are
averaged over the ranks after shared weights are folded together and before clipping, and only
rank 0 prints. One process trains exactly as the book's code does.
"""

import time

import numpy

from .. import distributed as dist
from .np import GPU, np  # noqa: F401
from .util import clip_grads

__all__ = ["np", "GPU", "clip_grads", "Trainer", "RnnlmTrainer", "remove_duplicate"]


def _step(model, optimizer, x, t, max_grad, count):
    """One update: loss, gradients, shared weights folded together, averaged over the ranks
    (weighted by ``count``, what this rank's loss is a mean over), clipping, optimizer.
    Returns the loss of the whole (global) batch."""
    loss = model.forward(x, t)
    model.backward()
    params, grads = remove_duplicate(model.params, model.grads)
    if dist.size() > 1:
        r = dist.allreduce_grads(grads, count=count, values=(float(loss) * count,))
        loss = r.values[0] / r.count
    if max_grad is not None:
        clip_grads(grads, max_grad)
    optimizer.update(params, grads)
    return loss


def _start(model):
    """MPI (when under mpiexec): rank 0's parameters on every rank, per-rank dropout streams."""
    dist.init()
    if dist.size() > 1:
        dist.broadcast_params(remove_duplicate(model.params, model.grads)[0])
        dist.seed_rank()


def _plot(values, eval_interval, ylabel, ylim):
    import matplotlib.pyplot as plt
    if ylim is not None:
        plt.ylim(*ylim)
    plt.plot(numpy.arange(len(values)), values, label='train')
    plt.xlabel('iterations (x' + str(eval_interval) + ')')
    plt.ylabel(ylabel)
    plt.show()


class Trainer:
    """Mini-batch training on (x, t) reshuffled every epoch; every ``eval_interval`` iterations
    the mean loss since the last report is printed and appended to ``loss_list``."""

    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.loss_list = []
        self.eval_interval = None
        self.current_epoch = 0

    def fit(self, x, t, max_epoch=10, batch_size=32, max_grad=None, eval_interval=20):
        _start(self.model)
        sharder = dist.Sharder(batch_size * dist.size())
        data_size = len(x)
        max_iters = data_size // sharder.global_batch_size
        self.eval_interval = eval_interval
        total_loss, loss_count = 0, 0
        start_time = time.time()
        for _ in range(max_epoch):
            idx = sharder.epoch_order(numpy.random.permutation(numpy.arange(data_size)))
            x, t = x[idx], t[idx]
            for iters in range(max_iters):
                start = iters * sharder.global_batch_size
                mine = sharder.shard(numpy.arange(start, start + sharder.global_batch_size))
                batch = slice(mine[0], mine[-1] + 1)          # this rank's contiguous part
                total_loss += _step(self.model, self.optimizer, x[batch], t[batch], max_grad,
                                    len(mine))
                loss_count += 1
                if eval_interval is not None and iters % eval_interval == 0:
                    avg_loss = total_loss / loss_count
                    if dist.is_root():
                            print('| epoch %d |  iter %d / %d | time %d[s] | loss %.2f'
                              % (self.current_epoch + 1, iters + 1, max_iters,
                                 time.time() - start_time, avg_loss))
                    self.loss_list.append(float(avg_loss))
                    total_loss, loss_count = 0, 0
            self.current_epoch += 1

    def plot(self, ylim=None):
        _plot(self.loss_list, self.eval_interval, 'loss', ylim)


class RnnlmTrainer:
    """Truncated-BPTT training of a language model on corpus ids ``xs`` -> next ids ``ts``:
    batch row i reads the corpus from offset i * (len(xs) // batch_size), ``time_size`` steps
    per iteration, continuing where the previous batch stopped. Every ``eval_interval``
    iterations the perplexity (exp of the mean loss) is printed and appended to ``ppl_list``."""

    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.time_idx = None
        self._rows = None          # under MPI: (this rank's rows, rows of the global batch)
        self.ppl_list = None
        self.eval_interval = None
        self.current_epoch = 0

    def get_batch(self, x, t, batch_size, time_size):
        data_size = len(x)
        rows, total = self._rows or (numpy.arange(batch_size), batch_size)
        jump = data_size // total
        pos = (rows[:, None] * jump + self.time_idx
               + numpy.arange(time_size)[None, :]) % data_size
        self.time_idx += time_size
        pos = np.asarray(pos)  # where x lives (CuPy with config.GPU)
        batch_x = np.asarray(x)[pos].astype('i')
        batch_t = np.asarray(t)[pos].astype('i')
        return batch_x, batch_t

    def fit(self, xs, ts, max_epoch=10, batch_size=20, time_size=35,
            max_grad=None, eval_interval=20):
        _start(self.model)
        total_rows = batch_size * dist.size()
        self._rows = None if dist.size() == 1 else (
            numpy.arange(total_rows)[dist.split(total_rows)], total_rows)
        data_size = len(xs)
        max_iters = data_size // (total_rows * time_size)
        self.time_idx = 0
        self.ppl_list = []
        self.eval_interval = eval_interval
        total_loss, loss_count = 0, 0
        start_time = time.time()
        for _ in range(max_epoch):
            for iters in range(max_iters):
                batch_x, batch_t = self.get_batch(xs, ts, batch_size, time_size)
                total_loss += _step(self.model, self.optimizer, batch_x, batch_t, max_grad,
                                    batch_x.size)
                loss_count += 1
                if eval_interval is not None and iters % eval_interval == 0:
                    ppl = np.exp(total_loss / loss_count)
                    if dist.is_root():
                        print('| epoch %d |  iter %d / %d | time %d[s] | perplexity %.2f'
                              % (self.current_epoch + 1, iters + 1, max_iters,
                                 time.time() - start_time, ppl))
                    self.ppl_list.append(float(ppl))
                    total_loss, loss_count = 0, 0
            self.current_epoch += 1

    def plot(self, ylim=None):
        _plot(self.ppl_list, self.eval_interval, 'perplexity', ylim)


def _tied(p, q):
    """True when q holds the transpose of p (weight tying: TimeAffine(embed_W.T, b))."""
    return (p.ndim == 2 and q.ndim == 2 and p.T.shape == q.shape
            and bool(np.all(p.T == q)))


def remove_duplicate(params, grads):
    """Fold shared weights into one entry: for each parameter that appears again in ``params``
    (the same array, or its transpose holding the same values), the later gradient is added to
    the first one's (transposed when tied) and the later entry dropped. Returns new lists; the
    first gradients are updated in place."""
    params, grads = params[:], grads[:]
    i = 0
    while i < len(params):
        j = i + 1
        while j < len(params):
            if params[i] is params[j]:
                grads[i] += grads[j]
            elif _tied(params[i], params[j]):
                grads[i] += grads[j].T
            else:
                j += 1
                continue
            del params[j], grads[j]
        i += 1
    return params, grads
