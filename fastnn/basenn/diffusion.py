"""``diffusion_model``: a DDPM (Ho et al. 2020) with a small U-Net on fastnn kernels.

The process follows BaseNN's ``GaussianDiffusion`` (objective ``pred_noise``): images in [0, 1]
are scaled to [-1, 1]; training draws t uniformly from 0..T-1 per image and the noise
eps ~ N(0, I), forms x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps and minimises the mean
squared error between the U-Net's prediction and eps. Sampling runs the ancestral DDPM step
from t = T-1 down to 0: x_0 is estimated from the predicted noise and clipped to [-1, 1], the
posterior mean mu = c1_t x_0 + c2_t x_t is taken and noise of the posterior variance
beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t) is added (none at t = 0). Results are
mapped back by (x + 1) / 2.

The beta schedule is BaseNN's default, the sigmoid schedule (``beta_schedule='sigmoid'``:
start -3, end 3, tau 1, betas clipped to [0, 0.999]); ``'linear'`` is the original DDPM one,
scaled to the number of steps (1e-4 .. 0.02 times 1000 / T).

The U-Net (base width ``dim``, two resolutions), all convolutions and matrix products through
fastnn's kernels (convolution, affine, group norm, SiLU), the rest in NumPy:

    t -> sinusoidal(dim) -> Linear(dim, 4 dim) -> SiLU -> Linear(4 dim, 4 dim) = temb
    x -> conv3x3 (C -> dim) -> ResBlock(dim, dim) = h  (full resolution)
      -> pixel-unshuffle 2x2 -> conv1x1 (4 dim -> 2 dim) -> ResBlock(2 dim, 2 dim)   (half)
         (run as one 2x2 stride-2 convolution: the 1x1 weight over the unshuffled channel
         c*4 + 2i + j is the 2x2 weight at tap (i, j) of channel c, BaseNN's Rearrange order)
      -> nearest up-sampling 2x -> conv3x3 (2 dim -> dim) -> concat(., h)
      -> ResBlock(2 dim, dim) -> conv1x1 (dim -> C)
    ResBlock(a, b): conv3x3 -> GroupNorm -> * (1 + scale) + shift -> SiLU -> conv3x3 ->
                    GroupNorm -> SiLU, plus x (through a 1x1 conv when a != b); (scale, shift)
                    = Linear(SiLU(temb)) as in BaseNN's ResnetBlock.
"""

import math
import os

import numpy as np

from .. import ops
from . import modules as M

MAX_IMG_SIZE = 512
MAX_TIMESTEP = 10_000
MAX_DIM = 512
SCHEDULES = ("sigmoid", "linear")
GROUPS = 8


def check_args(img_size, timestep, channels, dim, beta_schedule):
    """ValueError in the user's words for arguments no diffusion model can be built from."""
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    what = "add('diffusion_model')"
    if not is_int(img_size) or not 2 <= img_size <= MAX_IMG_SIZE or img_size % 2:
        raise ValueError(f"{what}: img_size must be an even integer from 2 to {MAX_IMG_SIZE} "
                         f"(the U-Net halves it once), got {img_size!r}")
    if not is_int(timestep) or not 1 <= timestep <= MAX_TIMESTEP:
        raise ValueError(f"{what}: timestep must be an integer from 1 to {MAX_TIMESTEP}, "
                         f"got {timestep!r}")
    if channels is not None and (not is_int(channels) or not 1 <= channels <= 4):
        raise ValueError(f"{what}: channels must be 1 (grayscale), 3 (RGB) or another integer "
                         f"up to 4, got {channels!r}")
    if not is_int(dim) or not GROUPS <= dim <= MAX_DIM or dim % GROUPS:
        raise ValueError(f"{what}: dim must be a multiple of {GROUPS} from {GROUPS} to "
                         f"{MAX_DIM}, got {dim!r}")
    if beta_schedule not in SCHEDULES:
        raise ValueError(f"{what}: beta_schedule must be one of {', '.join(SCHEDULES)}, got "
                         f"{beta_schedule!r}")
    if beta_schedule == "linear" and timestep <= 20:
        raise ValueError(f"{what}: the linear schedule needs more than 20 steps (its last beta, "
                         f"0.02 * 1000 / timestep, must stay below 1), got timestep={timestep}")


