"""A PyTorch reference of wgan_jax's WGAN-GP: the same networks, losses, penalty and optimizers.

    from benchmarks.torch_reference import TorchWGANGP
    ref = TorchWGANGP.from_method(method, state)      # wgan_jax's weights, loaded
    metrics = ref.train_step(reals_nhwc)              # n_critic critic updates + 1 generator

What a WGAN-GP user runs in PyTorch: eager mode (`torch.compile` does not support the
penalty's double backward), float32 or `torch.autocast("cpu", dtype=torch.bfloat16)`, NCHW
tensors, the penalty's input gradients by `torch.autograd.grad(..., create_graph=True)` on the
interpolates, one `eps` per example, Adam with the config's b1/b2/eps. The benchmark
(`benchmarks/vs_torch.py`) times it against wgan_jax's compiled step; tests/test_torch_reference.py
checks that it computes the same function.

The networks are the official TF models' (`wgan_jax/models`), layer for layer:
* 5x5 stride-2 'SAME' convs pad (1, 2) on even maps and (2, 2) on odd ones; PyTorch's
  `Conv2d(padding=...)` is symmetric, so asymmetric pads are an explicit `F.pad` first.
* 5x5 stride-2 'SAME' transposed convs (TF `conv2d_transpose`, out = 2 x in) put input pixel i
  and tap t on output pixel 2i + t - 1: `ConvTranspose2d(padding=1)` (out 2H + 1) with its last
  row and column cropped.
* mnist crops the first deconv's 8x8 map to 7x7; the critic flattens in (C, H, W) order, which
  NCHW gives for free.

Weights map from wgan_jax's layouts: Linear (in, out) -> (out, in); conv HWIO -> OIHW;
transposed conv (k, k, cout, cin) -> (cin, cout, k, k); batch norm scale/bias -> weight/bias.
* resnet32 (gan_cifar_resnet.py): 3x3 'SAME' convs are symmetric (`padding=1`); mean pools
  `avg_pool2d(2)`; `UpsampleConv`'s depth-to-space of the 4x-tiled input is a nearest-neighbour
  2x upsample.
Supported archs: `ARCHS` (one builder each in `_BUILDERS`: a new architecture is a builder
there plus its layer names).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PRECISIONS = ("float32", "bfloat16")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding (before, after) of one spatial axis (as wgan_jax.layers)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv(nn.Module):
    """k x k stride-2 'SAME' convolution (TF), NCHW."""

    def __init__(self, cin: int, cout: int, k: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=2)
        self.k = k

    def forward(self, x):
        (top, bottom), (left, right) = (same_padding(x.shape[2], self.k, 2),
                                        same_padding(x.shape[3], self.k, 2))
        if top == bottom and left == right:
            return F.conv2d(x, self.conv.weight, self.conv.bias, 2, (top, left))
        return self.conv(F.pad(x, (left, right, top, bottom)))


class SameDeconv(nn.Module):
    """k x k stride-2 'SAME' transposed convolution (TF conv2d_transpose, out = 2 x in), NCHW."""

    def __init__(self, cin: int, cout: int, k: int = 5):
        super().__init__()
        # TF's leading pad p of the adjoint 2H -> H conv: input i, tap t -> output 2i + t - p.
        self.p = same_padding(16, k, 2)[0]
        self.deconv = nn.ConvTranspose2d(cin, cout, k, stride=2, padding=self.p)

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        return self.deconv(x)[:, :, :2 * h, :2 * w]


class MLPGenerator(nn.Module):
    """gan_toy.py's generator: `depth` ReLU layers of `hidden` units, linear output."""

    def __init__(self, latent: int, hidden: int, depth: int, out: int):
        super().__init__()
        sizes = [latent] + [hidden] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b)
                                    for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.out = nn.Linear(hidden, out)

    def forward(self, z):
        for layer in self.hidden:
            z = F.relu(layer(z))
        return self.out(z)


