"""The official WGAN-GP ResNets' layers and residual blocks (gan_cifar_resnet.py, gan_64x64.py).

* `Conv2D`: tflib's `Conv2D` at stride 1, 'SAME', kernel HWIO: uniform init with std
  sqrt(4 / (fan_in + fan_out)) (`he_init=True`) or sqrt(2 / (fan_in + fan_out)) (`False`),
  fan_in = cin k^2, fan_out = cout k^2 (tflib divides fan_out by stride^2, 1 here, and halves
  both fans only for masked convs, which these models do not use); zero bias.
* `ConvMeanPool` = conv then `layers.mean_pool2`, `MeanPoolConv` = `mean_pool2` then conv,
  `UpsampleConv` = `layers.upsample2` (depth-to-space of the input tiled 4x along channels)
  then conv: here a conv module applied around the resampling function.
* `ResidualBlock(..., official='cifar' | '64x64')`: the two files' `ResidualBlock`s differ.
  cifar: 'down' shortcut ConvMeanPool, every conv with a bias, 'none' conv_1 in -> out.
  64x64: 'down' shortcut MeanPoolConv, conv_1 without a bias (a norm follows it), 'none' conv_1
  in -> in. Both: shortcut 1x1 with `he_init=False` and a bias where the shape changes (identity
  otherwise); norm, ReLU, conv_1, norm, ReLU, conv_2; output shortcut + residual.
* `OptimizedBlock`: gan_cifar_resnet.py's `OptimizedResBlockDisc1` (the critic's first block:
  MeanPoolConv 1x1 shortcut; conv 3x3, ReLU, ConvMeanPool 3x3; no norm, no leading ReLU).

Norms: the generator's are `conditional.generator_norm` (batch norm, conditional in a
conditional generator); the critic's are `common.normalize` with the critic's norm (layer norm
in gan_64x64.py's WGAN-GP critic). Convolutions are `layers.conv_stride1` (`conv_impl`
'matmul' on CPU: the penalty's double backward is dense products).
"""
from __future__ import annotations

import flax.linen as nn
import jax

from wgan_jax import layers
from wgan_jax.models.common import kernel_init
from wgan_jax.models.conditional import generator_norm

OFFICIAL = ("cifar", "64x64")


class Conv2D(nn.Module):
    """tflib's stride-1 'SAME' `Conv2D` (odd k), NHWC, kernel (k, k, cin, cout), optional bias."""

    features: int
    kernel_size: int = 3
    he_init: bool = True
    use_bias: bool = True
    conv_impl: str = "matmul"
    compute_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, cin = self.kernel_size, x.shape[-1]
        init = kernel_init("he" if self.he_init else "glorot", cin * k * k,
                           self.features * k * k)
        kernel = self.param("kernel", init, (k, k, cin, self.features))
        y = layers.conv_stride1(x, kernel, self.conv_impl, self.compute_dtype)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


class ResidualBlock(nn.Module):
    """x [B, H, W, cin] -> [B, H', W', features]; `resample` 'up', 'down' or None."""

    features: int
    resample: str | None = None
    official: str = "cifar"
    norm: str = "none"
    conditioning: str = "none"  # generator blocks only; a critic's norms are unconditional
    num_classes: int = 0
    axis_name: str | None = None
    conv_impl: str = "matmul"
    compute_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        if self.official not in OFFICIAL:
            raise ValueError(f"official must be one of {OFFICIAL}, got {self.official!r}")
        if self.resample not in ("up", "down", None):
            raise ValueError(f"resample must be 'up', 'down' or None, got {self.resample!r}")
        cin, cout, up, down = x.shape[-1], self.features, self.resample == "up", \
            self.resample == "down"
        c64 = self.official == "64x64"

        def conv(features, k, name, he_init=True, use_bias=True):
            return Conv2D(features, k, he_init, use_bias, self.conv_impl, self.compute_dtype,
                          name=name)

        def norm(h, name):
            return generator_norm(h, y, self.norm, self.conditioning, self.num_classes,
                                  self.axis_name, name)

        shortcut = conv(cout, 1, "shortcut", he_init=False)
        if up:
            skip = shortcut(layers.upsample2(x))
        elif down:
            skip = (shortcut(layers.mean_pool2(x)) if c64
                    else layers.mean_pool2(shortcut(x)))
        elif cin == cout:
            skip = x
        else:
            skip = shortcut(x)

        h = layers.relu(norm(x, "norm_1"))
        mid = cout if up or (not down and not c64) else cin
        conv_1 = conv(mid, 3, "conv_1", use_bias=not c64)
        h = conv_1(layers.upsample2(h)) if up else conv_1(h)
        h = layers.relu(norm(h, "norm_2"))
        h = conv(cout, 3, "conv_2")(h)
        if down:
            h = layers.mean_pool2(h)
        return skip + h


class OptimizedBlock(nn.Module):
    """gan_cifar_resnet.py's `OptimizedResBlockDisc1`: x [B, H, W, C] -> [B, H/2, W/2, features]."""

    features: int
    conv_impl: str = "matmul"
    compute_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(conv_impl=self.conv_impl, compute_dtype=self.compute_dtype)
        skip = Conv2D(self.features, 1, he_init=False, name="shortcut", **kw)(
            layers.mean_pool2(x))
        h = layers.relu(Conv2D(self.features, 3, name="conv_1", **kw)(x))
        h = layers.mean_pool2(Conv2D(self.features, 3, name="conv_2", **kw)(h))
        return skip + h