# ------------------------------------------------------------------ schedule

def linear_betas(timesteps):
    scale = 1000.0 / timesteps
    return np.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=np.float64)


def sigmoid_betas(timesteps, start=-3.0, end=3.0, tau=1.0):
    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))
    t = np.linspace(0, timesteps, timesteps + 1, dtype=np.float64) / timesteps
    v_start, v_end = sigmoid(start / tau), sigmoid(end / tau)
    abar = (-sigmoid((t * (end - start) + start) / tau) + v_end) / (v_end - v_start)
    abar = abar / abar[0]
    return np.clip(1 - abar[1:] / abar[:-1], 0, 0.999)


class Schedule:
    """The float64 constants of the forward process and of the posterior q(x_{t-1} | x_t, x_0)."""

    def __init__(self, timesteps, kind="sigmoid"):
        self.T = int(timesteps)
        self.betas = sigmoid_betas(self.T) if kind == "sigmoid" else linear_betas(self.T)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.alphas_cumprod_prev = np.concatenate([[1.0], self.alphas_cumprod[:-1]])
        ac, prev = self.alphas_cumprod, self.alphas_cumprod_prev
        self.sqrt_alphas_cumprod = np.sqrt(ac)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - ac)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / ac - 1)
        self.posterior_variance = self.betas * (1.0 - prev) / (1.0 - ac)
        self.posterior_log_variance_clipped = np.log(np.maximum(self.posterior_variance, 1e-20))
        self.posterior_mean_coef1 = self.betas * np.sqrt(prev) / (1.0 - ac)
        self.posterior_mean_coef2 = (1.0 - prev) * np.sqrt(self.alphas) / (1.0 - ac)


def _at(a, t, dtype):
    """a[t] shaped (N, 1, 1, 1) for a batch of steps t (or one step)."""
    return np.asarray(a[np.atleast_1d(t)], dtype=dtype).reshape(-1, 1, 1, 1)


# ------------------------------------------------------------------ elementwise pieces

class SiLU(M.Module):
    def forward(self, x, train=False):
        self.x = x
        return ops.silu_forward(x)

    def backward(self, dout):
        return ops.silu_backward(dout, self.x)


class GroupNorm(M.Module):
    """PyTorch's GroupNorm on (N, C, H, W): statistics per sample over each group of C/groups
    channels and H, W (biased variance, eps 1e-5), then a per-channel affine map."""

    def __init__(self, groups, channels, dtype=np.float32, eps=1e-5):
        super().__init__()
        self.g, self.c, self.eps = groups, channels, eps
        self.params = {"gamma": np.ones(channels, dtype), "beta": np.zeros(channels, dtype)}

    def forward(self, x, train=False):
        out, self.xn, self.inv_std = ops.group_norm_forward(
            x, self.params["gamma"], self.params["beta"], self.g, self.eps)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = ops.group_norm_backward(dout, self.xn, self.params["gamma"],
                                                     self.inv_std, self.g)
        self.grads = {"gamma": dgamma, "beta": dbeta}
        return dx


def upsample2(x):
    """Nearest-neighbour 2x up-sampling of (N, C, H, W): the adjoint of 2x2 average pooling,
    times 4 (exact: a power of two)."""
    n, c, h, w = x.shape
    return ops.avgpool2d_backward(x * x.dtype.type(4), (n, c, 2 * h, 2 * w), 2, 2, 2, 0,
                                   layer="diffusion_model")


def upsample2_backward(d):
    """Sums over each 2x2 block: 2x2 average pooling times 4."""
    return ops.avgpool2d_forward(d, 2, 2, 2, 0, layer="diffusion_model") * d.dtype.type(4)


def sinusoidal(t, dim, dtype):
    """BaseNN's SinusoidalPosEmb: [sin(t f_k), cos(t f_k)], f_k = 10000^(-k / (dim/2 - 1))."""
    half = dim // 2
    freqs = np.exp(np.arange(half) * -(math.log(10000) / max(half - 1, 1)))
    arg = np.asarray(t, dtype=np.float64)[:, None] * freqs[None, :]
    return np.concatenate([np.sin(arg), np.cos(arg)], axis=1).astype(dtype)


# ------------------------------------------------------------------ blocks

