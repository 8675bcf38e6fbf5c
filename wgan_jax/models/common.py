"""Building blocks shared by the model families: official-init linear/conv layers, norms."""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from wgan_jax import layers

CRITIC_NORMS = ("none", "layer", "batch", "spectral")
GENERATOR_NORMS = ("none", "batch")
DCGAN_INIT_STD = 0.02  # the WGAN paper's weights_init: conv N(0, 0.02), batch-norm scale N(1, 0.02)


class Linear(nn.Module):
    """`y = x @ W + b` with the official init: 'glorot' (default) or 'he' uniform."""

    features: int
    init: str = "glorot"
    compute_dtype: str = "float32"  # matmul operands: 'float32' or 'bfloat16' (layers.matmul)

    @nn.compact
    def __call__(self, x):
        n_in = x.shape[-1]
        scale = (math.sqrt(2.0 / n_in) if self.init == "he"
                 else math.sqrt(2.0 / (n_in + self.features)))
        kernel = self.param("kernel", layers.uniform_init(scale), (n_in, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return layers.matmul(x, kernel, self.compute_dtype) + bias


class _Strided(nn.Module):
    """Shared by Conv and Deconv: a k x k stride-2 kernel, its init, and an optional bias.

    init 'he' is tflib's (official WGAN-GP): for a stride-2 layer it uses fan_in + fan_out with
    the strided side's fan divided by stride^2 = 4 (the output side for a conv, the input side
    for a deconv), and a zero bias. init 'dcgan' is the WGAN paper's PyTorch code: N(0, 0.02).
    """

    features: int
    kernel_size: int = 5
    impl: str = "matmul"
    use_bias: bool = True
    init: str = "he"
    compute_dtype: str = "float32"
    transposed = False

    @nn.compact
    def __call__(self, x):
        k, cin = self.kernel_size, x.shape[-1]
        fan_in, fan_out = cin * k * k, self.features * k * k
        if self.transposed:
            fan_in /= 4.0
            shape, op = (k, k, self.features, cin), layers.deconv_stride2
        else:
            fan_out /= 4.0
            shape, op = (k, k, cin, self.features), layers.conv_stride2
        kernel = self.param("kernel", kernel_init(self.init, fan_in, fan_out), shape)
        # float32 calls keep the three-argument form that older layers files (A/B variants of
        # benchmarks/ab_step.py) implement.
        y = (op(x, kernel, self.impl) if self.compute_dtype == "float32"
             else op(x, kernel, self.impl, self.compute_dtype))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


def kernel_init(init: str, fan_in: float, fan_out: float):
    """'he': tflib's uniform init with std sqrt(4 / (fan_in + fan_out)); 'glorot': tflib's
    `he_init=False`, std sqrt(2 / (fan_in + fan_out)); 'dcgan': N(0, 0.02)."""
    if init == "he":
        return layers.uniform_init(math.sqrt(4.0 / (fan_in + fan_out)))
    if init == "glorot":
        return layers.uniform_init(math.sqrt(2.0 / (fan_in + fan_out)))
    if init == "dcgan":
        return nn.initializers.normal(DCGAN_INIT_STD)
    raise ValueError(f"init must be 'he', 'glorot' or 'dcgan', got {init!r}")


class Conv(_Strided):
    """k x k (default 5) stride-2 'SAME' conv (+ bias); kernel HWIO."""


class Deconv(_Strided):
    """k x k (default 5) stride-2 'SAME' transposed conv (+ bias); kernel (k, k, cout, cin)."""

    transposed = True


def normalize(x: jax.Array, norm: str, axis_name: str | None, name: str,
              scale_init=nn.initializers.ones) -> jax.Array:
    """Apply the named normalization to features `x` (last axis = channels).

    Batch norm always uses the current batch's statistics, as the official code does (PyTorch's
    train mode too); with `axis_name` the statistics are those of the global batch across
    devices. `scale_init` is the batch-norm scale's init.
    """
    if norm in ("none", "spectral"):
        return x
    if norm == "layer":
        # Per example over all non-batch axes, per-channel scale/offset (WGAN-GP ResNet's choice).
        return nn.LayerNorm(epsilon=1e-5, reduction_axes=tuple(range(1, x.ndim)),
                            feature_axes=-1, name=name)(x)
    if norm == "batch":
        return nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5,
                            axis_name=axis_name, scale_init=scale_init, name=name)(x)
    raise ValueError(f"unknown normalization {norm!r}")


def dcgan_scale_init(key, shape, dtype=jnp.float32):
    """The WGAN paper's batch-norm scale init, N(1, 0.02)."""
    return 1.0 + DCGAN_INIT_STD * jax.random.normal(key, shape, dtype)


def flatten_nchw(x: jax.Array) -> jax.Array:
    """Flatten NHWC in (C, H, W) order, as the official NCHW code does before its Linear."""
    return jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)


def unflatten_nchw(x: jax.Array, channels: int, size: int) -> jax.Array:
    """Inverse of `flatten_nchw`: (B, C*H*W) in C,H,W order -> NHWC."""
    return jnp.transpose(x.reshape(x.shape[0], channels, size, size), (0, 2, 3, 1))
