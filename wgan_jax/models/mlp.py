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
from wgan_jax.models.conditional import check_labels, critic_output, generator_norm, label_embedding


class MLPGenerator(nn.Module):
    """z [B, latent_dim] -> samples [B, *out_shape]; linear output or a sigmoid."""

    hidden: int = 512
    depth: int = 3
    out_shape: tuple[int, ...] = (2,)
    latent_dim: int = 2
    norm: str = "none"
    axis_name: str | None = None
    output: str = "linear"
    compute_dtype: str = "float32"
    conditioning: str = "none"
    num_classes: int = 0

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None) -> jax.Array:
        check_labels(y, z.shape[0], self.conditioning, "generator")
        x = label_embedding(z, y, self.norm, self.conditioning, self.num_classes)
        for i in range(self.depth):
            x = Linear(self.hidden, init="he", compute_dtype=self.compute_dtype,
                       name=f"hidden_{i}")(x)
            x = layers.relu(generator_norm(x, y, self.norm, self.conditioning,
                                           self.num_classes, self.axis_name, f"norm_{i}"))
        x = Linear(math.prod(self.out_shape), compute_dtype=self.compute_dtype, name="out")(x)
        if self.output == "sigmoid":
            x = jax.nn.sigmoid(x)
        return x.reshape((x.shape[0],) + tuple(self.out_shape))


class MLPCritic(nn.Module):
    """x [B, ...] (flattened) -> critic values [B] (or `conditional.critic_output`'s form)."""

    hidden: int = 512
    depth: int = 3
    norm: str = "none"
    axis_name: str | None = None
    compute_dtype: str = "float32"
    conditioning: str = "none"
    num_classes: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None):
        check_labels(y, x.shape[0], self.conditioning, "critic")
        x = x.reshape(x.shape[0], -1)
        for i in range(self.depth):
            x = Linear(self.hidden, init="he", compute_dtype=self.compute_dtype,
                       name=f"hidden_{i}")(x)
            if i > 0:
                x = normalize(x, self.norm, self.axis_name, f"norm_{i}")
            x = layers.relu(x)
        values = Linear(1, compute_dtype=self.compute_dtype, name="out")(x).reshape(-1)
        return critic_output(values, x, y, self.conditioning, self.num_classes,
                             self.compute_dtype)