class _Parts(M.Module):
    """A module made of named sub-modules: params/grads as 'part.name'."""

    def _collect(self):
        self.params = {f"{p}.{k}": v for p, m in self.parts for k, v in m.params.items()}

    def _gather_grads(self):
        self.grads = {f"{p}.{k}": v for p, m in self.parts for k, v in m.grads.items()}


def _scale_shift(x, scale, shift):
    """x (N, C, H, W) * scale[n, c] + shift[n, c] in one pass: the channel-affine kernel over
    the N*C planes."""
    n, c = x.shape[:2]
    planes = x.reshape(1, n * c, -1)
    return ops.channel_affine(planes, scale.ravel(), shift.ravel(),
                               layer="diffusion_model").reshape(x.shape)


class ResBlock(_Parts):
    """BaseNN's ResnetBlock with a time embedding: forward(x, temb) -> (out); backward(dout) ->
    (dx, dtemb)."""

    def __init__(self, c_in, c_out, t_dim, rng, dtype, groups=GROUPS):
        super().__init__()
        self.c_out = c_out
        self.conv1 = M.Conv2d((c_in, c_out), 3, rng, dtype, padding=1)
        self.norm1 = GroupNorm(groups, c_out, dtype)
        self.mlp = M.Linear((t_dim, 2 * c_out), rng, dtype)
        self.conv2 = M.Conv2d((c_out, c_out), 3, rng, dtype, padding=1)
        self.norm2 = GroupNorm(groups, c_out, dtype)
        self.res = M.Conv2d((c_in, c_out), 1, rng, dtype) if c_in != c_out else None
        self.act_t, self.act1, self.act2 = SiLU(), SiLU(), SiLU()
        self.parts = [("conv1", self.conv1), ("norm1", self.norm1), ("mlp", self.mlp),
                      ("conv2", self.conv2), ("norm2", self.norm2)]
        if self.res is not None:
            self.parts.append(("res", self.res))
        self._collect()

    def forward(self, x, temb, train=False):
        ss = self.mlp.forward(self.act_t.forward(temb), train)
        c = self.c_out
        self.scale = ss[:, :c] + 1
        h = self.norm1.forward(self.conv1.forward(x, train), train)
        self.h = h
        h = self.act1.forward(_scale_shift(h, self.scale, ss[:, c:]), train)
        h = self.act2.forward(self.norm2.forward(self.conv2.forward(h, train), train), train)
        return h + (self.res.forward(x, train) if self.res is not None else x)

    def backward(self, dout):
        d = self.conv2.backward(self.norm2.backward(self.act2.backward(dout)))
        d = self.act1.backward(d)
        d3 = d.reshape(d.shape[0], d.shape[1], -1)
        dss = np.concatenate([np.einsum("ncs,ncs->nc", d3, self.h.reshape(d3.shape)),
                              d3.sum(axis=2)], axis=1)
        dx = self.conv1.backward(self.norm1.backward(
            _scale_shift(d, self.scale, np.zeros_like(self.scale))))
        dtemb = self.act_t.backward(self.mlp.backward(dss))
        dx = dx + (self.res.backward(dout) if self.res is not None else dout)
        self._gather_grads()
        return dx, dtemb


