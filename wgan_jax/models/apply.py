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

    @property
    def critic_mixes_examples(self) -> bool:
        """Whether the critic's output for one example depends on the others in its batch
        (batch norm): then real and fake must go through it as separate batches, and no
        per-example gradient penalty applies."""
        return self.critic_norm == "batch"

    @property
    def conditional(self) -> bool:
        return self.conditioning != "none"


def _with_axis(module, axis_name):
    if isinstance(module, SpectralNormCritic):
        return module.clone(critic=_with_axis(module.critic, axis_name))
    return module.clone(axis_name=axis_name)


def with_axis_name(models: Models, axis_name: str | None) -> Models:
    """The same networks with batch norm reducing over `axis_name` (None: one device)."""
    return dataclasses.replace(models, generator=_with_axis(models.generator, axis_name),
                               critic=_with_axis(models.critic, axis_name))


def _inputs(models: Models, x, y):
    return (x, y) if models.conditional else (x,)


def apply_critic(models: Models, params, variables, x, update_stats: bool, y=None):
    """Critic output for batch `x` (labels `y` [B] when conditional), and its (possibly updated)
    non-param variables. The output is values [B], or `(values, class_logits)` for 'acgan'
    (`critic_values` takes the values of either).

    Batch-norm statistics are always those of `x`; spectral-norm power-iteration vectors are
    advanced only when `update_stats` is True.
    """
    kwargs = {"update_stats": update_stats} if models.spectral else {}
    args = _inputs(models, x, y)
    if not variables:
        return models.critic.apply({"params": params}, *args, **kwargs), variables
    out, new = models.critic.apply({"params": params, **variables}, *args,
                                   mutable=list(variables), **kwargs)
    return out, (dict(new) if update_stats or not models.spectral else variables)


def critic_values(out):
    """The critic values [B] of an `apply_critic` output (dropping ACGAN class logits)."""
    return out[0] if isinstance(out, tuple) else out


def apply_generator(models: Models, params, variables, z, y=None):
    """Generator samples for latents `z` (and labels `y` [B] when conditional; batch
    statistics), and updated batch statistics."""
    args = _inputs(models, z, y)
    if not variables:
        return models.generator.apply({"params": params}, *args), variables
    out, new = models.generator.apply({"params": params, **variables}, *args,
                                      mutable=list(variables))
    return out, dict(new)
