"""A two-class image classifier on MobileNetV2's features, as BaseNN's cats-and-dogs lesson
writes it (only the import changes).

With no data folder given it makes one: two kinds of 40x40 colour pictures (smooth blobs vs
stripes) in <folder>/training_set/<class>/ and <folder>/test_set/<class>/, the ImageFolder
layout the lesson reads. Pass torchvision MobileNetV2 weights (a state_dict saved with
np.savez or safetensors) to start from them.

Run: python examples/basenn/mobilenet_cats_dogs.py [data_folder] [--weights mobilenet_v2.npz]
"""

import argparse
import os
import tempfile

import numpy as np
from PIL import Image

from fastnn.basenn import nn


def make_folder(root, per_class=96, size=40, seed=0):
    """Generated 'cat' (blobs) and 'dog' (stripes) pictures in training_set/ and test_set/."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for split, n in (("training_set", per_class), ("test_set", per_class // 3)):
        for label in ("cat", "dog"):
            folder = os.path.join(root, split, label)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                if label == "cat":
                    cy, cx, r = rng.uniform(0.3, 0.7, 2).tolist() + [rng.uniform(0.15, 0.3)]
                    pattern = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
                else:
                    angle, freq = rng.uniform(0, np.pi), rng.uniform(4, 8)
                    pattern = 0.5 + 0.5 * np.sin(2 * np.pi * freq *
                                                 (np.cos(angle) * xx + np.sin(angle) * yy))
                colour = rng.uniform(0.3, 1.0, 3)
                img = pattern[..., None] * colour + 0.1 * rng.random((size, size, 3))
                Image.fromarray((255 * np.clip(img, 0, 1)).astype(np.uint8)).save(
                    os.path.join(folder, f"{label}{i}.png"))
    return root


def main(data=None, weights=None, epochs=10, save_fold="mobilenet_ckpt", seed=0):
    data = data or make_folder(tempfile.mkdtemp(prefix="catsdogs_"), seed=seed)
    model = nn()
    model.set_seed(seed)
    model.load_img_data(os.path.join(data, "training_set"), color="RGB", batch_size=32,
                        shuffle=True, transform={"Resize": [32, 32]})
    model.add("mobilenet_backbone", weights=weights)               # (N, 3, 32, 32) -> (N, 1280)
    model.add("Linear", size=(1280, 1000), activation="relu")
    model.add("Dropout", p=0.2)
    model.add("Linear", size=(1000, 2), activation="Softmax")
    model.add(optimizer="Adam")
    model.save_fold = save_fold
    model.train(lr=1e-3, epochs=epochs, metrics=["acc"])

    test = nn()
    test.load_img_data(os.path.join(data, "test_set"), color="RGB",
                       transform={"Resize": [32, 32]}, shuffle=False)
    probs = model.inference(data=test.x, checkpoint=os.path.join(save_fold, "basenn.pth"))
    acc = float(np.mean(probs.argmax(axis=1) == test.y))
    print(f"test accuracy {acc:.3f} on {len(test.y)} pictures")
    one = os.path.join(data, "test_set", "dog", "dog0.png")
    print("dog0.png ->", model.inference(data=one).round(3))
    return acc


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("data", nargs="?", help="folder with training_set/ and test_set/")
    p.add_argument("--weights", help="torchvision mobilenet_v2 state_dict (.npz/.safetensors)")
    p.add_argument("--epochs", type=int, default=10)
    a = p.parse_args()
    main(a.data, a.weights, a.epochs)
