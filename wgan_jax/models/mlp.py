"""The toy MLPs of gan_toy.py: three hidden layers of 512 ReLU units."""
from __future__ import annotations

import flax.linen as nn
import jax

from wgan_jax import layers
from wgan_jax.models.common import GENERATOR_NORMS, Linear, check_norm, normalize


class MLPGenerator(nn.Module):
    """z [B, latent_dim] -> points [B, out_dim]; linear output (no nonlinearity)."""

    hidden: int = 512
    depth: int = 3
    out_dim: int = 2
    latent_dim: int = 2
    norm: str = "none"
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        check_norm(self.norm, GENERATOR_NORMS, "generator")
        x = z
        for i in range(self.depth):
            x = Linear(self.hidden, init="he", name=f"hidden_{i}")(x)
            x = layers.relu(normalize(x, self.norm, self.axis_name, f"norm_{i}"))
        return Linear(self.out_dim, name="out")(x)


class MLPCritic(nn.Module):
    """x [B, in_dim] -> critic values [B]."""

    hidden: int = 512
    depth: int = 3
    norm: str = "none"
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for i in range(self.depth):
            x = Linear(self.hidden, init="he", name=f"hidden_{i}")(x)
            if i > 0:
                x = normalize(x, self.norm, self.axis_name, f"norm_{i}")
            x = layers.relu(x)
        return Linear(1, name="out")(x).reshape(-1)
