"""A DDPM (diffusion_model) that learns to draw digits: scikit-learn's 8x8 digits, upsampled
to 16x16, then samples a grid of new ones.

Run: python examples/basenn/diffusion_digits.py   (writes <save_fold>/noisy.png, the forward
process of one digit, and <save_fold>/diffusion_grid.png / diffusion_timesteps.png, samples)
"""

import numpy as np
from sklearn.datasets import load_digits

from fastnn.basenn import nn


def digits16(n=None):
    """(N, 1, 16, 16) float32 in [0, 1]: each 8x8 digit (0..16) repeated 2x2."""
    x = load_digits().images[:n] / 16.0
    return x.repeat(2, axis=1).repeat(2, axis=2)[:, None].astype(np.float32)


def main(epochs=10, n_train=None, timestep=200, dim=32, batch_size=64, lr=2e-3, num=16,
         save_fold="checkpoints/diffusion_digits", seed=0):
    x = digits16(n_train)
    model = nn()
    model.set_seed(seed)
    model.add("diffusion_model", img_size=16, timestep=timestep, dim=dim)
    model.color = "grayscale"
    model.save_fold = save_fold
    model.noisy(x[0], timestep=timestep, num=8, show=True)
    model.load_dataset(x)
    model.add(optimizer="Adam")
    history = model.train(epochs=epochs, lr=lr, batch_size=batch_size, metrics=[])
    imgs = model.inference(num=num, return_all_timesteps=True)     # (num, T + 1, 1, 16, 16)
    side = int(np.sqrt(num))
    model.show(imgs, size=(side, num // side))
    model.show(imgs, size=(min(4, num), 8), visual_timesteps=True)
    return [h["loss"] for h in history], imgs


if __name__ == "__main__":
    losses, _ = main()
    print(f"loss: first epoch {losses[0]:.4f}, last epoch {losses[-1]:.4f}")
