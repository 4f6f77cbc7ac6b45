"""Action recognition from pose sequences with BaseNN's action_model (only the import changes).

Each sample is 30 frames of 33 body keypoints x (x, y, z, visibility) = 132 features, as
MediaPipe's pose landmarks give them. With no recorded data at hand the sequences are
generated: a standing skeleton plus the motion of one of three actions (walking: legs swing;
boxing: one arm punches forward; waving: a hand moves side to side above the head), with
random speed, phase, body position and noise.

Run: python examples/basenn/action_sequences.py
"""

import numpy as np

from fastnn.basenn import nn

ACTIONS = ("walking", "boxing", "waving")
FRAMES, POINTS = 30, 33
LEGS, PUNCH_ARM, WAVE_ARM = (25, 26, 27, 28), (14, 16), (13, 15)


def make_data(n, seed=0):
    """(x of shape (n, 30, 132), y of shape (n,)): generated pose sequences of ACTIONS."""
    base = np.random.default_rng(1234).uniform(0.4, 0.6, (POINTS, 3))    # one skeleton
    base[:, 1] = np.linspace(0.1, 0.9, POINTS)              # head at the top, feet at the bottom
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(ACTIONS), n)
    t = np.arange(FRAMES)[:, None]
    x = np.empty((n, FRAMES, POINTS, 4))
    for i, a in enumerate(y):
        speed, phase = rng.uniform(0.2, 0.5), rng.uniform(0, 2 * np.pi)
        person = base * rng.uniform(0.9, 1.1, 3) + rng.normal(0, 0.05, 3)   # size and place
        pose = np.broadcast_to(person, (FRAMES, POINTS, 3)).copy()
        wave = np.sin(speed * t + phase)
        if a == 0:
            pose[:, LEGS, 0] += 0.1 * wave * np.array([1, -1, 1, -1])
        elif a == 1:
            pose[:, PUNCH_ARM, 2] -= 0.15 * np.maximum(wave, 0)
        else:
            pose[:, WAVE_ARM, 0] += 0.12 * wave
            pose[:, WAVE_ARM, 1] = 0.05
        x[i, :, :, :3] = pose + rng.normal(0, 0.01, pose.shape)
        x[i, :, :, 3] = rng.uniform(0.8, 1.0, (FRAMES, POINTS))
    return x.reshape(n, FRAMES, POINTS * 4).astype(np.float32), y


def main(epochs=15, n_train=600, lr=0.005, save_fold="checkpoints/action_ckpt", seed=0):
    x, y = make_data(n_train, seed)
    test_x, test_y = make_data(150, seed + 1)
    # Keypoints move little against where they are: standardise each feature with the
    # training set's mean and spread, so the LSTM sees the motion.
    mean, std = x.mean(axis=(0, 1)), x.std(axis=(0, 1)) + 1e-6
    x, test_x = (x - mean) / std, (test_x - mean) / std
    model = nn("cls")
    model.set_seed(seed)
    model.load_dataset(x, y, classes=list(ACTIONS), batch_size=50)
    model.add("action_model", size=(132, 256))           # LSTM + last step + BatchNorm1d
    model.add("linear", size=(256, 64))
    model.add("linear", size=(64, 3))
    model.add(activation="Softmax")
    model.add(optimizer="Adam")
    model.save_fold = save_fold
    model.train(lr=lr, epochs=epochs, metrics=["acc"])
    res = model.inference(test_x)
    acc = float(np.mean(res.argmax(1) == test_y))
    print(f"test accuracy: {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()
