"""The ``fastnn`` command: train the book's networks on real data, stop and resume, evaluate,
predict, export, draw filters.

    fastnn train --model simple_convnet --dataset fashion-mnist --epochs 5 --out runs/scn
    fastnn train --resume runs/scn                  # after Ctrl-C, or to train on (--epochs)
    fastnn evaluate runs/scn                        # per-class accuracy, confusion matrix
    fastnn predict runs/scn shoe.png shirt.jpg      # top classes for your own images
    fastnn export runs/scn --onnx scn.onnx          # for onnxruntime and other ONNX tools
    fastnn show-filters runs/scn --out filters.png

A run folder holds ``model.safetensors`` (the network and its description),
``checkpoint.safetensors`` (everything ``--resume`` needs), ``history.json`` and
``curves.png``; every file in it is replaced atomically, after each epoch.

Under ``mpiexec -n N`` (the ``mpi`` extra) ``train`` is data-parallel: each rank trains on its
part of every global batch of N x ``--batch-size`` images (or ``--global-batch``), only rank 0
prints and writes the run folder, and an error on any rank ends every rank.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

MODELS = {
    "simple_convnet": "the book's SimpleConvNet (conv-relu-pool-affine-relu-affine)",
    "mlp": "d2l's 784-256-10 ReLU perceptron",
    "deep_convnet": "the book's DeepConvNet (six 3x3 convolutions, dropout)",
    "multilayer": "the book's chapter 6 MultiLayerNet: five hidden layers of 100, He init",
}
DATASETS = {
    "fashion-mnist": "Zalando's 70,000 28x28 clothing images (10 classes)",
    "mnist": "70,000 28x28 handwritten digits",
    "digits": "scikit-learn's 1,797 8x8 handwritten digits (no download)",
}
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
CLASS_NAMES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "mnist": [str(i) for i in range(10)],
    "digits": [str(i) for i in range(10)],
}
IMAGE_SHAPES = {"fashion-mnist": (1, 28, 28), "mnist": (1, 28, 28), "digits": (1, 8, 8)}
MODEL_FILE, CHECKPOINT_FILE = "model.safetensors", "checkpoint.safetensors"
HISTORY_FILE, CURVES_FILE = "history.json", "curves.png"
CONFUSION_FILE, MISCLASSIFIED_FILE = "confusion.png", "misclassified.png"
# What train --resume may change; everything else comes from the run's checkpoint.
RESUME_OPTIONS = ("--resume", "--epochs", "--quiet")


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, no traceback."""


def _on_every_rank(e):
    """Mark ``e`` as raised by every rank at the same point (under MPI): the ranks then stop
    together, rank 0 reporting it, instead of aborting the job."""
    e.all_ranks = True
    return e


def build_model(name, input_dim, dtype):
    """The network ``name`` for images of shape ``input_dim`` = (C, H, W)."""
    from . import models
    size = int(np.prod(input_dim))
    if name == "simple_convnet":
        return models.SimpleConvNet(input_dim=input_dim, dtype=dtype)
    if name == "mlp":  # d2l's 784-256-10 ReLU perceptron
        return models.d2l_mlp(input_size=size, dtype=dtype)
    if name == "deep_convnet":
        return models.DeepConvNet(input_dim=input_dim, dtype=dtype)
    if name == "multilayer":  # the book's chapter 6 network: five hidden layers of 100, He init
        return models.MultiLayerNet(size, [100] * 5, 10, activation="relu",
                                    weight_init_std="he", dtype=dtype)
    raise UsageError(f"unknown model {name!r}")


def load_data(name, dtype):
    """((x_train, t_train), (x_test, t_test)) with images as (N, C, H, W) in ``dtype``, checked
    to be usable for training (non-empty images, one size for train and test)."""
    from . import datasets
    if name == "fashion-mnist":
        data = datasets.load_fashion_mnist(flatten=False, dtype=dtype)
    elif name == "mnist":
        data = datasets.load_mnist(flatten=False, dtype=dtype)
    elif name == "digits":
        data = datasets.load_digits(flatten=False, dtype=dtype)
    else:
        raise UsageError(f"unknown dataset {name!r}")
    check_data(name, *data)
    return data


def _size(shape):
    return "x".join(str(s) for s in shape[-2:])


