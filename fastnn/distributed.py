"""Data-parallel training over MPI: every rank holds the whole model, computes the gradients of
its shard of each mini-batch, and the gradients are averaged with one ``Allreduce`` per step.

Run any training program under ``mpiexec``::

    mpiexec -n 4 fastnn train --model deep_convnet --dataset fashion-mnist --epochs 5
    mpiexec -n 4 python my_training.py          # a program that uses fastnn.trainer.Trainer

Without mpi4py, or in a process not started by ``mpiexec``, :func:`init` is a no-op (rank 0 of
1) and every function here does nothing, so the same program runs on one process or N ranks.

The pieces (each a collective: every rank calls it, in the same order):

``init(timeout=None)``
    Starts MPI (through mpi4py) when the process runs under ``mpiexec``; returns
    ``(rank, size)``. It installs an exception hook that prints the error and aborts every rank
    (``MPI_Abort``), and a watchdog that aborts the job when a collective waits longer than
    ``timeout`` seconds (default ``$FASTNN_MPI_TIMEOUT`` or 300), so that no rank waits for
    ever for a peer that failed or hung. The trainers call it themselves, so the book's
    programs become data-parallel under ``mpiexec`` unchanged; ``FASTNN_DISTRIBUTED=0`` keeps
    the processes of an ``mpiexec`` independent (e.g. a sweep of settings, one per rank).
``broadcast_params(params)``
    Checks that every rank holds parameters of the same names, shapes and dtypes (ValueError on
    every rank naming the first difference), then copies rank 0's values into every rank's
    arrays, in place.
``allreduce_grads(grads, count=None, values=())``
    Averages the gradients in place: all arrays are packed into one contiguous buffer (in the
    widest of their dtypes) and reduced with a single ``Allreduce``. With ``count`` (the
    samples this rank's mean gradients are over) the average is weighted by it, so that
    uneven shards, even empty ones, give the gradient of the whole batch. ``values`` are extra
    numbers summed in the same call (a loss, a stop flag). Returns a :class:`Reduced`.
``Sharder(global_batch_size)``
    ``sharder.epoch_order(order)`` makes every rank use rank 0's shuffled order of the epoch;
    ``sharder.shard(batch_indices)`` gives this rank its contiguous part of a global batch, so
    that the union over ranks of step i's samples is the batch i of one process.
``split(n)``, ``allreduce_sum(values)``, ``average_arrays(arrays)``, ``broadcast_object(obj)``
    For evaluation split across ranks (sum the correct counts and the counts) and for state
    kept outside the gradients (BatchNorm running statistics).

Wiring a trainer is a few lines (this is what :class:`fastnn.trainer.Trainer` does)::

    from fastnn import distributed as dist
    dist.init()
    dist.broadcast_params(network.params)          # once, before training
    sharder = dist.Sharder(global_batch_size)
    for epoch in ...:
        order = sharder.epoch_order(np.random.permutation(n))
        for i in range(iters):
            idx = sharder.shard(order[i * B:(i + 1) * B])
            grads = network.gradient(x[idx], t[idx])     # (zeros when idx is empty)
            r = dist.allreduce_grads(grads, count=len(idx),
                                     values=(loss * len(idx), stop_requested))
            loss, stop = r.values[0] / r.count, r.values[1] > 0
            optimizer.update(network.params, grads)
        if dist.is_root(): print(...)                  # and only rank 0 writes files

For the lists of parameters of vol. 2 (with shared weights), remove the duplicates first, as
the book's trainers do before ``optimizer.update``, then ``allreduce_grads``, then
``clip_grads`` (so that every rank clips the same, global gradient). For the vol. 2
``RnnlmTrainer``, whose batch rows read the corpus from fixed offsets and carry their hidden
state from step to step, give each rank its rows of the global batch: the offsets
``[i * jump for i in range(batch_size)][dist.split(batch_size)]``, with ``jump`` computed
from the global batch size; the loss is a mean over rows and time steps, so
``count=rows x time_size`` weights it.

Semantics worth knowing:

* The loss is a mean over the batch, so the count-weighted average of per-rank mean gradients
  is the gradient of the global batch: N ranks with per-rank batch B train like one process
  with batch N x B (up to floating-point summation order).
* BatchNorm normalises with each rank's own batch statistics (like Horovod without SyncBN);
  the trainers average the running statistics across ranks at the end of each epoch, so all
  ranks evaluate and save the same model. Networks with BatchNorm therefore train slightly
  differently on N ranks than on one process with the N x B batch.
* Dropout draws from NumPy's global generator. If every rank seeded it alike, each shard
  would get the same masks; :func:`seed_rank` gives rank r > 0 its own stream, derived from
  the seed, the rank and the step (the trainers call it at the start and after loading a
  checkpoint), and rank 0 keeps the single-process stream. The shuffled order is rank 0's
  either way (``Sharder.epoch_order``).
* GPU (CuPy) gradients are reduced with NCCL (``cupy.cuda.nccl``) when CuPy has it, else with
  a CUDA-aware MPI when ``FASTNN_MPI_CUDA_AWARE=1`` says the MPI is one, else through host
  memory; ``build_info()['distributed']`` says which.
"""

