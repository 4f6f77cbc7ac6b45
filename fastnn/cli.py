"""The ``fastnn`` command: train the book's networks on real data, evaluate, draw filters.

    fastnn train --model simple_convnet --dataset fashion-mnist --epochs 5 --out runs/scn
    fastnn evaluate --model simple_convnet --params runs/scn/params.pkl --dataset fashion-mnist
    fastnn show-filters --params runs/scn/params.pkl --out filters.png
"""

import argparse
import json
import os
import sys
import time

import numpy as np

MODELS = ("simple_convnet", "mlp", "deep_convnet", "multilayer")
DATASETS = ("fashion-mnist", "mnist", "digits")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, no traceback."""


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
    """((x_train, t_train), (x_test, t_test)) with images as (N, C, H, W) in ``dtype``."""
    from . import datasets
    if name == "fashion-mnist":
        return datasets.load_fashion_mnist(flatten=False, dtype=dtype)
    if name == "mnist":
        return datasets.load_mnist(flatten=False, dtype=dtype)
    if name == "digits":
        return datasets.load_digits(flatten=False, dtype=dtype)
    raise UsageError(f"unknown dataset {name!r}")


def cmd_train(args):
    from . import __version__, get_num_threads
    from .trainer import Trainer
    from .viz import plot_curves

    dtype = np.dtype(args.dtype)
    (x_train, t_train), (x_test, t_test) = load_data(args.dataset, dtype)
    np.random.seed(args.seed)
    network = build_model(args.model, x_train.shape[1:], dtype)
    opt_param = {} if args.lr is None else {"lr": args.lr}
    os.makedirs(args.out, exist_ok=True)
    print(f"fastnn {__version__}: training {args.model} on {args.dataset} "
          f"({len(x_train)} train / {len(x_test)} test images), {args.optimizer} "
          f"lr={args.lr if args.lr is not None else 'default'}, batch {args.batch_size}, "
          f"{dtype.name}, {get_num_threads()} thread{'s' if get_num_threads() != 1 else ''}",
          flush=True)
    trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=args.epochs,
                      mini_batch_size=args.batch_size, optimizer=args.optimizer,
                      optimizer_param=opt_param,
                      evaluate_sample_num_per_epoch=args.eval_samples,
                      verbose=not args.quiet)
    start = time.perf_counter()
    test_acc = trainer.train()
    total = time.perf_counter() - start

    params_file = os.path.join(args.out, "params.pkl")
    network.save_params(params_file)
    settings = {k: getattr(args, k) for k in ("model", "dataset", "epochs", "batch_size",
                                              "optimizer", "lr", "seed", "dtype",
                                              "eval_samples")}
    settings["lr"] = trainer.optimizer.lr
    settings["threads"] = get_num_threads()
    settings["fastnn_version"] = __version__
    history = {
        "settings": settings,
        "train_loss": trainer.train_loss_list,
        "train_acc": trainer.train_acc_list,
        "test_acc": trainer.test_acc_list,
        "epoch_time": trainer.epoch_time_list,
        "final_test_acc": test_acc,
        "total_time": total,
    }
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(history, f, indent=1)
    plot_curves(history, os.path.join(args.out, "curves.png"))
    print(f"saved {params_file}, history.json and curves.png in {args.out}")
    return 0


def cmd_evaluate(args):
    dtype = np.dtype(args.dtype)
    _, (x_test, t_test) = load_data(args.dataset, dtype)
    network = build_model(args.model, x_test.shape[1:], dtype)
    network.load_params(args.params, allow_pickle=not args.safe)
    acc = network.accuracy(x_test, t_test, batch_size=args.batch_size)
    print(f"test accuracy: {acc:.4f} ({len(x_test)} {args.dataset} test images, {args.model})")
    return 0


def cmd_show_filters(args):
    from .models import _params
    from .viz import show_filters
    params = _params.load(args.params, allow_pickle=not args.safe)
    W = params.get(args.key)
    if W is None or W.ndim != 4:
        raise UsageError(f"{args.params}: {args.key} is not a convolution weight "
                         f"(FN, C, FH, FW); found {sorted(params)}")
    show_filters(W, args.out)
    print(f"saved {W.shape[0]} filters of {args.key} {tuple(W.shape)} to {args.out}")
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive(kind):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return v
    return parse


def build_parser():
    from . import __version__
    p = _Parser(prog="fastnn", description="Train and inspect the networks of 'Deep Learning "
                "from Scratch' on fastnn's compiled layers.")
    p.add_argument("--version", action="version", version=f"fastnn {__version__}")
    p.add_argument("--threads", type=_positive(int), help="threads for the kernels")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a network, save params, history and curves")
    t.add_argument("--model", choices=MODELS, default="simple_convnet")
    t.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    t.add_argument("--epochs", type=_positive(int), default=5)
    t.add_argument("--batch-size", type=_positive(int), default=100)
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", type=str.lower)
    t.add_argument("--lr", type=_positive(float), default=None,
                   help="learning rate (default: the optimizer's, e.g. Adam 0.001, SGD 0.01)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    t.add_argument("--eval-samples", type=_positive(int), default=None,
                   help="measure per-epoch accuracies on the first N images (default: all)")
    t.add_argument("--out", default=None, help="output folder (default runs/MODEL-DATASET)")
    t.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="print the test accuracy of saved parameters")
    e.add_argument("--model", choices=MODELS, default="simple_convnet")
    e.add_argument("--params", required=True, help="params.pkl or .npz file")
    e.add_argument("--safe", action="store_true",
                   help="refuse pickle files (.pkl can run code when loaded): .npz only")
    e.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    e.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    e.add_argument("--batch-size", type=_positive(int), default=100)
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("show-filters", help="draw the first-layer convolution filters")
    s.add_argument("--params", required=True, help="params.pkl or .npz file")
    s.add_argument("--safe", action="store_true",
                   help="refuse pickle files (.pkl can run code when loaded): .npz only")
    s.add_argument("--out", default="filters.png")
    s.add_argument("--key", default="W1", help="which weight to draw (default W1)")
    s.set_defaults(func=cmd_show_filters)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "out", None) is None and args.command == "train":
        args.out = os.path.join("runs", f"{args.model}-{args.dataset}")
    from .datasets import DatasetError
    from .models import ParamsError
    try:
        if args.threads:
            from . import set_num_threads
            set_num_threads(args.threads)
        return args.func(args)
    except (UsageError, DatasetError, ParamsError, OSError) as e:
        msg = str(e).replace("\n", " ")
        if isinstance(e, OSError) and e.filename and str(e.filename) not in msg:
            msg = f"{e.filename}: {msg}"
        print(f"fastnn: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