def check_data(name, train, test):
    """UsageError when the images cannot be trained on: before training, not after an epoch."""
    (x, t), (xt, tt) = train, test
    for split, images, labels in (("training", x, t), ("test", xt, tt)):
        if len(images) == 0:
            raise UsageError(f"{name}: the {split} set has no images")
        if images.ndim != 4 or min(images.shape[1:]) == 0:
            raise UsageError(f"{name}: the {split} images are {_size(images.shape)} pixels; "
                             "there is nothing to learn from")
        if len(labels) != len(images):
            raise UsageError(f"{name}: {len(images)} {split} images but {len(labels)} labels")
    if x.shape[1:] != xt.shape[1:]:
        raise UsageError(f"{name}: the test images are {_size(xt.shape)} but the training images "
                         f"are {_size(x.shape)}; both sets must have one image size")


# ------------------------------------------------------------------ files of a run folder


def _write_json(path, obj):
    from ._files import atomic_write
    with atomic_write(path) as f:
        f.write((json.dumps(obj, indent=1) + "\n").encode())


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as e:
        raise UsageError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _check_out_folder(out, overwrite):
    """Create ``out`` and make sure files can be written in it, before any training."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out}: exists and is not a folder")
    if os.path.isdir(out):
        old = [f for f in (CHECKPOINT_FILE, MODEL_FILE) if os.path.exists(os.path.join(out, f))]
        if old and not overwrite:
            raise UsageError(f"{out} already holds a training run ({', '.join(old)}); resume it "
                             f"with 'fastnn train --resume {out}' or pass --overwrite to replace "
                             "it")
        for f in (MODEL_FILE, CHECKPOINT_FILE, HISTORY_FILE, CURVES_FILE, CONFUSION_FILE,
                  MISCLASSIFIED_FILE):
            if old and os.path.exists(os.path.join(out, f)):
                os.remove(os.path.join(out, f))   # nothing of the old run is left to mislead
    os.makedirs(out, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test.")
    os.close(fd)
    os.remove(probe)


def _check_writable_file(path, what):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{what} {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{what} {path}: is a folder")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{what} {path}: cannot write in {folder}")


def open_run(run_dir):
    """(network, info) of a run folder: info holds model, dataset, dtype, input_shape and
    classes. Reads model.safetensors (or, for older runs, params.pkl and history.json)."""
    from . import models
    if not os.path.isdir(run_dir):
        raise UsageError(f"{run_dir}: no such run folder")
    path = os.path.join(run_dir, MODEL_FILE)
    if os.path.exists(path):
        _, _, meta = models.read_description(path)
        net = models.load_model(path)
        try:
            info = json.loads(meta.get("fastnn_run", "{}"))
        except ValueError:
            info = {}
        if not isinstance(info, dict):
            info = {}
        info.setdefault("model", meta.get("model"))
        info.setdefault("dtype", meta.get("dtype"))
    else:
        hist = os.path.join(run_dir, HISTORY_FILE)
        pkl = os.path.join(run_dir, "params.pkl")
        if not (os.path.exists(pkl) and os.path.exists(hist)):
            raise UsageError(f"{run_dir}: no {MODEL_FILE} here (is it a folder made by "
                             "'fastnn train --out'?)")
        info = dict(_read_json(hist).get("settings") or {})
        if info.get("model") not in MODELS or info.get("dataset") not in DATASETS:
            raise UsageError(f"{hist}: unknown model or dataset in its settings")
        info["input_shape"] = IMAGE_SHAPES[info["dataset"]]
        net = build_model(info["model"], info["input_shape"], np.dtype(info.get("dtype",
                                                                                "float32")))
        net.load_params(pkl)
    dataset = info.get("dataset")
    if dataset in DATASETS:
        info.setdefault("input_shape", IMAGE_SHAPES[dataset])
        info.setdefault("classes", CLASS_NAMES[dataset])
    shape, classes = info.get("input_shape"), info.get("classes")
    if not (isinstance(shape, (list, tuple)) and 1 <= len(shape) <= 3 and
            all(isinstance(v, int) and 0 < v <= 1 << 16 for v in shape)):
        raise UsageError(f"{run_dir}: the model file does not give a valid input shape")
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        info["classes"] = None
    if info.get("dtype") not in ("float32", "float64"):
        info["dtype"] = next(iter(net.params.values())).dtype.name
    info["input_shape"] = tuple(shape)
    return net, info


def _run_info(settings):
    return {"model": settings["model"], "dataset": settings["dataset"],
            "dtype": settings["dtype"], "input_shape": list(settings["image_shape"]),
            "classes": CLASS_NAMES[settings["dataset"]]}


def _history(trainer, settings, status, started):
    return {
        "settings": settings,
        "status": status,
        "epochs_done": trainer.current_epoch,
        "iterations_done": trainer.current_iter,
        "train_loss": trainer.train_loss_list,
        "train_acc": trainer.train_acc_list,
        "test_acc": trainer.test_acc_list,
        "epoch_time": trainer.epoch_time_list,
        "final_test_acc": trainer.test_acc_list[-1] if trainer.test_acc_list else None,
        "total_time": sum(trainer.epoch_time_list),
        "wall_time_this_session": time.perf_counter() - started,
    }


def _save_run(out, trainer, network, settings, status, started, curves=False):
    """Checkpoint, model, history (and curves): each file replaced atomically."""
    trainer.save_checkpoint(os.path.join(out, CHECKPOINT_FILE), {"settings": settings})
    network.save_params(os.path.join(out, MODEL_FILE),
                        metadata={"fastnn_run": json.dumps(_run_info(settings))})
    history = _history(trainer, settings, status, started)
    _write_json(os.path.join(out, HISTORY_FILE), history)
    if curves and trainer.train_acc_list:
        from .viz import plot_curves
        plot_curves(history, os.path.join(out, CURVES_FILE))
    return history


# ------------------------------------------------------------------ train


def _make_trainer(settings, data, network, epochs, quiet):
    from . import distributed as dist
    from .trainer import Trainer
    (x_train, t_train), (x_test, t_test) = data
    opt_param = {} if settings["lr"] is None else {"lr": settings["lr"]}
    global_batch = settings.get("global_batch")
    if global_batch is not None and global_batch < dist.size():
        raise _on_every_rank(UsageError(f"the global batch of {global_batch} images is smaller "
                                        f"than the {dist.size()} ranks"))
    return Trainer(network, x_train, t_train, x_test, t_test, epochs=epochs,
                   mini_batch_size=settings["batch_size"], optimizer=settings["optimizer"],
                   optimizer_param=opt_param, global_batch_size=global_batch,
                   evaluate_sample_num_per_epoch=settings["eval_samples"], verbose=not quiet)


def _on_root(fn, *args):
    """``fn(*args)`` on rank 0 only, its result on every rank; an exception it raises is
    raised on every rank (so that all stop together). Without MPI, just ``fn(*args)``."""
    from . import distributed as dist
    if not dist.is_initialized():
        return fn(*args)
    result = None
    if dist.is_root():
        try:
            result = (True, fn(*args))
        except (UsageError, OSError) as e:
            result = (False, e)
    ok, value = dist.broadcast_object(result)
    if not ok:
        raise _on_every_rank(value)
    return value


def cmd_train(args):
    from . import __version__, get_num_threads
    from . import distributed as dist

    dist.init()  # data-parallel under mpiexec; a no-op otherwise
    if args.resume:
        return _resume(args)
    out = args.out or os.path.join("runs", f"{args.model}-{args.dataset}")
    _on_root(_check_out_folder, out, args.overwrite)
    dtype = np.dtype(args.dtype)
    data = load_data(args.dataset, dtype)
    (x_train, _), (x_test, _) = data
    np.random.seed(args.seed)
    network = build_model(args.model, x_train.shape[1:], dtype)
    settings = {k: getattr(args, k) for k in ("model", "dataset", "epochs", "batch_size",
                                              "optimizer", "lr", "seed", "dtype",
                                              "eval_samples")}
    settings["image_shape"] = list(x_train.shape[1:])
    settings["global_batch"] = args.global_batch or args.batch_size * dist.size()
    settings["ranks"] = dist.size()
    trainer = _make_trainer(settings, data, network, args.epochs, args.quiet)
    settings["lr"] = trainer.optimizer.lr
    settings["threads"] = get_num_threads()
    settings["fastnn_version"] = __version__
    if not args.quiet and dist.is_root():
        n = get_num_threads()
        batch = (f"batch {args.batch_size}" if dist.size() == 1 and not args.global_batch else
                 f"global batch {settings['global_batch']} over {dist.size()} rank"
                 f"{'s' if dist.size() != 1 else ''}")
        print(f"fastnn {__version__}: training {args.model} on {args.dataset} "
              f"({len(x_train)} train / {len(x_test)} test images), {args.optimizer} "
              f"lr={args.lr if args.lr is not None else 'default'}, {batch}, "
              f"{dtype.name}, {n} thread{'s' if n != 1 else ''}", flush=True)
    return _train_and_save(out, trainer, network, settings, args.quiet)


def _read_resume_settings(out, ckpt):
    from .trainer import checkpoint_metadata
    if not os.path.isfile(ckpt):
        raise UsageError(f"{out}: no {CHECKPOINT_FILE} to resume from (is it a folder made by "
                         "'fastnn train --out'?)")
    try:
        return (checkpoint_metadata(ckpt) or {}).get("settings")
    except ValueError as e:  # ParamsError: every rank reports it
        raise UsageError(str(e)) from None


def _resume(args):
    from . import get_num_threads
    from . import distributed as dist

    out = args.resume
    ckpt = os.path.join(out, CHECKPOINT_FILE)
    settings = _on_root(_read_resume_settings, out, ckpt)
    needed = ("model", "dataset", "epochs", "batch_size", "optimizer", "lr", "seed", "dtype",
              "eval_samples")
    if not isinstance(settings, dict) or any(k not in settings for k in needed) or \
            settings["model"] not in MODELS or settings["dataset"] not in DATASETS or \
            settings["optimizer"] not in OPTIMIZERS or settings["dtype"] not in ("float32",
                                                                                  "float64"):
        raise UsageError(f"{ckpt}: the checkpoint's settings are missing or malformed")
    epochs = args.epochs if args.epochs_given else settings["epochs"]
    settings["epochs"] = epochs
    dtype = np.dtype(settings["dtype"])
    data = load_data(settings["dataset"], dtype)
    (x_train, _), _ = data
    if list(x_train.shape[1:]) != list(settings.get("image_shape", x_train.shape[1:])):
        raise UsageError(f"{out}: the run was trained on {settings['dataset']} images of shape "
                         f"{settings['image_shape']}, the data set now has "
                         f"{list(x_train.shape[1:])}")
    np.random.seed(settings["seed"])
    network = build_model(settings["model"], x_train.shape[1:], dtype)
    trainer = _make_trainer(settings, data, network, epochs, args.quiet)
    trainer.load_checkpoint(ckpt)
    if trainer.current_iter >= trainer.max_iter:
        raise UsageError(f"{out}: the run has already finished its {trainer.current_epoch} "
                         f"epochs; pass --epochs N with N > {trainer.current_epoch} to train on")
    settings["threads"] = get_num_threads()
    settings["ranks"] = dist.size()
    if not args.quiet and dist.is_root():
        pos = trainer.current_iter % trainer.iter_per_epoch
        print(f"resuming {settings['model']} on {settings['dataset']} in {out} at epoch "
              f"{trainer.current_epoch + 1}/{epochs}, iteration {pos}/{trainer.iter_per_epoch}",
              flush=True)
    return _train_and_save(out, trainer, network, settings, args.quiet)


def _train_and_save(out, trainer, network, settings, quiet):
    from . import distributed as dist
    from .trainer import TrainingDiverged

    started = time.perf_counter()
    saved = []  # the iteration of the last checkpoint
    root = dist.is_root()

    def save(tr, status="running", curves=False):
        if root:  # under MPI every rank holds the same state; rank 0 writes it
            _save_run(out, tr, network, settings, status, started, curves)
        saved.append(tr.current_iter)

    save(trainer)  # resumable from the start
    try:
        test_acc = trainer.train(on_epoch_end=save)
    except KeyboardInterrupt:
        if trainer.in_step:
            print(f"fastnn: interrupted in the middle of a step; {out} keeps the checkpoint of "
                  f"the last completed epoch. Resume with: fastnn train --resume {out}",
                  file=sys.stderr)
            if dist.is_initialized():  # the other ranks may be inside a collective
                dist.abort(130)
            return 130
        save(trainer, "interrupted", curves=True)
        pos = trainer.current_iter % trainer.iter_per_epoch
        if not root:
            return 130
        print(f"fastnn: interrupted at epoch {trainer.current_epoch + (pos > 0)}/"
              f"{trainer.epochs}, iteration {pos or trainer.iter_per_epoch}/"
              f"{trainer.iter_per_epoch}; saved a checkpoint in {out}. Resume with: "
              f"fastnn train --resume {out}", file=sys.stderr)
        return 130
    except TrainingDiverged as e:  # under MPI: on every rank at once (the loss is global)
        history = _history(trainer, settings, "diverged", started)
        if root:
            _write_json(os.path.join(out, HISTORY_FILE), history)
        epoch, pos = divmod(saved[-1], trainer.iter_per_epoch)
        when = (f"epoch {epoch + 1}, iteration {pos}" if pos else
                f"the end of epoch {epoch}" if epoch else "before the first step")
        raise _on_every_rank(UsageError(f"{e}; the checkpoint in {out} is from {when}")) \
            from None
    save(trainer, "finished", curves=True)
    if not root:
        return 0
    if quiet:
        print(f"test acc:{test_acc:.4f}")
    else:
        print(f"saved {MODEL_FILE}, {CHECKPOINT_FILE}, {HISTORY_FILE} and {CURVES_FILE} in "
              f"{out}")
    return 0


# ------------------------------------------------------------------ evaluate


def _probabilities(network, x, batch_size):
    out = []
    for i in range(0, len(x), batch_size):
        z = np.asarray(network.predict(x[i:i + batch_size]), dtype=np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        out.append(z / z.sum(axis=1, keepdims=True))
    return np.concatenate(out)


def cmd_evaluate(args):
    from .viz import (check_image_path, confusion_matrix, plot_confusion,
                      plot_misclassified)

    if args.run_dir and args.params:
        raise UsageError("give a RUN_DIR or --params FILE, not both")
    if args.run_dir:
        network, info = open_run(args.run_dir)
        dataset, model = info.get("dataset"), info.get("model")
        if dataset not in DATASETS:
            raise UsageError(f"{args.run_dir}: the run does not name its dataset")
        dtype = np.dtype(info.get("dtype") or "float32")
        out_dir = args.out_dir or args.run_dir
    else:
        dataset, model, dtype, out_dir = args.dataset, args.model, np.dtype(args.dtype), \
            args.out_dir
    pictures = None
    if out_dir:
        if not os.path.isdir(out_dir):
            raise UsageError(f"--out-dir {out_dir}: no such folder")
        pictures = [check_image_path(os.path.join(out_dir, f)) for f in (CONFUSION_FILE,
                                                                          MISCLASSIFIED_FILE)]
        _check_writable_file(pictures[0], "--out-dir")
    _, (x_test, t_test) = load_data(dataset, dtype)
    if not args.run_dir:
        network = build_model(model, x_test.shape[1:], dtype)
        network.load_params(args.params, allow_pickle=not args.safe)
    elif tuple(x_test.shape[1:]) != tuple(info["input_shape"]):
        raise UsageError(f"{args.run_dir}: the model takes images of shape "
                         f"{tuple(info['input_shape'])}, {dataset} has {x_test.shape[1:]}")
    names = CLASS_NAMES[dataset]
    t = np.asarray(t_test, dtype=np.int64)
    prob = _probabilities(network, x_test, args.batch_size)
    if prob.shape[1] != len(names):
        raise UsageError(f"the model has {prob.shape[1]} outputs but {dataset} has "
                         f"{len(names)} classes")
    pred = prob.argmax(axis=1)
    acc = float(np.mean(pred == t))
    print(f"test accuracy: {acc:.4f} ({len(x_test)} {dataset} test images, {model})")
    counts = confusion_matrix(t, pred, len(names))
    width = max(len(n) for n in names)
    print("per-class accuracy:")
    for k, name in enumerate(names):
        n = int(counts[k].sum())
        right = int(counts[k, k])
        print(f"  {name:<{width}}  {right / n if n else float('nan'):.4f}  ({right}/{n})")
    if pictures:
        wrong = np.flatnonzero(pred != t)
        shown = wrong[:args.max_images]
        plot_confusion(counts, names, pictures[0],
                       title=f"{model} on {dataset}: test accuracy {acc:.4f}")
        plot_misclassified(x_test[shown], t[shown], pred[shown], prob[shown, pred[shown]],
                           names, pictures[1],
                           title=f"{len(shown)} of {len(wrong)} misclassified test images")
        print(f"saved {CONFUSION_FILE} and {MISCLASSIFIED_FILE} ({len(shown)} of {len(wrong)} "
              f"misclassified images) in {out_dir}")
    return 0


# ------------------------------------------------------------------ predict


def load_image(path, shape, invert="auto"):
    """The image file ``path`` as the training data looks: grayscale, resized to ``shape`` =
    (1, H, W) after padding it to the aspect ratio of H:W, pixel values scaled to [0, 1].
    The data sets have light objects on a dark background; ``invert='auto'`` inverts images
    whose border is mostly light (a photo or a drawing on white paper)."""
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise UsageError("predict needs Pillow: pip install pillow") from None
    if shape[0] != 1:
        raise UsageError(f"the model takes {shape[0]}-channel images; predict reads grayscale")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.width == 0 or im.height == 0:
                raise UsageError(f"{path}: the image is {im.width}x{im.height} pixels")
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and
                                                    "transparency" in im.info):
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, im)
            gray = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
    except UsageError:
        raise
    except FileNotFoundError:
        raise
    except Exception as e:  # Pillow raises many kinds for files it cannot read
        raise UsageError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if invert == "yes" or (invert == "auto" and border.mean() > 0.5):
        gray = 1.0 - gray
    H, W = shape[1:]
    h, w = gray.shape
    # pad with the background to H:W, so that the object keeps its proportions
    th, tw = max(h, math.ceil(w * H / W)), max(w, math.ceil(h * W / H))
    canvas = np.full((th, tw), float(np.median(np.concatenate([gray[0], gray[-1]]))))
    canvas[(th - h) // 2:(th - h) // 2 + h, (tw - w) // 2:(tw - w) // 2 + w] = gray
    img = Image.fromarray(np.round(canvas * 255).astype(np.uint8))
    resample = getattr(Image, "Resampling", Image).LANCZOS
    img = img.resize((W, H), resample)
    return (np.asarray(img, dtype=np.float64) / 255.0).reshape(shape)


def cmd_predict(args):
    network, info = open_run(args.run_dir)
    names = info.get("classes") or [str(i) for i in range(10)]
    shape = tuple(info["input_shape"])
    if len(shape) != 3:
        raise UsageError(f"{args.run_dir}: the model takes inputs of shape {shape}, not images")
    dtype = np.dtype(info.get("dtype") or "float32")
    x = np.stack([load_image(p, shape, args.invert) for p in args.images]).astype(dtype)
    prob = _probabilities(network, x, 100)
    top = min(args.top, prob.shape[1])
    for path, p in zip(args.images, prob):
        best = np.argsort(-p, kind="stable")[:top]
        label = lambda k: names[k] if k < len(names) else str(k)  # noqa: E731
        print(f"{path}: " + ", ".join(f"{label(k)} {100 * p[k]:.1f}%" for k in best))
    return 0


# ------------------------------------------------------------------ export


def cmd_export(args):
    _check_writable_file(args.onnx, "--onnx")
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UsageError("export needs the onnx package: pip install onnx") from None
    from .export import to_onnx
    network, info = open_run(args.run_dir)
    shape = tuple(info["input_shape"])
    try:
        model = to_onnx(network, shape, args.onnx, model_name=info.get("model"))
    except ValueError as e:
        raise UsageError(str(e)) from None
    n_out = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    print(f"wrote {args.onnx}: {info.get('model')}, input 'input' (N, "
          f"{', '.join(map(str, shape))}) float32 -> 'logits' and 'probabilities' (N, {n_out})")
    return 0


# ------------------------------------------------------------------ show-filters


def cmd_show_filters(args):
    from .models import _params
    from .viz import show_filters
    if args.run_dir and args.params:
        raise UsageError("give a RUN_DIR or --params FILE, not both")
    if args.run_dir:
        network, _ = open_run(args.run_dir)
        params, source = network.params, args.run_dir
    else:
        params, source = _params.load(args.params, allow_pickle=not args.safe), args.params
    W = params.get(args.key)
    if W is None or W.ndim != 4:
        raise UsageError(f"{source}: {args.key} is not a convolution weight "
                         f"(FN, C, FH, FW); found {sorted(params)}")
    show_filters(W, args.out)
    print(f"saved {W.shape[0]} filters of {args.key} {tuple(W.shape)} to {args.out}")
    return 0


# ------------------------------------------------------------------ command line


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The default of every option in its help (also of options without a help text; an
    option whose default is None says what that means itself), descriptions and epilogs as
    written."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or not action.option_strings:
            return text
        return super()._get_help_string(argparse.Action(
            action.option_strings, action.dest, default=action.default, help=text or " ",
            required=action.required)).strip()


def _number(kind, low=None, low_open=False, high=None, what=None):
    """An argparse type: a finite ``kind`` within bounds."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what or 'a ' + kind.__name__}") \
                from None
        if kind is float and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if low is not None and (v <= low if low_open else v < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, "
                                             f"got {text}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {text}")
        return v
    return parse


