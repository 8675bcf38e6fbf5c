"""Class conditioning: conditional batch norm in generators, projection and ACGAN critic heads.

* `ConditionalBatchNorm`: tflib's `cond_batchnorm` (Dumoulin et al. 2016), used by
  gan_cifar_resnet.py's conditional generator: batch statistics over every axis but the last
  (batch and spatial axes; global across devices with `axis_name`, as `common.normalize`),
  biased variance, eps 1e-5, then a per-class scale (init 1) and offset (init 0) picked by the
  integer labels `y`.
* Generators: a generator with batch norm (`norm='batch'`) replaces each batch norm the official
  code conditions by a conditional one; a generator without batch norm concatenates a learned
  label embedding (one row of `latent_dim` N(0, 1) entries per class, the scale of z) to z
  (`label_embedding`).
* Critics: `critic_output` turns an unconditional value and the features it was computed from
  into the conditional output. 'projection' (Miyato and Koyama 2018): value + <embed(y),
  features>, the embedding initialised as tflib's Linear would be for a one-hot input
  (Glorot uniform, fan num_classes + features). 'acgan' (gan_cifar_resnet.py): a
  `(values, class_logits)` pair, the logits a Glorot Linear to `num_classes` on the same features.

Labels are int [B] in [0, num_classes); a conditional network called without them raises
ValueError. Unconditional networks ignore `y`. Label lookups are gathers, not one-hot products,
so a bfloat16 step has no float32 matrix product from them; a label outside [0, num_classes)
looks up NaN (`jnp.take`'s fill), which the step reports as a non-finite value.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from wgan_jax import layers
from wgan_jax.models.common import Linear, normalize

CONDITIONINGS = ("none", "acgan", "projection")


def check_conditioning(conditioning: str, num_classes: int) -> None:
    """ValueError unless `conditioning` is known and a conditional model has >= 2 classes."""
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
    if conditioning != "none" and num_classes < 2:
        raise ValueError(f"conditioning={conditioning!r} needs a labelled dataset "
                         f"(num_classes >= 2), got num_classes={num_classes}")


def check_labels(y, batch: int, conditioning: str, who: str) -> None:
    """ValueError unless a conditional `who` got integer labels of shape [batch]."""
    if conditioning == "none":
        return
    if y is None:
        raise ValueError(f"the {who} is conditional (conditioning={conditioning!r}): call it "
                         f"with integer class labels y of shape [{batch}]")
    if y.shape != (batch,) or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"the {who}'s labels y must be integers of shape [{batch}], got "
                         f"{y.dtype} of shape {y.shape}")


class ConditionalBatchNorm(nn.Module):
    """Batch norm with per-class scale and offset (tflib `cond_batchnorm`), x [B, ..., C]."""

    num_classes: int
    axis_name: str | None = None
    epsilon: float = 1e-5
    scale_init: nn.initializers.Initializer = nn.initializers.ones

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        c = x.shape[-1]
        scale = self.param("scale", self.scale_init, (self.num_classes, c))
        offset = self.param("offset", nn.initializers.zeros, (self.num_classes, c))
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axes)
        if self.axis_name is not None:
            mean = lax.pmean(mean, self.axis_name)
        centred = x - mean
        var = jnp.mean(jnp.square(centred), axes)
        if self.axis_name is not None:
            var = lax.pmean(var, self.axis_name)
        bcast = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
        g = jnp.take(scale, y, axis=0).reshape(bcast)
        b = jnp.take(offset, y, axis=0).reshape(bcast)
        return centred * lax.rsqrt(var + self.epsilon) * g + b


def generator_norm(x, y, norm: str, conditioning: str, num_classes: int,
                   axis_name: str | None, name: str, scale_init=nn.initializers.ones):
    """The generator's normalization: conditional batch norm where a conditional generator has
    batch norm, else `common.normalize` (call inside a compact method)."""
    if conditioning != "none" and norm == "batch":
        return ConditionalBatchNorm(num_classes, axis_name, scale_init=scale_init, name=name)(x, y)
    return normalize(x, norm, axis_name, name, scale_init)


def label_embedding(z, y, norm: str, conditioning: str, num_classes: int):
    """z with a learned label embedding concatenated, for a conditional generator without
    batch norm; z itself otherwise (call inside a compact method)."""
    if conditioning == "none" or norm == "batch":
        return z
    return jnp.concatenate([z, nn.Embed(num_classes, z.shape[-1],
                                        embedding_init=nn.initializers.normal(1.0),
                                        name="label_embedding")(y).astype(z.dtype)], axis=-1)


class Projection(nn.Module):
    """<embed(y), features> per example (Miyato and Koyama 2018's projection term)."""

    num_classes: int

    @nn.compact
    def __call__(self, features: jax.Array, y: jax.Array) -> jax.Array:
        f = features.shape[-1]
        embed = self.param("embedding", layers.uniform_init(
            math.sqrt(2.0 / (self.num_classes + f))), (self.num_classes, f))
        return jnp.sum(jnp.take(embed, y, axis=0) * features, axis=-1)


def critic_output(values, features, y, conditioning: str, num_classes: int,
                  compute_dtype: str = "float32"):
    """The critic's output from its unconditional `values` [B] and `features` [B, F]: values,
    values + projection, or (values, class logits) (call inside a compact method)."""
    if conditioning == "none":
        return values
    if conditioning == "projection":
        return values + Projection(num_classes, name="projection")(features, y)
    if conditioning == "acgan":
        return values, Linear(num_classes, compute_dtype=compute_dtype,
                              name="acgan_output")(features)
    raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