class UNet(_Parts):
    """The noise predictor eps(x_t, t): forward(x, t) -> same shape as x (see the module
    docstring for the layout)."""

    def __init__(self, channels, dim, rng=None, dtype=np.float32, groups=GROUPS):
        super().__init__()
        self.channels, self.dim = channels, dim
        t_dim = 4 * dim
        self.t1 = M.Linear((dim, t_dim), rng, dtype)
        self.t_act = SiLU()
        self.t2 = M.Linear((t_dim, t_dim), rng, dtype)
        self.init = M.Conv2d((channels, dim), 3, rng, dtype, padding=1)
        self.down_block = ResBlock(dim, dim, t_dim, rng, dtype, groups)
        self.down = M.Conv2d((4 * dim, 2 * dim), 1, rng, dtype)
        self.mid = ResBlock(2 * dim, 2 * dim, t_dim, rng, dtype, groups)
        self.up = M.Conv2d((2 * dim, dim), 3, rng, dtype, padding=1)
        self.up_block = ResBlock(2 * dim, dim, t_dim, rng, dtype, groups)
        self.final = M.Conv2d((dim, channels), 1, rng, dtype)
        self.parts = [("time1", self.t1), ("time2", self.t2), ("init", self.init),
                      ("down_block", self.down_block), ("down", self.down), ("mid", self.mid),
                      ("up", self.up), ("up_block", self.up_block), ("final", self.final)]
        self._collect()

    def forward(self, x, t, train=False):
        temb = self.t2.forward(self.t_act.forward(
            self.t1.forward(sinusoidal(t, self.dim, x.dtype), train)), train)
        r = self.init.forward(x, train)
        h = self.down_block.forward(r, temb, train)
        self.h = h
        y = ops.conv2d_forward(h, self._down_weight(), self.down.params["b"], 2, 0)
        y = self.mid.forward(y, temb, train)
        y = self.up.forward(upsample2(y), train)
        y = self.up_block.forward(np.concatenate([y, h], axis=1), temb, train)
        return self.final.forward(y, train)

    def _down_weight(self):
        """The down-sampling 1x1 weight (2 dim, 4 dim, 1, 1) viewed as (2 dim, dim, 2, 2)."""
        W = self.down.params["W"]
        return W.reshape(W.shape[0], W.shape[1] // 4, 2, 2)

    def backward(self, dout):
        d = self.final.backward(dout)
        d, dt = self.up_block.backward(d)
        du, dh = d[:, :self.dim], d[:, self.dim:]
        d = upsample2_backward(self.up.backward(np.ascontiguousarray(du)))
        d, dt2 = self.mid.backward(d)
        d, dW, db = ops.conv2d_backward(d, self.h, self._down_weight(), self.down.params["b"],
                                         2, 0)
        self.down.grads = {"W": dW.reshape(self.down.params["W"].shape), "b": db}
        d, dt3 = self.down_block.backward(d + dh)
        dx = self.init.backward(d)
        dtemb = dt + dt2 + dt3
        self.t1.backward(self.t_act.backward(self.t2.backward(dtemb)))
        self._gather_grads()
        return dx


def unet_sizes(channels, dim):
    """Parameter count of UNet(channels, dim), without building it."""
    t_dim = 4 * dim

    def conv(a, b, k):
        return a * b * k * k + b

    def res(a, b):
        return conv(a, b, 3) + conv(b, b, 3) + 4 * b + t_dim * 2 * b + 2 * b + \
            (conv(a, b, 1) if a != b else 0)

    return (dim * t_dim + t_dim + t_dim * t_dim + t_dim + conv(channels, dim, 3) + res(dim, dim)
            + conv(4 * dim, 2 * dim, 1) + res(2 * dim, 2 * dim) + conv(2 * dim, dim, 3)
            + res(2 * dim, dim) + conv(dim, channels, 1))


# ------------------------------------------------------------------ the diffusion model

class DiffusionModel(M.Module):
    """The builder layer for ``add('diffusion_model')``: U-Net parameters, the schedule, the
    training loss and the samplers. ``forward(x, train)`` is the U-Net's noise prediction at the
    steps in ``self.t`` (an int array, one per image)."""

    def __init__(self, img_size, timestep, channels, dim, beta_schedule, rng, dtype):
        super().__init__()
        self.img_size, self.channels = img_size, channels
        self.schedule = Schedule(timestep, beta_schedule)
        self.unet = UNet(channels, dim, rng, dtype)
        self.params = self.unet.params
        self.dtype = np.dtype(dtype)
        self.t = None

    def out_shape(self, shape):
        want = (self.channels, self.img_size, self.img_size)
        if tuple(shape) != want:
            raise M.ShapeError(f"expects images of shape {M._fmt(want)} (img_size="
                               f"{self.img_size}, {self.channels} channel(s)) but gets "
                               f"{M._fmt(shape)}")
        return tuple(shape)

    def forward(self, x, train):
        t = self.t if self.t is not None else np.full(len(x), self.schedule.T - 1)
        return self.unet.forward(x, t, train)

    def backward(self, dout):
        dx = self.unet.backward(dout)
        self.grads = self.unet.grads
        return dx

    def q_sample(self, x0, t, noise):
        """x_t for x_0 in the model's scale ([-1, 1]), steps t, noise eps."""
        s = self.schedule
        return _at(s.sqrt_alphas_cumprod, t, x0.dtype) * x0 + \
            _at(s.sqrt_one_minus_alphas_cumprod, t, x0.dtype) * noise

    def loss_and_backward(self, images, rng):
        """One training step's loss for images in [0, 1]: MSE of the predicted noise; the
        gradients land in ``grads``."""
        x0 = np.asarray(images, self.dtype) * self.dtype.type(2) - self.dtype.type(1)
        n = len(x0)
        self.t = rng.integers(0, self.schedule.T, size=n)
        noise = rng.standard_normal(x0.shape).astype(self.dtype)
        pred = self.forward(self.q_sample(x0, self.t, noise), True)
        diff = pred - noise
        loss = float(np.mean(diff * diff))
        self.backward(diff * self.dtype.type(2.0 / diff.size))
        self.t = None
        return loss

    def p_sample(self, x, t, noise):
        """One reverse step from x = x_t at step t (an int) with the given standard noise."""
        s = self.schedule
        self.t = np.full(len(x), t)
        eps = self.forward(x, False)
        self.t = None
        dt = x.dtype
        x0 = _at(s.sqrt_recip_alphas_cumprod, t, dt) * x - \
            _at(s.sqrt_recipm1_alphas_cumprod, t, dt) * eps
        x0 = np.clip(x0, -1, 1)
        mean = _at(s.posterior_mean_coef1, t, dt) * x0 + _at(s.posterior_mean_coef2, t, dt) * x
        if t == 0:
            return mean
        return mean + np.exp(0.5 * _at(s.posterior_log_variance_clipped, t, dt)) * noise

    def sample(self, num, return_all_timesteps, rng, progress=None):
        """(num, C, S, S) images, or (num, T + 1, C, S, S) with every step (index 0: the
        starting noise, index T: the result); mapped from [-1, 1] back by (x + 1) / 2."""
        shape = (num, self.channels, self.img_size, self.img_size)
        T = self.schedule.T
        img = rng.standard_normal(shape).astype(self.dtype)
        steps = None
        if return_all_timesteps:
            steps = np.empty((num, T + 1) + shape[1:], self.dtype)
            steps[:, 0] = img
        order = range(T - 1, -1, -1)
        for t in (progress(order) if progress else order):
            noise = rng.standard_normal(shape).astype(self.dtype) if t > 0 else None
            img = self.p_sample(img, t, noise)
            if steps is not None:
                steps[:, T - t] = img
        out = steps if steps is not None else img
        out += 1
        out *= self.dtype.type(0.5)
        return out


# ------------------------------------------------------------------ nn's methods

MAX_SAMPLES = 1 << 16
MAX_ALL_STEPS_BYTES = 4 << 30      # what inference(return_all_timesteps=True) may return


def _module(model, what):
    """The DiffusionModel of ``model`` (its only layer); ValueError otherwise."""
    entries = [e for e in model.layers if e.spec["layer"] == "diffusion_model"]
    if not entries:
        raise ValueError(f"{what}: the model has no diffusion model; add it first with "
                         "model.add('diffusion_model', img_size=..., timestep=...)")
    if len(model.layers) != 1:
        raise ValueError(f"{what}: a diffusion_model must be the model's only layer (it has "
                         f"{len(model.layers)})")
    return entries[0].module


def _images(x, dtype):
    """(N, C, H, W) in [0, 1] from images in [0, 1] or 0..255 integers, (N, H, W) allowed."""
    x = np.asarray(x)
    if x.dtype.kind in "ui":
        x = x / 255.0
    x = np.asarray(x, dtype=dtype)
    return x[:, None] if x.ndim == 3 else x


def train_model(model, lr, epochs, batch_size, save_fold, verbose, filename="basenn.pth"):
    """``nn.train`` for a diffusion model: the loss is the DDPM noise-prediction MSE (no labels,
    no metrics); saves ``<save_fold>/<filename>`` after every epoch."""
    from .._progress import progress_bar
    from .model import make_optimizer

    from .. import distributed as dist

    module = _module(model, "train")
    dist.init()
    if dist.is_initialized():
        raise RuntimeError("train: a diffusion_model trains in one process (not "
                           "data-parallel); run it without mpiexec")
    x = _images(model.x, model.dtype)
    if x.ndim != 4:
        raise ValueError(f"train: a diffusion model learns from images (N, C, H, W); the data "
                         f"has shape {x.shape}")
    entry = model.layers[0]
    if x.shape[1] != module.channels and model.epochs_done == 0:
        entry.spec["kw"]["channels"] = int(x.shape[1])     # untrained: follow the data's colour
        model.layers[0] = entry = model._build(entry.spec)
        module = entry.module
    if x.shape[1:] != (module.channels, module.img_size, module.img_size):
        raise ValueError(f"train: diffusion_model(img_size={module.img_size}) with "
                         f"{module.channels} channel(s) needs images of shape "
                         f"({module.channels}, {module.img_size}, {module.img_size}), the data "
                         f"has {x.shape[1:]} (resize them, e.g. load_img_data(..., transform="
                         f"{{'Resize': ({module.img_size}, {module.img_size})}}))")
    model.input_shape = tuple(int(s) for s in x.shape[1:])
    if save_fold is not None:
        model.save_fold = save_fold
    n = len(x)
    bs = int(batch_size or model.batch_size or min(n, 64))
    opt = make_optimizer(model.optimizer, lr)
    params = model._params()
    for _ in range(int(epochs)):
        model.epochs_done += 1
        order = model.rng.permutation(n) if model.shuffle else np.arange(n)
        starts = range(0, n, bs)
        bar = progress_bar(starts, desc=f"Epoch {model.epochs_done}", unit="batch",
                           leave=False) if verbose else None
        total = 0.0
        for start in (bar if bar is not None else starts):
            idx = order[start:start + bs]
            loss = module.loss_and_backward(x[idx], model.rng)
            opt.update(params, model._params("grads"))
            total += loss * len(idx)
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if bar is not None:
            bar.close()
        record = {"epoch": model.epochs_done, "loss": total / n}
        model.history.append(record)
        if verbose:
            print(f"epoch: {record['epoch']}  loss: {record['loss']:.4f}")
        model.save(os.path.join(model.save_fold, filename))
    return model.history


def sample_model(model, num, return_all_timesteps, verbose=True):
    """``nn.inference`` for a diffusion model (see DiffusionModel.sample)."""
    from .._progress import progress_bar

    module = _module(model, "inference")
    if not isinstance(num, (int, np.integer)) or isinstance(num, bool) or \
            not 1 <= num <= MAX_SAMPLES:
        raise ValueError(f"inference: num must be an integer from 1 to {MAX_SAMPLES}, got "
                         f"{num!r}")
    size = module.channels * module.img_size ** 2 * model.dtype.itemsize * num
    if return_all_timesteps and size * (module.schedule.T + 1) > MAX_ALL_STEPS_BYTES:
        raise ValueError(f"inference: {num} images with every one of the "
                         f"{module.schedule.T + 1} steps would take "
                         f"{size * (module.schedule.T + 1) / 2 ** 30:.1f} GiB (at most "
                         f"{MAX_ALL_STEPS_BYTES // 2 ** 30} GiB); ask for fewer images or "
                         "return_all_timesteps=False")
    progress = (lambda it: progress_bar(it, desc="sampling", unit="step", leave=False)) \
        if verbose else None
    return module.sample(int(num), bool(return_all_timesteps), model.rng, progress)


def _load_picture(data, channels):
    if isinstance(data, str):
        from . import data as D
        if not os.path.isfile(data):
            raise FileNotFoundError(f"noisy: image file {data!r} not found")
        return D.load_image(data, "RGB" if channels == 3 else "grayscale")
    x = np.asarray(data)
    x = x / 255.0 if x.dtype.kind in "ui" else x.astype(np.float64)
    if x.ndim == 3 and x.shape[-1] in (1, 3) and x.shape[0] not in (1, 3):
        x = x.transpose(2, 0, 1)            # (H, W, C) as PIL gives
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"noisy: expected an image (H, W) or (C, H, W), got shape {x.shape}")
    return x


