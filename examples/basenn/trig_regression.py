"""Regression of y = sin(x) + 0.5 cos(2x) on [-pi, pi] with MSELoss, reporting mae.

Run: python examples/basenn/trig_regression.py
"""

import numpy as np

from fastnn.basenn import nn


def target(x):
    return np.sin(x) + 0.5 * np.cos(2 * x)


def main(epochs=400, lr=0.01, save_fold="checkpoints/trig_ckpt", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, size=(512, 1))
    y = target(x)
    model = nn("reg")
    model.set_seed(seed)
    model.load_dataset(x, y)
    model.add("Linear", size=(1, 32), activation="tanh")
    model.add("Linear", size=(32, 32), activation="tanh")
    model.add("Linear", size=(32, 1))
    model.add(optimizer="Adam")
    model.save_fold = save_fold
    model.train(lr=lr, epochs=epochs, batch_size=128, loss="MSELoss", metrics=["mae"])

    test_x = np.linspace(-np.pi, np.pi, 200).reshape(-1, 1)
    pred = model.inference(test_x)
    mae = float(np.mean(np.abs(pred - target(test_x))))
    print(f"test mae: {mae:.4f}")
    print("f(1.0) ~", model.inference(np.array([1.0])).item(), "exact", target(1.0))
    return mae


if __name__ == "__main__":
    main()
