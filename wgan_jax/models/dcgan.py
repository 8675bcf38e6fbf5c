"""DCGAN generators and critics of the official WGAN-GP code (NHWC, 5x5 stride-2 layers).

* mnist (gan_mnist.py): G Linear 128->4x4x256, deconvs 256->128 (crop 8->7), ->64, ->1, sigmoid;
  D convs 1->64->128->256, Linear 4096->1.
* cifar (gan_cifar.py): G Linear 128->4x4x512, deconvs ->256->128->3, tanh;
  D convs 3->128->256->512, Linear 8192->1.
* celeba64 (gan_64x64.py's DCGAN, the 64x64 DCGAN of Radford et al. with 5x5 kernels):
  G Linear 128->4x4x512, deconvs ->256->128->64->3, tanh; D convs 3->64->128->256->512.

The critic's normalization (if any) follows every conv except the first, the generator's
follows the Linear and every deconv except the last. Strided convs use LeakyReLU(0.2) and
transposed convs ReLU (the GAN-hacks choices: no pooling, no ReLU in the critic).

Conditioning (`models/conditional.py`): a generator with batch norm conditions every batch norm
(conditional batch norm on the labels `y`), one without concatenates a label embedding to z;
the critic's heads ('projection', 'acgan') act on the flattened features of the last conv (the
output Linear's input).
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from wgan_jax import layers
from wgan_jax.models.common import Conv, Deconv, Linear, flatten_nchw, normalize, unflatten_nchw
from wgan_jax.models.network import ConvNetwork


class DCGANGenerator(ConvNetwork):
    """z [B, latent_dim] -> images [B, H, W, out_channels]."""

    base_channels: int = 256
    channels: Sequence[int] = (128, 64)
    out_channels: int = 1
    crop_first: int | None = 7  # gan_mnist.py crops the first 8x8 map to 7x7
    output: str = "sigmoid"
    latent_dim: int = 128

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None) -> jax.Array:
        dt = self.compute_dtype
        z = self.generator_input(z, y)
        x = Linear(4 * 4 * self.base_channels, compute_dtype=dt, name="input")(z)
        x = layers.relu(self.generator_norm(x, y, "input_norm"))
        x = unflatten_nchw(x, self.base_channels, 4)
        for i, c in enumerate(self.channels):
            x = Deconv(c, impl=self.conv_impl, compute_dtype=dt, name=f"deconv_{i}")(x)
            x = layers.relu(self.generator_norm(x, y, f"deconv_{i}_norm"))
            if i == 0 and self.crop_first is not None:
                x = x[:, :self.crop_first, :self.crop_first, :]
        x = Deconv(self.out_channels, impl=self.conv_impl, compute_dtype=dt, name="output")(x)
        if self.output == "sigmoid":
            return jax.nn.sigmoid(x)
        if self.output == "tanh":
            return jnp.tanh(x)
        raise ValueError(f"output must be 'sigmoid' or 'tanh', got {self.output!r}")


class DCGANCritic(ConvNetwork):
    """images [B, H, W, C] -> critic values [B] (or `conditional.critic_output`'s form)."""

    channels: Sequence[int] = (64, 128, 256)

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None):
        self.check_critic_labels(x, y)
        for i, c in enumerate(self.channels):
            x = Conv(c, impl=self.conv_impl, compute_dtype=self.compute_dtype,
                     name=f"conv_{i}")(x)
            if i > 0:
                x = normalize(x, self.norm, self.axis_name, f"conv_{i}_norm")
            x = layers.leaky_relu(x)
        features = flatten_nchw(x)
        values = Linear(1, compute_dtype=self.compute_dtype, name="output")(features).reshape(-1)
        return self.critic_head(values, features, y)