def _picture_path(model, file_name, default):
    if file_name is None:
        os.makedirs(model.save_fold, exist_ok=True)
        file_name = os.path.join(model.save_fold, default)
    from ..viz import check_image_path
    return check_image_path(file_name)


def _draw(ax, img):
    """One (C, H, W) image in [0, 1] (clipped) on a matplotlib axis."""
    img = np.clip(np.asarray(img, np.float32), 0, 1)
    if img.shape[0] == 1:
        ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img[:3].transpose(1, 2, 0))
    ax.axis("off")


def noisy(model, data, timestep=500, num=10, show=True, file_name=None):
    """x_t of the forward process for t = timestep * i // num, i = 0..num-1, of one image in
    [0, 1]: scaled to [-1, 1] as in training, noised with the model's schedule and mapped back
    by (x + 1) / 2. Returns (num, C, H, W); ``show`` draws them in a row (clipped to [0, 1])
    into ``file_name`` (default <save_fold>/noisy.png) and prints the path."""
    module = _module(model, "noisy")
    T = module.schedule.T
    if not isinstance(timestep, (int, np.integer)) or not 1 <= timestep <= T:
        raise ValueError(f"noisy: timestep must be an integer from 1 to the model's {T}, got "
                         f"{timestep!r}")
    if not isinstance(num, (int, np.integer)) or not 1 <= num <= 100:
        raise ValueError(f"noisy: num must be an integer from 1 to 100, got {num!r}")
    path = _picture_path(model, file_name, "noisy.png") if show else None
    x0 = _load_picture(data, module.channels).astype(model.dtype) * 2 - 1
    steps = np.array([timestep * i // num for i in range(num)])
    noise = model.rng.standard_normal((num,) + x0.shape).astype(model.dtype)
    out = (module.q_sample(np.broadcast_to(x0, noise.shape), steps, noise) + 1) / 2
    if show:
        from ..viz import _figure, save_figure
        fig = _figure((1.3 * num, 1.6))
        for i in range(num):
            ax = fig.add_subplot(1, num, i + 1)
            _draw(ax, out[i])
            ax.set_title(f"t={steps[i]}", fontsize=8)
        save_figure(fig, path)
        print(f"noisy: the forward process is drawn in {path}")
        model.figure = path
    return out


def show(model, data, size=(2, 2), visual_timesteps=False, file_name=None):
    """A size[0] x size[1] grid of images from ``inference``: the first rows*columns final
    images, or with ``visual_timesteps`` (data of return_all_timesteps=True) one image per row
    and the sampling chain across the columns, at steps (S // columns) * j, the last column
    the final image (as BaseNN). Written to ``file_name`` (default
    <save_fold>/diffusion_grid.png or diffusion_timesteps.png); returns the path."""
    data = np.asarray(data)
    if np.ndim(size) != 1 or len(size) != 2 or not all(
            isinstance(s, (int, np.integer)) and 1 <= s <= 64 for s in size):
        raise ValueError(f"show: size must be a pair (rows, columns) of integers from 1 to 64, "
                         f"got {size!r}")
    rows, cols = int(size[0]), int(size[1])
    if data.ndim not in (4, 5):
        raise ValueError(f"show: expected images (num, C, H, W) or every step (num, steps, C, H,"
                         f" W) from inference, got shape {data.shape}")
    if visual_timesteps:
        if data.ndim != 5:
            raise ValueError("show: visual_timesteps=True needs every step: call inference(..., "
                             "return_all_timesteps=True)")
        num, steps = data.shape[:2]
        if rows > num or cols > steps:
            raise ValueError(f"show: size {rows}x{cols} needs at least {rows} images and "
                             f"{cols} steps, the data has {num} images of {steps} steps")
        cells = [[data[r, (steps // cols) * c if c < cols - 1 else -1] for c in range(cols)]
                 for r in range(rows)]
        default = "diffusion_timesteps.png"
    else:
        final = data[:, -1] if data.ndim == 5 else data
        if rows * cols > len(final):
            raise ValueError(f"show: size {rows}x{cols} needs {rows * cols} images, the data "
                             f"has {len(final)}")
        cells = [[final[r * cols + c] for c in range(cols)] for r in range(rows)]
        default = "diffusion_grid.png"
    path = _picture_path(model, file_name, default)
    from ..viz import _figure, save_figure
    fig = _figure((1.2 * cols, 1.2 * rows))
    for r in range(rows):
        for c in range(cols):
            _draw(fig.add_subplot(rows, cols, r * cols + c + 1), cells[r][c])
    save_figure(fig, path)
    print(f"show: the images are drawn in {path}")
    return path
