"""Analytic FLOPs of one generator iteration (2 x MAC of every Linear/Conv/Deconv).

Method of the reference spec: a forward costs f, a data gradient f, a weight gradient f; the
gradient penalty's double backward adds one forward-like and one weight-gradient-like op per
data-gradient op (the output Linear, whose upstream gradient is constant, only one). Ops that
read the network's input need no data gradient in the loss's backward. The ResNets count every
3x3 and 1x1 conv (shortcuts included) at the resolution it runs at; mean pools, upsampling,
norms and residual adds are not products. A layer norm (resnet64's GP critic) is not piecewise
linear: the double backward also sends a cotangent back through the forward pass of every op
upstream of one (a weight gradient each, and a data gradient where the op does not read the
image).
"""
from __future__ import annotations

import dataclasses
import math

from wgan_jax import registry

# gan_toy.py's MLP width (and the main config's default model.toy_hidden), 3 hidden layers.
# The other architectures' widths and kernel sizes come from the registry.
TOY_HIDDEN, TOY_DEPTH = 512, 3


# The critic's norm in the benchmarks' configs where it is not 'none' (gan_64x64.py's
# Normalize: layer norm in the WGAN-GP critic, batch norm otherwise); every other arch's GP
# critic has none.
RESNET64_CRITIC_NORM = {"gp": "layer", "clip": "batch"}


@dataclasses.dataclass(frozen=True)
class Op:
    """One Linear/conv of a network: per-example forward MACs; whether it reads the network's
    input (its data gradient is never needed); whether a layer norm is downstream of it (the
    penalty's double backward then sends it a cotangent through the forward pass)."""

    macs: int
    reads_input: bool = False
    before_norm: bool = False


@dataclasses.dataclass(frozen=True)
class NetFlops:
    total: float  # forward FLOPs at the batch size
    first: float  # forward FLOPs of the ops that read the input
    last: float  # the output layer's forward FLOPs
    before_norm: float = 0.0  # forward FLOPs of the ops upstream of a layer norm
    before_norm_first: float = 0.0  # ... of those that read the input


def _chain(macs: list[int]) -> list[Op]:
    return [Op(m, reads_input=i == 0) for i, m in enumerate(macs)]


def _layer_macs(arch: str) -> tuple[list[int], list[int]]:
    """Per-example forward MACs of the generator's and the critic's layers, input to output
    (the MLPs and DCGANs: chains)."""
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


def _resnet_ops(arch: str, layer_norm: bool, width: int = 0) -> tuple[list[Op], list[Op]]:
    """The ResNets' ops (models/resnet.py): 3x3 and 1x1 stride-1 convs at the resolution they
    run at (after upsampling, before mean pooling), the Linears. Per up block with input map s
    and widths cin -> cout: shortcut (2s)^2 cin cout, conv_1 (2s)^2 9 cin cout, conv_2
    (2s)^2 9 cout cout. With `layer_norm` (resnet64's GP critic) every op before the last
    block's second norm feeds a layer norm."""
    spec = registry.arch(arch)
    d, channels, latent = width or spec.widths[0], spec.data_shape[-1], spec.latent_dim
    g_widths = [d] * 4 if arch == "resnet32" else [8 * d, 8 * d, 4 * d, 2 * d, d]
    g = [Op(latent * 16 * g_widths[0], reads_input=True)]
    s = 4
    for cin, cout in zip(g_widths, g_widths[1:], strict=False):
        s *= 2
        g += [Op(s * s * cin * cout), Op(s * s * 9 * cin * cout), Op(s * s * 9 * cout * cout)]
    g.append(Op(s * s * 9 * d * channels))
    size = spec.data_shape[0]
    if arch == "resnet32":
        # OptimizedResBlockDisc1: MeanPoolConv 1x1 and the 3x3 conv read the image
        crit = [Op(16 * 16 * channels * d, reads_input=True),
                Op(32 * 32 * 9 * channels * d, reads_input=True), Op(32 * 32 * 9 * d * d)]
        crit += [Op(16 * 16 * d * d), Op(16 * 16 * 9 * d * d), Op(16 * 16 * 9 * d * d)]
        crit += [Op(8 * 8 * 9 * d * d)] * 4  # two blocks at 8x8, identity shortcuts
        return g, crit + [Op(d)]
    crit = [Op(size * size * 9 * channels * d, reads_input=True, before_norm=layer_norm)]
    widths = [d, 2 * d, 4 * d, 8 * d, 8 * d]
    for i, (cin, cout) in enumerate(zip(widths, widths[1:], strict=False)):
        last = i == 3
        crit += [Op((size // 2) ** 2 * cin * cout, before_norm=layer_norm and not last),
                 Op(size * size * 9 * cin * cin, before_norm=layer_norm),
                 Op(size * size * 9 * cin * cout, before_norm=layer_norm and not last)]
        size //= 2
    return g, crit + [Op(size * size * 8 * d)]


def network_ops(arch: str, mode: str = "gp", width: int = 0) -> tuple[list[Op], list[Op]]:
    """The generator's and the critic's ops of `arch` as the benchmarks build it for `mode`."""
    if arch in ("resnet32", "resnet64"):
        return _resnet_ops(arch, arch == "resnet64" and RESNET64_CRITIC_NORM[mode] == "layer",
                           width)
    g, d = _layer_macs(arch)
    return _chain(g), _chain(d)


def net_flops(ops: list[Op], batch: int) -> NetFlops:
    def total(keep) -> float:
        return 2.0 * batch * sum(o.macs for o in ops if keep(o))

    return NetFlops(total(lambda o: True), total(lambda o: o.reads_input),
                    2.0 * batch * ops[-1].macs, total(lambda o: o.before_norm),
                    total(lambda o: o.before_norm and o.reads_input))


def iteration_flops(arch: str, mode: str, batch: int, n_critic: int = 5,
                    width: int = 0) -> float:
    """FLOPs of n_critic critic steps + one generator step (mode 'gp' or 'clip')."""
    if mode not in ("gp", "clip"):
        raise ValueError(f"mode must be 'gp' or 'clip', got {mode!r}")
    g_ops, d_ops = network_ops(arch, mode, width)
    g, d = net_flops(g_ops, batch), net_flops(d_ops, batch)
    if mode == "gp":
        # + a layer norm's second derivative: a weight gradient for every op upstream of it and
        # a data gradient for those that do not read the input
        critic = g.total + 10 * d.total - 2 * d.first - d.last \
            + 2 * d.before_norm - d.before_norm_first
    else:
        critic = g.total + 6 * d.total - 2 * d.first
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
