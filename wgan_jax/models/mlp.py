"""MLPs: gan_toy.py's (three hidden layers of 512 ReLU units) and the seed WGAN's for 28x28
images (one hidden layer of 128 units; the generator ends in a sigmoid).

Conditioning (`models/conditional.py`): a generator with batch norm conditions it on the labels,
one without concatenates a label embedding to z; the critic's heads act on the last hidden
layer's activations.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax

from wgan_jax import layers
from wgan_jax.models.common import Linear, normalize
from wgan_jax.models.network import Network


class MLPGenerator(Network):
    """z [B, latent_dim] -> samples [B, *out_shape]; linear output or a sigmoid."""

    hidden: int = 512
    depth: int = 3
    out_shape: tuple[int, ...] = (2,)
    latent_dim: int = 2
    output: str = "linear"

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None) -> jax.Array:
        x = self.generator_input(z, y)
        for i in range(self.depth):
            x = Linear(self.hidden, init="he", compute_dtype=self.compute_dtype,
                       name=f"hidden_{i}")(x)
            x = layers.relu(self.generator_norm(x, y, f"norm_{i}"))
        x = Linear(math.prod(self.out_shape), compute_dtype=self.compute_dtype, name="out")(x)
        if self.output == "sigmoid":
            x = jax.nn.sigmoid(x)
        return x.reshape((x.shape[0],) + tuple(self.out_shape))


class MLPCritic(Network):
    """x [B, ...] (flattened) -> critic values [B] (or `conditional.critic_output`'s form)."""

    hidden: int = 512
    depth: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None):
        self.check_critic_labels(x, y)
        x = x.reshape(x.shape[0], -1)
        for i in range(self.depth):
            x = Linear(self.hidden, init="he", compute_dtype=self.compute_dtype,
                       name=f"hidden_{i}")(x)
            if i > 0:
                x = normalize(x, self.norm, self.axis_name, f"norm_{i}")
            x = layers.relu(x)
        values = Linear(1, compute_dtype=self.compute_dtype, name="out")(x).reshape(-1)
        return self.critic_head(values, x, y)
