"""Iris classification with a 4-10-5-3 network (the BaseNN first lesson).

Run: python examples/basenn/iris.py
"""

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from fastnn.basenn import nn


def main(epochs=300, lr=0.01, save_fold="checkpoints/iris_ckpt", seed=0):
    x, y = load_iris(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=0.2, random_state=seed,
                                                        stratify=y)
    model = nn("cls")
    model.set_seed(seed)
    model.load_dataset(train_x, train_y, classes=["setosa", "versicolor", "virginica"])
    model.add("linear", size=(4, 10), activation="relu")     # [120, 10]
    model.add("linear", size=(10, 5), activation="relu")     # [120, 5]
    model.add("linear", size=(5, 3), activation="softmax")   # [120, 3]
    model.add(optimizer="Adam")
    model.save_fold = save_fold
    model.train(lr=lr, epochs=epochs)
    model.print_model()

    infer = nn()
    res = infer.inference(data=test_x, checkpoint=f"{save_fold}/basenn.pth")
    infer.print_result(res[:5])
    acc = float(np.mean(res.argmax(1) == test_y))
    print(f"test accuracy: {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()
