"""Model registry: `build_models(arch, ...)` returns the generator and critic for an architecture."""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from wgan_jax.layers import CONV_IMPLS, default_conv_impl
from wgan_jax.models.common import CRITIC_NORMS, GENERATOR_NORMS, check_norm
from wgan_jax.models.dcgan import DCGANCritic, DCGANGenerator
from wgan_jax.models.mlp import MLPCritic, MLPGenerator
from wgan_jax.models.paper_dcgan import PaperDCGANCritic, PaperDCGANGenerator

# toy: gan_toy.py; mnist, cifar, celeba64: gan_mnist.py, gan_cifar.py, gan_64x64.py's DCGAN (the
# WGAN-GP code, 5x5 kernels); dcgan64: the WGAN paper's PyTorch DCGAN (4x4 kernels, no biases).
ARCHS = ("toy", "mnist", "cifar", "celeba64", "dcgan64")

# Data shape each architecture consumes/produces, and its generator's output range.
DATA_SHAPES = {"toy": (2,), "mnist": (28, 28, 1), "cifar": (32, 32, 3), "celeba64": (64, 64, 3),
               "dcgan64": (64, 64, 3)}
OUTPUT_RANGES = {"toy": None, "mnist": (0.0, 1.0), "cifar": (-1.0, 1.0),
                 "celeba64": (-1.0, 1.0), "dcgan64": (-1.0, 1.0)}


class SpectralNormCritic(nn.Module):
    """Wraps a critic so every kernel is divided by its largest singular value (Miyato et al.).

    Kernels are reshaped to (fan_in, fan_out) matrices; one power-iteration step per call, whose
    vectors live in the 'spectral' collection and are written only when `update_stats` is True.
    """

    critic: nn.Module
    n_steps: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, update_stats: bool = False) -> jax.Array:
        return nn.SpectralNorm(self.critic, n_steps=self.n_steps, collection_name="spectral",
                               name="sn")(x, update_stats=update_stats)


@dataclasses.dataclass(frozen=True)
class Models:
    """The two networks of a GAN plus what the training step needs to know about them."""

    generator: nn.Module
    critic: nn.Module
    latent_dim: int
    data_shape: tuple[int, ...]
    critic_norm: str
    generator_norm: str

    @property
    def spectral(self) -> bool:
        return self.critic_norm == "spectral"


def build_models(arch: str, *, critic_norm: str = "none", generator_norm: str = "none",
                 conv_impl: str = "auto", axis_name: str | None = None,
                 toy_hidden: int = 512, toy_depth: int = 3, extra_layers: int = 0) -> Models:
    """Generator and critic of `arch` (one of ARCHS), matching the official code's layers.

    `extra_layers` is the WGAN paper DCGAN's `--n_extra_layers` (arch 'dcgan64' only).
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown model arch {arch!r}; choose one of {ARCHS}")
    check_norm(critic_norm, CRITIC_NORMS, "critic")
    check_norm(generator_norm, GENERATOR_NORMS, "generator")
    impl = default_conv_impl() if conv_impl == "auto" else conv_impl
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be 'auto' or one of {CONV_IMPLS}, got {conv_impl!r}")
    if extra_layers and arch != "dcgan64":
        raise ValueError(f"extra_layers is an option of arch 'dcgan64' only, got arch {arch!r}")
    inner_norm = "none" if critic_norm == "spectral" else critic_norm
    if arch == "toy":
        gen = MLPGenerator(hidden=toy_hidden, depth=toy_depth, norm=generator_norm,
                           axis_name=axis_name)
        critic = MLPCritic(hidden=toy_hidden, depth=toy_depth, norm=inner_norm,
                           axis_name=axis_name)
        latent = 2
    elif arch == "dcgan64":
        latent = 100
        gen = PaperDCGANGenerator(64, 3, 64, latent, extra_layers, generator_norm, impl,
                                  axis_name)
        critic = PaperDCGANCritic(64, 64, extra_layers, inner_norm, impl, axis_name)
    else:
        latent = 128
        common = dict(conv_impl=impl, axis_name=axis_name)
        if arch == "mnist":
            gen = DCGANGenerator(256, (128, 64), 1, 7, "sigmoid", latent, generator_norm, **common)
            critic = DCGANCritic((64, 128, 256), inner_norm, **common)
        elif arch == "cifar":
            gen = DCGANGenerator(512, (256, 128), 3, None, "tanh", latent, generator_norm,
                                 **common)
            critic = DCGANCritic((128, 256, 512), inner_norm, **common)
        else:
            gen = DCGANGenerator(512, (256, 128, 64), 3, None, "tanh", latent, generator_norm,
                                 **common)
            critic = DCGANCritic((64, 128, 256, 512), inner_norm, **common)
    if critic_norm == "spectral":
        critic = SpectralNormCritic(critic)
    return Models(gen, critic, latent, DATA_SHAPES[arch], critic_norm, generator_norm)