def _positive(kind):
    return _number(kind, 0, low_open=True)


def _picture(text):
    from .viz import check_image_path
    try:
        return check_image_path(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _epilog():
    width = max(len(n) for n in list(MODELS) + list(DATASETS))
    lines = ["models:"] + [f"  {n:<{width}}  {d}" for n, d in MODELS.items()]
    lines += ["datasets:"] + [f"  {n:<{width}}  {d}" for n, d in DATASETS.items()]
    lines += ["", "Data is read from $FASTNN_DATA, ~/.cache/fastnn/<name>/ or Debian's "
              "dataset-fashion-mnist package,", "else downloaded. Run 'fastnn COMMAND --help' "
              "for the options of a command."]
    return "\n".join(lines)


def build_parser():
    from . import __version__
    p = _Parser(prog="fastnn", formatter_class=_Formatter, epilog=_epilog(),
                description="Train and inspect the networks of 'Deep Learning from Scratch' on "
                "fastnn's compiled layers.")
    p.add_argument("--version", action="version", version=f"fastnn {__version__}")
    p.add_argument("--threads", type=_positive(int), default=None,
                   help="threads for the kernels (default: all cores)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help, description):
        import textwrap
        return sub.add_parser(name, help=help, description=textwrap.fill(description, 79),
                              formatter_class=_Formatter)

    t = command("train", "train a network; save the model, a checkpoint, history and curves",
                "Train a network. Ctrl-C stops after the current step and saves a checkpoint; "
                "'--resume RUN_DIR' continues (also to train more epochs, with --epochs).")
    t.add_argument("--model", choices=MODELS, default="simple_convnet",
                   help="the network (see 'fastnn --help')")
    t.add_argument("--dataset", choices=DATASETS, default="fashion-mnist",
                   help="the data set (see 'fastnn --help')")
    t.add_argument("--epochs", type=_positive(int), default=5,
                   help="passes over the training set (with --resume: the new total)")
    t.add_argument("--batch-size", type=_positive(int), default=100,
                   help="images per mini-batch (under mpiexec: per rank)")
    t.add_argument("--global-batch", type=_positive(int), default=None,
                   help="under mpiexec: images per step over all ranks, split between them "
                   "(default: --batch-size x the ranks)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", type=str.lower,
                   help="update rule (fastnn.optim)")
    t.add_argument("--lr", type=_positive(float), default=None,
                   help="learning rate (default: the optimizer's, e.g. Adam 0.001, SGD 0.01)")
    t.add_argument("--seed", type=_number(int, 0, high=2**32 - 1, what="an integer"),
                   default=0, help="seed of NumPy's random generator (0 to 2**32-1)")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="dtype of the parameters and images")
    t.add_argument("--eval-samples", type=_positive(int), default=None,
                   help="measure per-epoch accuracies on the first N images (default: all)")
    t.add_argument("--out", default=None, help="run folder (default: runs/MODEL-DATASET)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace a previous run in --out instead of refusing")
    t.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run saved in RUN_DIR with its settings (only --epochs "
                   "and --quiet may be given with it)")
    t.add_argument("--quiet", action="store_true",
                   help="no progress bar or epoch lines; only the final accuracy")
    t.set_defaults(func=cmd_train)

    def model_source(c, picture_help):
        c.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                       help="a folder written by 'fastnn train'")
        c.add_argument("--params", default=None,
                       help="a parameter file (.safetensors, .npz or the book's .pkl) instead "
                       "of RUN_DIR; needs --model" + picture_help)
        c.add_argument("--safe", action="store_true",
                       help="refuse pickle files altogether (.pkl files are read without "
                       "running code either way)")

    e = command("evaluate", "per-class test accuracy, confusion matrix, misclassified images",
                "Evaluate a trained network on its test set: overall and per-class accuracy, "
                f"{CONFUSION_FILE} and {MISCLASSIFIED_FILE} (in RUN_DIR or --out-dir).")
    model_source(e, "")
    e.add_argument("--model", choices=MODELS, default="simple_convnet",
                   help="the network of --params")
    e.add_argument("--dataset", choices=DATASETS, default="fashion-mnist",
                   help="the data set for --params")
    e.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="the dtype for --params")
    e.add_argument("--batch-size", type=_positive(int), default=100,
                   help="images per forward pass")
    e.add_argument("--out-dir", default=None,
                   help="folder for the pictures (default: RUN_DIR; none with --params)")
    e.add_argument("--max-images", type=_positive(int), default=36,
                   help="misclassified images to draw")
    e.set_defaults(func=cmd_evaluate)

    pr = command("predict", "top classes for your own images",
                 "Classify image files (PNG, JPEG, ...) with a trained network: each is "
                 "converted like the training data (grayscale, padded to shape, resized, "
                 "scaled to [0, 1]).")
    pr.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'fastnn train'")
    pr.add_argument("images", nargs="+", metavar="IMAGE")
    pr.add_argument("--top", type=_positive(int), default=3, help="classes to show per image")
    pr.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                    help="the data sets show light objects on dark; auto inverts images with "
                    "a light border")
    pr.set_defaults(func=cmd_predict)

    x = command("export", "write the network as an ONNX model",
                "Write a trained network as an ONNX model (input 'input', outputs 'logits' and "
                "'probabilities') for onnxruntime and other ONNX tools. Needs the onnx package.")
    x.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'fastnn train'")
    x.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    x.set_defaults(func=cmd_export)

    s = command("show-filters", "draw the first-layer convolution filters",
                "Draw the filters of a convolution weight (default W1) in a grid.")
    model_source(s, "")
    s.add_argument("--out", default="filters.png", type=_picture,
                   help="picture file; its extension picks the format")
    s.add_argument("--key", default="W1", help="which weight to draw")
    s.set_defaults(func=cmd_show_filters)
    return p