import importlib.util
import os
import sys
import threading
import time
import traceback
from collections import namedtuple

import numpy as np

__all__ = ["init", "is_initialized", "rank", "size", "is_root", "broadcast_params",
           "allreduce_grads", "allreduce_sum", "average_arrays", "broadcast_object", "split",
           "Sharder", "Reduced", "seed_rank", "abort", "barrier", "info", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 300.0
ABORT_DELAY = 0.5  # seconds between printing why and aborting the job

# Environment variables that MPI launchers set in the processes they start.
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                  "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "HYDI_CONTROL_FD")

Reduced = namedtuple("Reduced", "count values")
Reduced.__doc__ = """What :func:`allreduce_grads` returns: ``count``, the sum of the ranks'
counts (their number without counts), and ``values``, the sums of the ranks' ``values`` (a
float64 array)."""


class _State:
    comm = None          # mpi4py's COMM_WORLD while size > 1
    MPI = None
    rank = 0
    size = 1
    initialized = False
    timeout = DEFAULT_TIMEOUT
    gpu_path = None      # "nccl", "cuda-aware MPI", "host" once CuPy gradients were reduced
    nccl = None
    host_buf = None      # the packed buffer, reused from step to step
    watchdog = None


_S = _State()


def _under_launcher():
    return any(v in os.environ for v in _LAUNCHER_VARS)


def _mpi4py_available():
    return importlib.util.find_spec("mpi4py") is not None


def init(timeout=None):
    """Start data-parallel mode when this process was started by ``mpiexec``; returns
    ``(rank, size)``. A no-op returning ``(0, 1)`` without mpi4py or outside ``mpiexec``.
    Calling it again returns the same. ``timeout``: seconds a collective may wait before the
    job is aborted (default ``$FASTNN_MPI_TIMEOUT`` or 300; 0 turns the watchdog off)."""
    if _S.initialized:
        return _S.rank, _S.size
    if not _under_launcher() or os.environ.get("FASTNN_DISTRIBUTED") == "0":
        _S.initialized = True
        return 0, 1
    if timeout is None:
        env = os.environ.get("FASTNN_MPI_TIMEOUT", "").strip()
        try:
            timeout = float(env) if env else DEFAULT_TIMEOUT
        except ValueError:
            raise ValueError(f"FASTNN_MPI_TIMEOUT must be a number of seconds, got {env!r}") \
                from None
    if not _mpi4py_available():
        if _launched_size() > 1:
            raise RuntimeError(
                f"fastnn.distributed: started by mpiexec with {_launched_size()} processes but "
                "mpi4py is not installed; install it with: pip install 'fastnn[mpi]' (or pip "
                "install mpi4py mpich)")
        _S.initialized = True
        return 0, 1
    _S.timeout = float(timeout)
    _S.initialized = True
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1:
        return 0, 1
    _S.MPI, _S.comm = MPI, comm
    _S.rank, _S.size = comm.Get_rank(), comm.Get_size()
    _install_excepthook()
    if _S.timeout > 0:
        _S.watchdog = _Watchdog(_S.timeout)
    return _S.rank, _S.size


def _launched_size():
    for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        value = os.environ.get(v, "")
        if value.isdigit():
            return int(value)
    return 0


def is_initialized():
    """True while more than one rank trains together (after :func:`init` under mpiexec)."""
    return _S.comm is not None


def rank():
    """This process's rank (0 without MPI)."""
    return _S.rank


def size():
    """The number of ranks (1 without MPI)."""
    return _S.size


def is_root():
    """True on rank 0, the rank that prints progress and writes files (and without MPI)."""
    return _S.rank == 0


def info():
    """A dict for ``fastnn.build_info()['distributed']``: whether mpi4py is installed, the MPI
    library once :func:`init` ran, rank and size, and how CuPy gradients are reduced
    (``gpu_allreduce``: "nccl", "cuda-aware MPI", "host", or None without a usable GPU)."""
    out = {"mpi4py": _mpi4py_available(), "initialized": is_initialized(),
           "rank": _S.rank, "size": _S.size, "timeout_s": _S.timeout}
    if _S.MPI is not None:
        out["mpi_library"] = _S.MPI.Get_library_version().splitlines()[0].strip()
    out["gpu_allreduce"] = _S.gpu_path or _gpu_path_available()
    return out


# ------------------------------------------------------------------ faults


def abort(code=1, message=None):
    """Print ``message`` (prefixed with the rank) and end every rank of the job at once."""
    if message:
        print(f"fastnn.distributed: rank {_S.rank} of {_S.size}: {message}", file=sys.stderr,
              flush=True)
    sys.stdout.flush()
    # mpiexec forwards a rank's output asynchronously and may drop what it has not read yet
    # when the abort reaches it: give it a moment to pass the message on first.
    time.sleep(ABORT_DELAY)
    if _S.comm is not None:
        _S.comm.Abort(code)
    os._exit(code)


def _install_excepthook():
    previous = sys.excepthook

    def hook(kind, value, tb):
        if _S.comm is None or issubclass(kind, SystemExit):
            return previous(kind, value, tb)
        text = "".join(traceback.format_exception(kind, value, tb))
        abort(1, f"failed; aborting all {_S.size} ranks\n{text.rstrip()}")

    sys.excepthook = hook


class _Watchdog:
    """Aborts the job when one collective waits longer than ``timeout`` seconds: MPI's
    collectives themselves never time out, so a peer that hung would hold every rank."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.deadline = None
        self.what = None
        self.lock = threading.Lock()
        thread = threading.Thread(target=self._run, name="fastnn-mpi-watchdog", daemon=True)
        thread.start()

    def arm(self, what):
        with self.lock:
            self.what, self.deadline = what, time.monotonic() + self.timeout

    def disarm(self):
        with self.lock:
            self.deadline = None

    def _run(self):
        while True:
            time.sleep(min(1.0, self.timeout / 10))
            with self.lock:
                late = self.deadline is not None and time.monotonic() > self.deadline
                what = self.what
            if late:
                abort(1, f"waited more than {self.timeout:g} s in {what} for the other ranks "
                      "(a rank failed, hung or is far slower); aborting the job "
                      "(FASTNN_MPI_TIMEOUT sets the limit)")


class _collective:
    def __init__(self, what):
        self.what = what

    def __enter__(self):
        if _S.watchdog is not None:
            _S.watchdog.arm(self.what)

    def __exit__(self, *exc):
        if _S.watchdog is not None:
            _S.watchdog.disarm()


def barrier():
    """Wait for every rank (with the timeout)."""
    if _S.comm is not None:
        with _collective("barrier"):
            _S.comm.Barrier()


# ------------------------------------------------------------------ parameters


def _items(arrays, what):
    """[(name, array)] of a dict or a list/tuple of arrays."""
    if hasattr(arrays, "items"):
        return [(str(k), v) for k, v in arrays.items()]
    if isinstance(arrays, (list, tuple)):
        return [(f"[{i}]", v) for i, v in enumerate(arrays)]
    raise TypeError(f"{what}: expected a dict or a list of arrays, got {type(arrays).__name__}")


def _is_cupy(a):
    return type(a).__module__.split(".")[0] == "cupy"


def broadcast_object(obj, root=0):
    """``obj`` (picklable) of rank ``root`` on every rank."""
    if _S.comm is None:
        return obj
    with _collective("broadcast_object"):
        return _S.comm.bcast(obj, root=root)


def broadcast_params(params, root=0):
    """Copy rank ``root``'s parameters into every rank's arrays (a dict or a list of arrays,
    changed in place). First checks that all ranks hold the same names, shapes and dtypes:
    ValueError on every rank naming the first difference."""
    items = _items(params, "broadcast_params")
    if _S.comm is None:
        return params
    mine = [(k, tuple(int(s) for s in v.shape), str(v.dtype)) for k, v in items]
    with _collective("broadcast_params (checking shapes)"):
        every = _S.comm.allgather(mine)
    ref = every[root]
    for r, theirs in enumerate(every):
        problem = _first_difference(ref, theirs)
        if problem:
            raise ValueError(f"broadcast_params: the ranks hold different parameters: {problem} "
                             f"(rank {root} against rank {r}); every rank must build the same "
                             "model")
    for _, v in items:
        host = v.get() if _is_cupy(v) else v
        buf = np.ascontiguousarray(host)
        with _collective("broadcast_params"):
            _S.comm.Bcast(buf, root=root)
        if _is_cupy(v):
            import cupy as cp
            v[...] = cp.asarray(buf)
        elif buf is not v:
            v[...] = buf
    return params


def _first_difference(ref, theirs):
    if len(ref) != len(theirs):
        return f"{len(ref)} arrays against {len(theirs)}"
    for (k1, s1, d1), (k2, s2, d2) in zip(ref, theirs):
        if k1 != k2:
            return f"parameter {k1} against {k2}"
        if s1 != s2:
            return f"{k1} has shape {s1} against {s2}"
        if d1 != d2:
            return f"{k1} is {d1} against {d2}"
    return None


# ------------------------------------------------------------------ gradients


def _pack_dtype(arrays):
    dt = np.result_type(*[a.dtype for a in arrays]) if arrays else np.dtype(np.float64)
    if dt.kind != "f" or dt.itemsize < 4:
        dt = np.dtype(np.float32) if dt.kind == "f" else np.dtype(np.float64)
    return dt


def pack(arrays, out=None, dtype=None, extra=0, scale=None):
    """The arrays, flattened one after the other into one contiguous buffer (``out`` when it
    fits, else a new one) of ``dtype`` (default: the widest of theirs), with ``extra`` more
    elements at its end, each multiplied by ``scale`` on the way when given. Any strides or
    mixed float dtypes; returns the buffer."""
    dtype = np.dtype(dtype) if dtype is not None else _pack_dtype(arrays)
    total = sum(int(a.size) for a in arrays) + extra
    if out is None or out.size != total or out.dtype != dtype:
        out = np.empty(total, dtype=dtype)
    o = 0
    for a in arrays:
        n = int(a.size)
        dst = out[o:o + n].reshape(a.shape)
        if scale is None:
            dst[...] = a
        else:  # one pass: copy and weight together
            np.multiply(a, dtype.type(scale), out=dst)
        o += n
    return out


def unpack(buf, arrays, scale=None):
    """Copy ``buf`` (as :func:`pack` made it) back into ``arrays``, in place, in their dtypes,
    multiplied by ``scale`` on the way when given."""
    o = 0
    for a in arrays:
        n = int(a.size)
        src = buf[o:o + n].reshape(a.shape)
        if scale is None:
            a[...] = src
        else:
            np.multiply(src, buf.dtype.type(scale), out=a, casting="same_kind")
        o += n
    return arrays


def allreduce_grads(grads, count=None, values=()):
    """Average ``grads`` (a dict or a list of arrays) over the ranks, in place, with one
    ``Allreduce``; ``count`` weights this rank's gradients (the samples they are the mean over),
    ``values`` are summed in the same call. Returns :class:`Reduced` (count, values).

    Without MPI: ``grads`` are left as they are; the count and values are this process's."""
    arrays = [v for _, v in _items(grads, "allreduce_grads")]
    extra = np.asarray(values, dtype=np.float64).reshape(-1)
    weighted = count is not None
    w = float(count) if weighted else 1.0
    if _S.comm is None:
        return Reduced(w, extra.copy())
    if arrays and _is_cupy(arrays[0]):
        return _allreduce_cupy(arrays, w, weighted, extra)
    # The buffer's dtype follows the gradients' dtypes only, never the values: every rank must
    # send the same number of bytes, whatever its loss (a NaN on one rank included).
    dtype = _pack_dtype(arrays)
    tail = np.concatenate([[w], extra])
    buf = pack(arrays, out=_S.host_buf, dtype=dtype, extra=len(tail),
               scale=w if weighted and w != 1.0 else None)
    _S.host_buf = buf
    n = buf.size - len(tail)
    buf[n:] = tail
    with _collective("allreduce_grads"):
        _S.comm.Allreduce(_S.MPI.IN_PLACE, buf, op=_S.MPI.SUM)
    total = float(buf[n])
    unpack(buf[:n], arrays, scale=1.0 / total if total > 0 else None)
    return Reduced(total if weighted else _S.size, buf[n + 1:].astype(np.float64))


def allreduce_sum(values):
    """The element-wise sum over the ranks of ``values`` (numbers), as a float64 array."""
    v = np.array(values, dtype=np.float64).reshape(-1)
    if _S.comm is not None:
        with _collective("allreduce_sum"):
            _S.comm.Allreduce(_S.MPI.IN_PLACE, v, op=_S.MPI.SUM)
    return v


def average_arrays(arrays):
    """Replace each array (a dict or list) by its mean over the ranks, in place (one call)."""
    items = [v for _, v in _items(arrays, "average_arrays")]
    if _S.comm is None or not items:
        return arrays
    allreduce_grads(items)
    return arrays


# ------------------------------------------------------------------ CuPy gradients


def _gpu_path_available():
    """How CuPy gradients would be reduced: "nccl", "cuda-aware MPI" or "host"; None when
    fastnn cannot compute on the GPU here."""
    from . import cuda
    if not cuda.is_available():
        return None
    if importlib.util.find_spec("cupy.cuda.nccl") is not None:
        return "nccl"
    if os.environ.get("FASTNN_MPI_CUDA_AWARE") == "1":
        return "cuda-aware MPI"
    return "host"


def _allreduce_cupy(arrays, w, weighted, extra):
    import cupy as cp
    dtype = _pack_dtype(arrays)
    n = sum(int(a.size) for a in arrays)
    buf = cp.empty(n, dtype=dtype)
    o = 0
    for a in arrays:
        buf[o:o + a.size].reshape(a.shape)[...] = a
        o += a.size
    if weighted and w != 1.0:
        buf *= dtype.type(w)
    tail = allreduce_sum(np.concatenate([[w], extra]))  # counts and values: small, on the host
    path = _S.gpu_path or _gpu_path_available()
    if path == "nccl":
        try:
            _nccl_allreduce(buf)
        except Exception:  # NCCL present but unusable (e.g. one GPU for several ranks)
            path = "host"
    if path == "cuda-aware MPI":
        cp.cuda.get_current_stream().synchronize()
        with _collective("allreduce_grads (CUDA-aware MPI)"):
            _S.comm.Allreduce(_S.MPI.IN_PLACE, buf, op=_S.MPI.SUM)
    elif path == "host":
        host = cp.asnumpy(buf)
        with _collective("allreduce_grads (through host memory)"):
            _S.comm.Allreduce(_S.MPI.IN_PLACE, host, op=_S.MPI.SUM)
        buf.set(host)
    _S.gpu_path = path
    total = float(tail[0])
    if total > 0:
        buf *= dtype.type(1.0 / total)
    o = 0
    for a in arrays:
        a[...] = buf[o:o + a.size].reshape(a.shape)
        o += a.size
    return Reduced(total if weighted else _S.size, tail[1:])


def _nccl_allreduce(buf):
    import cupy as cp
    from cupy.cuda import nccl
    if _S.nccl is None:
        uid = nccl.get_unique_id() if _S.rank == 0 else None
        uid = broadcast_object(uid)
        _S.nccl = nccl.NcclCommunicator(_S.size, uid, _S.rank)
    kind = nccl.NCCL_FLOAT64 if buf.dtype == np.float64 else nccl.NCCL_FLOAT32
    stream = cp.cuda.get_current_stream()
    with _collective("allreduce_grads (NCCL)"):
        _S.nccl.allReduce(buf.data.ptr, buf.data.ptr, buf.size, kind, nccl.NCCL_SUM, stream.ptr)
        stream.synchronize()


# ------------------------------------------------------------------ data


def split(n, rank_=None, size_=None):
    """This rank's ``slice`` of ``n`` items split into ``size`` contiguous parts whose lengths
    differ by at most one (the first ``n % size`` parts one longer)."""
    r = _S.rank if rank_ is None else int(rank_)
    s = _S.size if size_ is None else int(size_)
    base, extra = divmod(int(n), s)
    start = r * base + min(r, extra)
    return slice(start, start + base + (r < extra))


class Sharder:
    """Each rank's part of every global mini-batch.

    ``global_batch_size`` is what one step of all ranks together consumes. Every rank calls
    :meth:`epoch_order` with its own shuffled order of the data set and gets rank 0's (so that
    the ranks agree even when their generators do not); :meth:`shard` takes a global batch of
    indices and returns this rank's contiguous part (:func:`split`). The union over the ranks of
    step i's parts is the global batch i, in order."""

    def __init__(self, global_batch_size, rank_=None, size_=None):
        self.global_batch_size = int(global_batch_size)
        if self.global_batch_size < 1:
            raise ValueError(f"Sharder: global_batch_size must be >= 1, got {global_batch_size}")
        self.rank = _S.rank if rank_ is None else int(rank_)
        self.size = _S.size if size_ is None else int(size_)

    def epoch_order(self, order):
        """Rank 0's ``order`` (an integer array) on every rank."""
        if _S.comm is None or self.size == 1:
            return order
        host = np.ascontiguousarray(order.get() if _is_cupy(order) else order, dtype=np.int64)
        with _collective("Sharder.epoch_order"):
            _S.comm.Bcast(host, root=0)
        if _is_cupy(order):
            import cupy as cp
            return cp.asarray(host)
        return host

    def shard(self, batch_indices):
        """This rank's part of one global batch of indices."""
        return batch_indices[split(len(batch_indices), self.rank, self.size)]

    def batches(self, order):
        """This rank's part of each global batch of ``order``, one epoch."""
        for start in range(0, len(order), self.global_batch_size):
            yield self.shard(order[start:start + self.global_batch_size])


def seed_rank(seed=None, step=0):
    """On rank r > 0, reseed NumPy's global generator from (seed, r, step), so that dropout
    masks differ between ranks; rank 0 (and a process without MPI) keeps its stream. Without
    ``seed``, rank r > 0 draws one from the generator's current state (so ranks seeded alike
    still get different, repeatable streams). The trainers call it at the start and after
    loading a checkpoint."""
    if _S.rank > 0:
        if seed is None:
            seed = np.random.randint(0, 2 ** 32, dtype=np.uint64)
        np.random.seed([int(seed) & 0xFFFFFFFF, _S.rank, int(step) & 0xFFFFFFFF])
