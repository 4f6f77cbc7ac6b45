"""LeNet-5 on Fashion-MNIST, images zero-padded from 28x28 to 32x32.

Run: python examples/basenn/lenet_fashion_mnist.py   (reads the IDX files of the Debian package
fashion-mnist, /usr/share/datasets/fashion-mnist; set FASHION_MNIST_DIR to read them elsewhere)
"""

import gzip
import os

import numpy as np

from fastnn.basenn import nn

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


def read_idx(path):
    """An IDX file (the MNIST format: magic, dims as big-endian int32, then uint8 data)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, ">i4", count=ndim, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(kind, n=None):
    """(N, 1, 32, 32) float32 images in [0, 1] and int64 labels."""
    prefix = "train" if kind == "train" else "t10k"
    x = read_idx(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))[:n]
    y = read_idx(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))[:n]
    x = np.pad(x, [(0, 0), (2, 2), (2, 2)]).astype(np.float32)[:, None] / 255.0
    return x, y.astype(np.int64)


def main(epochs=2, n_train=None, n_test=None, batch_size=32, lr=0.002,
         save_fold="checkpoints/mn_ckpt1", seed=0):
    train_x, train_y = load("train", n_train)
    test_x, test_y = load("test", n_test)
    model = nn("cls")
    model.set_seed(seed)
    model.load_dataset(train_x, train_y, classes=CLASSES)
    model.add("Conv2D", size=(1, 6), kernel_size=(5, 5), activation="ReLU")   # [32, 6, 28, 28]
    model.add("AvgPool", kernel_size=(2, 2))                                   # [32, 6, 14, 14]
    model.add("Conv2D", size=(6, 16), kernel_size=(5, 5), activation="ReLU")  # [32, 16, 10, 10]
    model.add("AvgPool", kernel_size=(2, 2))                                   # [32, 16, 5, 5]
    model.add("Linear", size=(400, 120), activation="ReLU")                    # [32, 120]
    model.add("Linear", size=(120, 84), activation="ReLU")                     # [32, 84]
    model.add("Linear", size=(84, 10), activation="Softmax")                   # [32, 10]
    model.add(optimizer="Adam")
    model.save_fold = save_fold
    model.train(lr=lr, epochs=epochs, batch_size=batch_size)
    model.print_model()

    res = model.inference(data=test_x, checkpoint=f"{save_fold}/basenn.pth")
    model.print_result(res[:3])
    acc = float(np.mean(res.argmax(1) == test_y))
    print(f"test accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()