class MLPCritic(nn.Module):
    """gan_toy.py's critic: `depth` ReLU layers of `hidden` units, one output."""

    def __init__(self, n_in: int, hidden: int, depth: int):
        super().__init__()
        sizes = [n_in] + [hidden] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b)
                                    for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x).reshape(-1)


class DCGANGenerator(nn.Module):
    """gan_mnist.py / gan_cifar.py's generator: Linear to 4x4xC, 5x5 deconvs, sigmoid/tanh."""

    def __init__(self, latent: int, widths: tuple[int, ...], channels: int, crop: int | None,
                 output: str, batch_norm: bool):
        super().__init__()
        base, chans = widths[-1], list(widths[-2::-1])
        self.base, self.crop, self.output_fn = base, crop, output
        self.input = nn.Linear(latent, 16 * base)
        self.input_norm = nn.BatchNorm1d(16 * base) if batch_norm else nn.Identity()
        ins = [base] + chans[:-1]
        self.deconvs = nn.ModuleList(SameDeconv(a, b) for a, b in zip(ins, chans, strict=True))
        self.norms = nn.ModuleList((nn.BatchNorm2d(c) if batch_norm else nn.Identity())
                                   for c in chans)
        self.output = SameDeconv(chans[-1], channels)

    def forward(self, z):
        x = F.relu(self.input_norm(self.input(z))).reshape(z.shape[0], self.base, 4, 4)
        for i, (deconv, norm) in enumerate(zip(self.deconvs, self.norms, strict=True)):
            x = F.relu(norm(deconv(x)))
            if i == 0 and self.crop is not None:
                x = x[:, :, :self.crop, :self.crop]
        x = self.output(x)
        return torch.sigmoid(x) if self.output_fn == "sigmoid" else torch.tanh(x)


class DCGANCritic(nn.Module):
    """The official DCGAN critic: 5x5 stride-2 convs with LeakyReLU(0.2), Linear to one value."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], final_size: int):
        super().__init__()
        ins = [in_channels] + list(widths[:-1])
        self.convs = nn.ModuleList(SameConv(a, b) for a, b in zip(ins, widths, strict=True))
        self.output = nn.Linear(widths[-1] * final_size * final_size, 1)

    def forward(self, x):
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return self.output(x.flatten(1)).reshape(-1)


def mean_pool2(x):
    """Mean of each 2x2 block (the official ResNets' add of four strided slices / 4)."""
    return F.avg_pool2d(x, 2)


def upsample2(x):
    """The official `UpsampleConv`'s depth-to-space of the 4x-tiled input: each pixel
    repeated into a 2x2 block."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


class ResBlock(nn.Module):
    """gan_cifar_resnet.py's `ResidualBlock` (3x3 convs; 1x1 shortcut where the shape changes;
    'down' shortcut ConvMeanPool)."""

    def __init__(self, cin: int, cout: int, resample: str | None, batch_norm: bool):
        super().__init__()
        self.resample = resample
        self.shortcut = (nn.Conv2d(cin, cout, 1) if resample or cin != cout else None)
        mid = cin if resample == "down" else cout
        self.norm_1 = nn.BatchNorm2d(cin) if batch_norm else nn.Identity()
        self.conv_1 = nn.Conv2d(cin, mid, 3, padding=1)
        self.norm_2 = nn.BatchNorm2d(mid) if batch_norm else nn.Identity()
        self.conv_2 = nn.Conv2d(mid, cout, 3, padding=1)

    def forward(self, x):
        if self.resample == "up":
            skip = self.shortcut(upsample2(x))
        elif self.resample == "down":
            skip = mean_pool2(self.shortcut(x))
        else:
            skip = x if self.shortcut is None else self.shortcut(x)
        h = F.relu(self.norm_1(x))
        h = self.conv_1(upsample2(h) if self.resample == "up" else h)
        h = self.conv_2(F.relu(self.norm_2(h)))
        return skip + (mean_pool2(h) if self.resample == "down" else h)


class OptimizedBlock(nn.Module):
    """gan_cifar_resnet.py's `OptimizedResBlockDisc1`, the critic's first block."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1)
        self.conv_1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv_2 = nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x):
        h = mean_pool2(self.conv_2(F.relu(self.conv_1(x))))
        return self.shortcut(mean_pool2(x)) + h


