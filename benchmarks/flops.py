"""Analytic FLOPs of one generator iteration (2 x MAC of every Linear/Conv/Deconv).

Method of the reference spec: a forward costs f, a data gradient f, a weight gradient f; the
gradient penalty's double backward adds one forward-like and one weight-gradient-like op per
data-gradient op (the output Linear, whose upstream gradient is constant, only one).
"""
from __future__ import annotations

import dataclasses
import math

from wgan_jax import registry

# gan_toy.py's MLP width (and the main config's default model.toy_hidden), 3 hidden layers.
# The other architectures' widths and kernel sizes come from the registry.
TOY_HIDDEN, TOY_DEPTH = 512, 3


@dataclasses.dataclass(frozen=True)
class NetFlops:
    total: float  # forward FLOPs at the batch size
    first: float  # first layer's forward FLOPs
    last: float  # last layer's forward FLOPs


def _layer_macs(arch: str) -> tuple[list[int], list[int]]:
    """Per-example forward MACs of the generator's and the critic's layers, input to output."""
    spec = registry.arch(arch)
    if arch == "toy":
        h, d, latent = TOY_HIDDEN, spec.data_shape[0], spec.latent_dim
        hidden = [h * h] * (TOY_DEPTH - 1)
        return [latent * h] + hidden + [h * d], [d * h] + hidden + [h]
    if arch == "mlp":  # the seed WGAN's MLPs: generator latent-h-784, critic 784-h-1
        (h,), d = spec.widths, math.prod(spec.data_shape)
        return [spec.latent_dim * h, h * d], [d * h, h]
    height, _, channels = spec.data_shape
    widths = spec.widths
    taps = spec.kernel ** 2
    sizes = []  # the critic's output sizes: stride 2, 'SAME'
    for _ in widths:
        height = math.ceil(height / 2)
        sizes.append(height)
    c_in = (channels,) + widths[:-1]
    d = [s * s * ci * co * taps for s, ci, co in zip(sizes, c_in, widths, strict=True)]
    d.append(sizes[-1] ** 2 * widths[-1])  # the output Linear
    # The generator mirrors the critic: a Linear to the smallest map, then deconvs that double
    # it (each input pixel meets every tap) back to the data's channels.
    g = [spec.latent_dim * sizes[-1] ** 2 * widths[-1]]
    g += [s * s * ci * co * taps for s, ci, co in
          zip(sizes[::-1], widths[::-1], widths[::-1][1:] + (channels,), strict=True)]
    return g, d


def net_flops(macs: list[int], batch: int) -> NetFlops:
    return NetFlops(2.0 * batch * sum(macs), 2.0 * batch * macs[0], 2.0 * batch * macs[-1])


def iteration_flops(arch: str, mode: str, batch: int, n_critic: int = 5) -> float:
    """FLOPs of n_critic critic steps + one generator step (mode 'gp' or 'clip')."""
    g_macs, d_macs = _layer_macs(arch)
    g, d = net_flops(g_macs, batch), net_flops(d_macs, batch)
    if mode == "gp":
        critic = g.total + 10 * d.total - 2 * d.first - d.last
    elif mode == "clip":
        critic = g.total + 6 * d.total - 2 * d.first
    else:
        raise ValueError(f"mode must be 'gp' or 'clip', got {mode!r}")
    generator = 3 * g.total + 2 * d.total - g.first
    return n_critic * critic + generator


def traced_dot_flops(jaxpr) -> float:
    """2 x M x N x K of every dot_general in a (closed) jaxpr, loops multiplied out.

    An independent count of what a traced function really multiplies: with the matmul
    convolutions (`conv_impl='matmul'`) every conv of the step is a dot_general, so this equals
    `iteration_flops` exactly when the step does no wasted work (no zero cotangents, no extra
    critic calls). Raises on XLA convolutions, which it cannot count.
    """
    import numpy as np

    inner = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0.0
    for eqn in inner.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
            a, b = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
            free_a = [d for i, d in enumerate(a) if i not in lc and i not in lb]
            free_b = [d for i, d in enumerate(b) if i not in rc and i not in rb]
            total += 2.0 * np.prod([a[i] for i in lb + lc]) * np.prod(free_a) * np.prod(free_b)
        elif name == "conv_general_dilated":
            raise ValueError("traced_dot_flops counts dot_general only; use conv_impl='matmul'")
        times = eqn.params.get("length", 1) if name == "scan" else 1
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else (param,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    total += times * traced_dot_flops(sub)
    return total
