"""The two networks of a GAN as one value (`Models`), and how the step applies them."""
from __future__ import annotations

import dataclasses

import flax.linen as nn

from wgan_jax.models.spectral import SpectralNormCritic


@dataclasses.dataclass(frozen=True)
class Models:
    """The two networks of a GAN plus what the training step needs to know about them."""

    generator: nn.Module
    critic: nn.Module
    latent_dim: int
    data_shape: tuple[int, ...]
    critic_norm: str
    conditioning: str = "none"
    num_classes: int = 0

    @property
    def spectral(self) -> bool:
        return self.critic_norm == "spectral"


def _with_axis(module, axis_name):
    if isinstance(module, SpectralNormCritic):
        return module.clone(critic=_with_axis(module.critic, axis_name))
    return module.clone(axis_name=axis_name)


def with_axis_name(models: Models, axis_name: str | None) -> Models:
    """The same networks with batch norm reducing over `axis_name` (None: one device)."""
    return dataclasses.replace(models, generator=_with_axis(models.generator, axis_name),
                               critic=_with_axis(models.critic, axis_name))


def apply_critic(models: Models, params, variables, x, update_stats: bool):
    """Critic values for batch `x`, and its (possibly updated) non-param variables.

    Batch-norm statistics are always those of `x`; spectral-norm power-iteration vectors are
    advanced only when `update_stats` is True.
    """
    kwargs = {"update_stats": update_stats} if models.spectral else {}
    if not variables:
        return models.critic.apply({"params": params}, x, **kwargs), variables
    out, new = models.critic.apply({"params": params, **variables}, x,
                                   mutable=list(variables), **kwargs)
    return out, (dict(new) if update_stats or not models.spectral else variables)


def apply_generator(models: Models, params, variables, z):
    """Generator samples for latents `z` (batch statistics), and updated batch statistics."""
    if not variables:
        return models.generator.apply({"params": params}, z), variables
    out, new = models.generator.apply({"params": params, **variables}, z,
                                      mutable=list(variables))
    return out, dict(new)