class ResNet32Generator(nn.Module):
    """gan_cifar_resnet.py's Generator: Linear to 4x4xdim, three 'up' blocks, BN, ReLU, 3x3
    conv, tanh."""

    def __init__(self, latent: int, dim: int, channels: int, batch_norm: bool):
        super().__init__()
        self.dim = dim
        self.input = nn.Linear(latent, 16 * dim)
        self.blocks = nn.ModuleList(ResBlock(dim, dim, "up", batch_norm) for _ in range(3))
        self.output_norm = nn.BatchNorm2d(dim) if batch_norm else nn.Identity()
        self.output = nn.Conv2d(dim, channels, 3, padding=1)

    def forward(self, z):
        x = self.input(z).reshape(z.shape[0], self.dim, 4, 4)
        for block in self.blocks:
            x = block(x)
        return torch.tanh(self.output(F.relu(self.output_norm(x))))


class ResNet32Critic(nn.Module):
    """gan_cifar_resnet.py's Discriminator: optimized block, 'down' block, two plain blocks,
    ReLU, global mean pool, Linear."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.blocks = nn.ModuleList([OptimizedBlock(channels, dim),
                                     ResBlock(dim, dim, "down", False),
                                     ResBlock(dim, dim, None, False),
                                     ResBlock(dim, dim, None, False)])
        self.output = nn.Linear(dim, 1)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.output(F.relu(x).mean(dim=(2, 3))).reshape(-1)


# ------------------------------------------------------------------ builders and weight maps

def _linear(kernel):
    return {"weight": kernel.T}


def _conv(kernel):  # HWIO -> OIHW
    return {"weight": kernel.transpose(3, 2, 0, 1)}


def _deconv(kernel):  # (k, k, cout, cin) -> (cin, cout, k, k)
    return {"weight": kernel.transpose(3, 2, 0, 1)}


@dataclasses.dataclass(frozen=True)
class TorchModels:
    """The two torch networks and, per flax layer name, its torch module path and kernel map."""

    generator: nn.Module
    critic: nn.Module
    latent_dim: int
    g_layers: dict[str, tuple[str, object]]
    d_layers: dict[str, tuple[str, object]]


def _mlp(method) -> TorchModels:
    spec, model = method.arch, method.model
    h, depth = model.toy_hidden, model.toy_depth
    out = math.prod(spec.data_shape)
    layers = {f"hidden_{i}": (f"hidden.{i}", _linear) for i in range(depth)}
    layers["out"] = ("out", _linear)
    return TorchModels(MLPGenerator(spec.latent_dim, h, depth, out), MLPCritic(out, h, depth),
                       spec.latent_dim, layers, dict(layers))


def _dcgan(method) -> TorchModels:
    spec, model = method.arch, method.model
    size, channels = spec.data_shape[0], spec.data_shape[-1]
    widths = spec.widths
    first = size // 2 ** (len(widths) - 1)
    output = "sigmoid" if spec.output_range == (0.0, 1.0) else "tanh"
    bn = model.generator_norm == "batch"
    gen = DCGANGenerator(spec.latent_dim, widths, channels, first if first != 8 else None,
                         output, bn)
    final = size
    for _ in widths:
        final = -(-final // 2)
    critic = DCGANCritic(channels, widths, final)
    g = {"input": ("input", _linear), "output": ("output.deconv", _deconv)}
    for i in range(len(widths) - 1):
        g[f"deconv_{i}"] = (f"deconvs.{i}.deconv", _deconv)
    if bn:
        g["input_norm"] = ("input_norm", None)
        g.update({f"deconv_{i}_norm": (f"norms.{i}", None) for i in range(len(widths) - 1)})
    d = {f"conv_{i}": (f"convs.{i}.conv", _conv) for i in range(len(widths))}
    d["output"] = ("output", _linear)
    return TorchModels(gen, critic, spec.latent_dim, g, d)


def _resnet32(method) -> TorchModels:
    spec, model = method.arch, method.model
    dim = getattr(model, "width", 0) or spec.widths[0]
    channels = getattr(model, "channels", 0) or spec.data_shape[-1]
    bn = model.generator_norm == "batch"
    gen = ResNet32Generator(spec.latent_dim, dim, channels, bn)
    critic = ResNet32Critic(channels, dim)
    g = {"input": ("input", _linear), "output": ("output", _conv)}
    if bn:
        g["output_norm"] = ("output_norm", None)
    for i in range(3):
        for conv in ("conv_1", "conv_2", "shortcut"):
            g[f"block_{i + 1}/{conv}"] = (f"blocks.{i}.{conv}", _conv)
        if bn:
            g.update({f"block_{i + 1}/{n}": (f"blocks.{i}.{n}", None)
                      for n in ("norm_1", "norm_2")})
    d = {"output": ("output", _linear)}
    for i, convs in enumerate((("conv_1", "conv_2", "shortcut"),
                               ("conv_1", "conv_2", "shortcut"),
                               ("conv_1", "conv_2"), ("conv_1", "conv_2"))):
        d.update({f"block_{i + 1}/{c}": (f"blocks.{i}.{c}", _conv) for c in convs})
    return TorchModels(gen, critic, spec.latent_dim, g, d)


# arch -> builder from a wgan_jax `Method`: its torch modules and flax-name -> torch-path map
# (nested flax modules joined by '/').
_BUILDERS = {"toy": _mlp, "mnist": _dcgan, "cifar": _dcgan, "resnet32": _resnet32}
ARCHS = tuple(_BUILDERS)


def build_models(method) -> TorchModels:
    """Torch generator and critic of `method` (a `wgan_jax.method.Method`), in float32."""
    arch = method.model.arch
    if arch not in _BUILDERS:
        raise ValueError(f"no PyTorch reference for arch {arch!r}; it has {ARCHS}")
    if method.model.critic_norm != "none" or method.model.generator_norm not in ("none",
                                                                                 "batch"):
        raise ValueError("the PyTorch reference has no critic normalisation (a WGAN-GP critic "
                         f"has none); got critic_norm={method.model.critic_norm!r}")
    if getattr(method.model, "conditioning", "none") != "none":
        raise ValueError("the PyTorch reference is unconditional; got conditioning="
                         f"{method.model.conditioning!r}")
    if method.model.generator_norm == "batch" and arch == "toy":
        raise ValueError("the PyTorch reference's toy generator has no batch norm")
    return _BUILDERS[arch](method)


def _layers_of(params, prefix: str = "") -> dict:
    """Flax params as {'a/b': {'kernel': ..., 'bias': ...}}: one entry per layer."""
    out = {}
    for k, v in params.items():
        if "kernel" in v or "scale" in v:
            out[prefix + k] = v
        else:
            out.update(_layers_of(v, f"{prefix}{k}/"))
    return out


def _nest(flat: dict) -> dict:
    out: dict = {}
    for name, v in flat.items():
        *parents, leaf = name.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def _load(module: nn.Module, layers: dict, params) -> None:
    params = _layers_of(params)
    names = set(params)
    if names != set(layers):
        raise ValueError(f"wgan_jax params {sorted(names)} do not match the PyTorch "
                         f"reference's layers {sorted(layers)}")
    with torch.no_grad():
        for name, (path, kernel_map) in layers.items():
            target = module.get_submodule(path)
            p = {k: np.array(v, np.float32) for k, v in params[name].items()}
            values = ({"weight": p["scale"], "bias": p["bias"]} if kernel_map is None
                      else {**kernel_map(p["kernel"]), "bias": p["bias"]})
            for k, v in values.items():
                dst = getattr(target, k)
                if tuple(dst.shape) != v.shape:
                    raise ValueError(f"{name}.{k}: wgan_jax shape {v.shape} mapped, torch "
                                     f"{tuple(dst.shape)}")
                dst.copy_(torch.from_numpy(np.ascontiguousarray(v)))


def _export(module: nn.Module, layers: dict) -> dict:
    out = {}
    for name, (path, kernel_map) in layers.items():
        target = module.get_submodule(path)
        w = target.weight.detach().numpy().astype(np.float32)
        b = target.bias.detach().numpy().astype(np.float32)
        if kernel_map is None:
            out[name] = {"scale": w, "bias": b}
        elif kernel_map is _linear:
            out[name] = {"kernel": w.T, "bias": b}
        else:  # the inverse of both 4-D maps' transpose(3, 2, 0, 1)
            out[name] = {"kernel": w.transpose(2, 3, 1, 0), "bias": b}
    return _nest(out)


def load_params(models: TorchModels, g_params, d_params) -> None:
    """Copy wgan_jax's generator and critic params (flax dicts, e.g. `state.g_params`)."""
    _load(models.generator, models.g_layers, g_params)
    _load(models.critic, models.d_layers, d_params)


