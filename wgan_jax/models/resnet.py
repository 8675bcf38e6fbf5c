"""The WGAN-GP paper's ResNets, NHWC: gan_cifar_resnet.py ('resnet32') and gan_64x64.py's
GoodGenerator / GoodDiscriminator ('resnet64'). Blocks and inits: `models/resnet_blocks.py`.

resnet32 (DIM_G = DIM_D = `dim`, 128 officially):
* G: Linear 128 -> 4x4xdim (Glorot), reshaped channel-major; three 'up' residual blocks
  (4 -> 8 -> 16 -> 32, batch norm); batch norm, ReLU, 3x3 conv dim -> channels with
  `he_init=False`, tanh. The Linear's output goes into the first block unnormalised (its
  shortcut reads it as is), as in the official code.
* D: `OptimizedResBlockDisc1` (32 -> 16), a 'down' block (16 -> 8), two blocks at 8x8 with
  identity shortcuts; ReLU, mean over the 8x8 map, Linear dim -> 1 (Glorot). No normalization
  (NORMALIZATION_D = False); `norm` 'layer' or 'batch' puts it where the official Normalize
  would (the blocks' two norms, not the first block).
* The image channels follow the data (`channels`; 3 for CIFAR-10, 1 for Fashion-MNIST padded
  to 32x32): the generator's output conv and the critic's first block read them; the official
  code hard-codes 3.

resnet64 (`dim`, 64 officially; gan_64x64.py's ResidualBlock):
* G: Linear 128 -> 4x4x8dim (Glorot); 'up' blocks 8dim -> 8dim -> 4dim -> 2dim -> dim
  (4 -> 64); batch norm, ReLU, 3x3 conv dim -> 3 (`he_init=True`, as that file's
  `Generator.Output`), tanh.
* D: 3x3 conv 3 -> dim (`he_init=False`); 'down' blocks dim -> 2dim -> 4dim -> 8dim -> 8dim
  (64 -> 4); flattened channel-major, Linear 4x4x8dim -> 1. Its norm is the critic's `norm`:
  gan_64x64.py's Normalize uses layer norm (per-example statistics over C, H, W, per-channel
  scale and offset) in the WGAN-GP critic and batch norm otherwise.

Conditioning (`models/conditional.py`; the official 64x64 code has none): as
gan_cifar_resnet.py, a conditional generator with batch norm conditions the blocks' norms on the
labels and keeps the output norm unconditional (`Generator.OutputN` gets no labels); without
batch norm it concatenates a label embedding to z. The critic's norms are never conditional
(the official ACGAN critic passes no labels to them); its heads act on the features its output
Linear reads (resnet32: the pooled dim vector; resnet64: the flattened 4x4x8dim map).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from wgan_jax import layers
from wgan_jax.models.common import Linear, flatten_nchw, normalize, unflatten_nchw
from wgan_jax.models.network import ConvNetwork
from wgan_jax.models.resnet_blocks import Conv2D, OptimizedBlock, ResidualBlock


class _ResNetGenerator(ConvNetwork):
    """z [B, latent_dim] -> images [B, 4 * 2^n, 4 * 2^n, channels] in [-1, 1]."""

    norm: str = "batch"
    dim: int = 128
    channels: int = 3
    latent_dim: int = 128
    # per-block output widths (multiples of dim), the input map's width, the file's blocks and
    # its output conv's init
    widths: tuple[int, ...] = (1, 1, 1)
    base: int = 1
    official: str = "cifar"
    output_he_init: bool = False

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None) -> jax.Array:
        dt = self.compute_dtype
        z = self.generator_input(z, y)
        c = self.base * self.dim
        x = unflatten_nchw(Linear(4 * 4 * c, compute_dtype=dt, name="input")(z), c, 4)
        for i, w in enumerate(self.widths):
            x = ResidualBlock(w * self.dim, "up", self.official, self.norm, self.conditioning,
                              self.num_classes, self.axis_name, self.conv_impl, dt,
                              name=f"block_{i + 1}")(x, y)
        x = layers.relu(normalize(x, self.norm, self.axis_name, "output_norm"))
        x = Conv2D(self.channels, 3, self.output_he_init, conv_impl=self.conv_impl,
                   compute_dtype=dt, name="output")(x)
        return jnp.tanh(x)


class ResNet32Generator(_ResNetGenerator):
    """gan_cifar_resnet.py's Generator."""


class ResNet64Generator(_ResNetGenerator):
    """gan_64x64.py's GoodGenerator."""

    dim: int = 64
    widths: tuple[int, ...] = (8, 4, 2, 1)
    base: int = 8
    official: str = "64x64"
    output_he_init: bool = True


class ResNet32Critic(ConvNetwork):
    """gan_cifar_resnet.py's Discriminator: images [B, 32, 32, C] -> values [B] (or
    `conditional.critic_output`'s form)."""

    dim: int = 128

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None):
        self.check_critic_labels(x, y)
        dt, d = self.compute_dtype, self.dim
        x = OptimizedBlock(d, self.conv_impl, dt, name="block_1")(x)
        for i, resample in ((2, "down"), (3, None), (4, None)):
            x = ResidualBlock(d, resample, "cifar", self.norm, axis_name=self.axis_name,
                              conv_impl=self.conv_impl, compute_dtype=dt, name=f"block_{i}")(x)
        features = jnp.mean(layers.relu(x), axis=(1, 2))
        values = Linear(1, compute_dtype=dt, name="output")(features).reshape(-1)
        return self.critic_head(values, features, y)


class ResNet64Critic(ConvNetwork):
    """gan_64x64.py's GoodDiscriminator: images [B, 64, 64, C] -> values [B] (or
    `conditional.critic_output`'s form)."""

    norm: str = "layer"
    dim: int = 64

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None):
        self.check_critic_labels(x, y)
        dt, d = self.compute_dtype, self.dim
        x = Conv2D(d, 3, he_init=False, conv_impl=self.conv_impl, compute_dtype=dt,
                   name="input")(x)
        for i, w in enumerate((2, 4, 8, 8)):
            x = ResidualBlock(w * d, "down", "64x64", self.norm, axis_name=self.axis_name,
                              conv_impl=self.conv_impl, compute_dtype=dt,
                              name=f"block_{i + 1}")(x)
        features = flatten_nchw(x)
        values = Linear(1, compute_dtype=dt, name="output")(features).reshape(-1)
        return self.critic_head(values, features, y)
