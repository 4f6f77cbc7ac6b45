"""fastnn.basenn's diffusion U-Net (fastnn/basenn/diffusion.py) written with torch.nn, module
for module, so that the two share weights by name (``fastnn_key``): the comparison network of
the tests and of the basenn:diffusion benchmark row."""

import math

import torch
from torch import nn
from torch.nn import functional as F


def sinusoidal(t, dim):
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float64) * -(math.log(10000) /
                                                                 max(half - 1, 1)))
    arg = t.to(torch.float64)[:, None] * freqs[None, :]
    return torch.cat([arg.sin(), arg.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c_in, c_out, t_dim, groups=8):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm1 = nn.GroupNorm(groups, c_out)
        self.mlp = nn.Linear(t_dim, 2 * c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.res = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x, temb):
        scale, shift = self.mlp(F.silu(temb))[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.norm1(self.conv1(x)) * (scale + 1) + shift)
        h = F.silu(self.norm2(self.conv2(h)))
        return h + (self.res(x) if self.res is not None else x)


class UNet(nn.Module):
    def __init__(self, channels=1, dim=32, groups=8):
        super().__init__()
        self.dim = dim
        t_dim = 4 * dim
        self.time1 = nn.Linear(dim, t_dim)
        self.time2 = nn.Linear(t_dim, t_dim)
        self.init = nn.Conv2d(channels, dim, 3, padding=1)
        self.down_block = ResBlock(dim, dim, t_dim, groups)
        self.down = nn.Conv2d(4 * dim, 2 * dim, 1)
        self.mid = ResBlock(2 * dim, 2 * dim, t_dim, groups)
        self.up = nn.Conv2d(2 * dim, dim, 3, padding=1)
        self.up_block = ResBlock(2 * dim, dim, t_dim, groups)
        self.final = nn.Conv2d(dim, channels, 1)

    def forward(self, x, t):
        temb = self.time2(F.silu(self.time1(sinusoidal(t, self.dim).to(x.dtype))))
        h = self.down_block(self.init(x), temb)
        y = self.mid(self.down(F.pixel_unshuffle(h, 2)), temb)
        y = self.up(F.interpolate(y, scale_factor=2, mode="nearest"))
        return self.final(self.up_block(torch.cat([y, h], dim=1), temb))


def fastnn_key(name):
    """The fastnn parameter name of the torch state_dict entry ``name``."""
    prefix, _, last = name.rpartition(".")
    norm = prefix.rsplit(".", 1)[-1].startswith("norm")
    if norm:
        return f"{prefix}.{'gamma' if last == 'weight' else 'beta'}"
    return f"{prefix}.{'W' if last == 'weight' else 'b'}"