def export_params(models: TorchModels) -> tuple[dict, dict]:
    """(g_params, d_params) as wgan_jax-layout numpy dicts, to compare with a TrainState."""
    return _export(models.generator, models.g_layers), _export(models.critic, models.d_layers)


def to_nchw(x) -> torch.Tensor:
    """wgan_jax's NHWC images (or toy points, unchanged) as a contiguous float32 tensor."""
    t = torch.from_numpy(np.array(x, np.float32))
    return t.permute(0, 3, 1, 2).contiguous() if t.ndim == 4 else t


def to_nhwc(t: torch.Tensor) -> np.ndarray:
    """A torch batch back in wgan_jax's layout (float32 numpy)."""
    t = t.detach().float()
    return (t.permute(0, 2, 3, 1) if t.ndim == 4 else t).numpy()


# ------------------------------------------------------------------------------ the method

class TorchWGANGP:
    """WGAN-GP in PyTorch eager: losses, penalty, Adam, n_critic critic updates + 1 generator.

    `precision` 'float32', or 'bfloat16': forward passes under
    `torch.autocast("cpu", dtype=torch.bfloat16)`, the penalty's input gradients taken outside
    it and its norm in float32 (PyTorch's documented gradient-penalty recipe for autocast).
    """

    def __init__(self, models: TorchModels, gp_weight: float, n_critic: int,
                 learning_rate: float, b1: float, b2: float, eps: float,
                 precision: str = "float32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.models, self.gp_weight, self.n_critic = models, gp_weight, n_critic
        self.precision = precision
        self.G, self.D = models.generator, models.critic
        self.G.train()
        self.D.train()
        adam = dict(lr=learning_rate, betas=(b1, b2), eps=eps)
        self.g_opt = torch.optim.Adam(self.G.parameters(), **adam)
        self.d_opt = torch.optim.Adam(self.D.parameters(), **adam)

    @classmethod
    def from_method(cls, method, state=None, precision: str = "float32") -> TorchWGANGP:
        """The reference of a wgan_jax `Method` (gp mode, Adam, constant rate), with the
        params of `state` (a `TrainState`) loaded when given."""
        opt, step = method.optimizer, method.step
        if opt.name != "adam" or opt.lr_schedule != "constant":
            raise ValueError("the PyTorch reference runs Adam at a constant rate; got "
                             f"optimizer {opt.name!r}, lr_schedule {opt.lr_schedule!r}")
        if (step.loss != "wasserstein" or step.gp_weight <= 0 or step.gp_one_sided
                or step.ema_decay or method.clip_value or method.critic_warmup):
            raise ValueError("the PyTorch reference is plain WGAN-GP (wasserstein loss, "
                             "gp_weight > 0, two-sided, no EMA, clipping or warm-up)")
        models = build_models(method)
        if state is not None:
            load_params(models, state.g_params, state.d_params)
        return cls(models, step.gp_weight, method.n_critic, opt.learning_rate, opt.b1,
                   opt.b2, opt.eps, precision)

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16,
                              enabled=self.precision == "bfloat16")

    def _draw_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.models.latent_dim)

    def critic_terms(self, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> dict:
        """Critic values, EM estimate, penalty and loss on (real, fake), differentiable in D."""
        n = real.shape[0]
        with self._autocast():
            out = self.D(torch.cat([real, fake])).float()
        d_real, d_fake = out[:n], out[n:]
        e = eps.reshape((-1,) + (1,) * (real.ndim - 1))
        x_hat = (e * real + (1.0 - e) * fake).requires_grad_(True)
        with self._autocast():
            d_hat = self.D(x_hat)
        (grads,) = torch.autograd.grad(d_hat.float().sum(), x_hat, create_graph=True)
        norms = grads.flatten(1).norm(dim=1)
        penalty = self.gp_weight * ((norms - 1.0) ** 2).mean()
        em = d_real.mean() - d_fake.mean()
        return {"d_real_values": d_real, "d_fake_values": d_fake, "em_distance": em,
                "gradient_penalty": penalty, "grad_norms": norms,
                "critic_loss": -em + penalty}

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) in train mode (batch statistics), float32."""
        with self._autocast():
            return self.G(z).float()

    def generator_loss(self, z: torch.Tensor) -> torch.Tensor:
        """-mean D(G(z)), differentiable in G."""
        fake = self.generate(z)
        with self._autocast():
            return -self.D(fake).float().mean()

    def critic_update(self, real, z=None, eps=None) -> dict:
        """One critic step: fake = G(z) (constant), loss + penalty, Adam. Returns its metrics."""
        n = real.shape[0]
        z = self._draw_z(n) if z is None else z
        eps = torch.rand(n) if eps is None else eps
        with torch.no_grad():
            fake = self.generate(z)
        terms = self.critic_terms(real, fake, eps)
        self.d_opt.zero_grad(set_to_none=True)
        terms["critic_loss"].backward()
        self.d_opt.step()
        return {k: float(terms[k].detach())
                for k in ("em_distance", "gradient_penalty", "critic_loss")}

    def generator_update(self, z=None, n: int | None = None) -> float:
        """One generator step against the current critic; returns its loss."""
        z = self._draw_z(n) if z is None else z
        for p in self.D.parameters():
            p.requires_grad_(False)
        loss = self.generator_loss(z)
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.g_opt.step()
        for p in self.D.parameters():
            p.requires_grad_(True)
        return float(loss.detach())

    def train_step(self, reals, zs=None, eps=None, z_g=None) -> dict:
        """n_critic critic updates (real batch i with zs[i], eps[i]; drawn when None), then
        one generator update on z_g. Metrics as wgan_jax's step: means over the critic
        iterations, `em_distance_last`, `generator_loss`."""
        per = [self.critic_update(reals[i], None if zs is None else zs[i],
                                  None if eps is None else eps[i])
               for i in range(self.n_critic)]
        metrics = {k: float(np.mean([m[k] for m in per])) for k in per[0]}
        metrics["em_distance_last"] = per[-1]["em_distance"]
        metrics["generator_loss"] = self.generator_update(z_g, n=reals[0].shape[0])
        return metrics