def _given(argv, option):
    return any(a == option or a.startswith(option + "=") for a in argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        args.epochs_given = _given(argv, "--epochs")
        if args.resume:
            extra = [a.split("=")[0] for a in argv[argv.index("train") + 1:]
                     if a.startswith("--") and a.split("=")[0] not in RESUME_OPTIONS]
            if extra:
                parser.error(f"--resume continues a run with its saved settings; "
                             f"{', '.join(extra)} cannot be given with it")
    elif args.command in ("evaluate", "show-filters") and not (args.run_dir or args.params):
        parser.error(f"{args.command} needs a RUN_DIR or --params FILE")
    from .datasets import DatasetError
    from .models import ParamsError
    try:
        if getattr(args, "threads", None):
            from . import set_num_threads
            set_num_threads(args.threads)
        return args.func(args)
    except (UsageError, DatasetError, ParamsError, OSError) as e:
        msg = str(e).replace("\n", " ")
        if isinstance(e, OSError) and e.filename and str(e.filename) not in msg:
            msg = f"{e.filename}: {msg}"
        from . import distributed as dist
        if dist.is_initialized():
            if not getattr(e, "all_ranks", False):  # end every rank, also those waiting
                dist.abort(1, f"fastnn: error: {msg}")
            if not dist.is_root():                    # all ranks stop here: one message
                return 1
        print(f"fastnn: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        from . import distributed as dist
        if dist.is_initialized():
            dist.abort(130, "fastnn: interrupted")
        print("fastnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
