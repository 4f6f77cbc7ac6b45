"""LeNet-5 on Fashion-MNIST, images zero-padded from 28x28 to 32x32.

Run: python examples/basenn/lenet_fashion_mnist.py   (fastnn.datasets finds the IDX files of
the Debian package fashion-mnist in /usr/share/datasets, or a copy in ~/.cache/fastnn)
"""

import numpy as np

from fastnn.basenn import nn
from fastnn.datasets import load_fashion_mnist

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


def pad32(x):
    """(N, 1, 28, 28) -> (N, 1, 32, 32) with a 2-pixel zero border, as LeNet-5 expects."""
    return np.pad(x, [(0, 0), (0, 0), (2, 2), (2, 2)])


def main(epochs=2, n_train=None, n_test=None, batch_size=32, lr=0.002,
         save_fold="checkpoints/mn_ckpt1", seed=0):
    (train_x, train_y), (test_x, test_y) = load_fashion_mnist(flatten=False, dtype=np.float32)
    train_x, train_y = pad32(train_x[:n_train]), train_y[:n_train].astype(np.int64)
    test_x, test_y = pad32(test_x[:n_test]), test_y[:n_test].astype(np.int64)
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
