"""An LSTM classifier of generated sequences: noisy sine waves of three frequencies.

The stack is BaseNN's recurrent recipe: lstm -> dropout -> unsqueeze (keep the last step) ->
lstm -> squeeze -> batchnorm1d -> linear -> softmax.
Run: python examples/basenn/lstm_sequences.py
"""

import numpy as np

from fastnn.basenn import nn

FREQS = (0.4, 0.9, 1.6)


def make_data(n, length=16, seed=0):
    """n sequences of shape (length, 2): a sine of one of three frequencies and its square."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(FREQS), size=n)
    t = np.arange(length)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    s = np.sin(np.asarray(FREQS)[y][:, None] * t + phase) + 0.2 * rng.standard_normal((n, length))
    return np.stack([s, s * s], axis=-1).astype(np.float32), y


def main(epochs=30, n_train=600, lr=0.01, save_fold="checkpoints/lstm_ckpt", seed=0):
    x, y = make_data(n_train, seed=seed)
    test_x, test_y = make_data(300, seed=seed + 1)
    model = nn("cls")
    model.set_seed(seed)
    model.load_dataset(x, y, classes=[f"{f} rad/step" for f in FREQS])
    model.add("lstm", size=(2, 32))              # [N, 16, 32]
    model.add("Dropout", p=0.1)
    model.add("unsqueeze")                       # [N, 1, 32]
    model.add("lstm", size=(32, 32))             # [N, 1, 32]
    model.add("squeeze")                         # [N, 32]
    model.add("BatchNorm1d", size=32)
    model.add("linear", size=(32, 3))
    model.add(activation="Softmax")
    model.add(optimizer="Adam")
    model.save_fold = save_fold
    model.train(lr=lr, epochs=epochs, batch_size=50)
    model.print_model()
    res = model.inference(test_x)
    acc = float(np.mean(res.argmax(1) == test_y))
    print(f"test accuracy: {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()
