"""Building blocks shared by the model families: official-init linear/conv layers, norms."""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from wgan_jax import layers

CRITIC_NORMS = ("none", "layer", "batch", "spectral")
GENERATOR_NORMS = ("none", "batch")


class Linear(nn.Module):
    """`y = x @ W + b` with the official init: 'glorot' (default) or 'he' uniform."""

    features: int
    init: str = "glorot"

    @nn.compact
    def __call__(self, x):
        n_in = x.shape[-1]
        scale = (math.sqrt(2.0 / n_in) if self.init == "he"
                 else math.sqrt(2.0 / (n_in + self.features)))
        kernel = self.param("kernel", layers.uniform_init(scale), (n_in, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return x @ kernel + bias


class Conv(nn.Module):
    """5x5 stride-2 'SAME' conv + bias; kernel HWIO, official 'he' init."""

    features: int
    kernel_size: int = 5
    impl: str = "matmul"

    @nn.compact
    def __call__(self, x):
        k, cin = self.kernel_size, x.shape[-1]
        fan_in, fan_out = cin * k * k, self.features * k * k / 4.0
        kernel = self.param("kernel", layers.uniform_init(math.sqrt(4.0 / (fan_in + fan_out))),
                            (k, k, cin, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return layers.conv_stride2(x, kernel, self.impl) + bias


class Deconv(nn.Module):
    """5x5 stride-2 'SAME' transposed conv + bias; kernel (k, k, cout, cin) as in TF."""

    features: int
    kernel_size: int = 5
    impl: str = "matmul"

    @nn.compact
    def __call__(self, x):
        k, cin = self.kernel_size, x.shape[-1]
        fan_in, fan_out = cin * k * k / 4.0, self.features * k * k
        kernel = self.param("kernel", layers.uniform_init(math.sqrt(4.0 / (fan_in + fan_out))),
                            (k, k, self.features, cin))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return layers.deconv_stride2(x, kernel, self.impl) + bias


def check_norm(norm: str, allowed: tuple[str, ...], what: str) -> None:
    if norm not in allowed:
        raise ValueError(f"{what} normalization must be one of {allowed}, got {norm!r}")


def normalize(x: jax.Array, norm: str, axis_name: str | None, name: str) -> jax.Array:
    """Apply the named normalization to features `x` (last axis = channels).

    Batch norm always uses the current batch's statistics, as the official code does; with
    `axis_name` the statistics are those of the global batch across devices.
    """
    if norm in ("none", "spectral"):
        return x
    if norm == "layer":
        # Per example over all non-batch axes, per-channel scale/offset (WGAN-GP ResNet's choice).
        return nn.LayerNorm(epsilon=1e-5, reduction_axes=tuple(range(1, x.ndim)),
                            feature_axes=-1, name=name)(x)
    if norm == "batch":
        return nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5,
                            axis_name=axis_name, name=name)(x)
    raise ValueError(f"unknown normalization {norm!r}")


def flatten_nchw(x: jax.Array) -> jax.Array:
    """Flatten NHWC in (C, H, W) order, as the official NCHW code does before its Linear."""
    return jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)


def unflatten_nchw(x: jax.Array, channels: int, size: int) -> jax.Array:
    """Inverse of `flatten_nchw`: (B, C*H*W) in C,H,W order -> NHWC."""
    return jnp.transpose(x.reshape(x.shape[0], channels, size, size), (0, 2, 3, 1))
