"""The WGAN paper's DCGAN (martinarjovsky/WassersteinGAN, models/dcgan.py), NHWC.

The 64x64 model of the WGAN paper's LSUN-bedroom and CelebA experiments (Radford et al.'s DCGAN
as the official PyTorch code writes it), for `image_size` 64 with ngf = ndf = 64, nz = 100:

* G: z -> `ConvTranspose2d(100, 512, 4, 1, 0)` (a 1x1 -> 4x4 map, i.e. a Linear to 4x4x512),
  BN, ReLU; `ConvTranspose2d(c, c/2, 4, 2, 1)`, BN, ReLU for 4 -> 8 -> 16 -> 32;
  `ConvTranspose2d(64, 3, 4, 2, 1)` to 64x64, tanh.
* D: `Conv2d(3, 64, 4, 2, 1)`, LeakyReLU(0.2); `Conv2d(c, 2c, 4, 2, 1)`, BN, LeakyReLU for
  32 -> 16 -> 8 -> 4; `Conv2d(512, 1, 4, 1, 0)` on the 4x4 map (a Linear 8192 -> 1).
* `extra_layers` adds the code's `--n_extra_layers` 3x3 stride-1 conv + BN + activation blocks
  (D: after the first conv; G: before the last deconv).
* No biases anywhere; conv kernels N(0, 0.02), batch-norm scale N(1, 0.02) and offset 0
  (`weights_init` in main.py); batch norm in train mode (current batch statistics).

The 4x4 stride-2 layers with padding 1 are `layers.conv_stride2` / `deconv_stride2` with k = 4
('SAME' on even maps pads (1, 1)). Kernels keep this package's layouts; a PyTorch weight maps
over as: conv (cout, cin, kh, kw) -> transpose (2, 3, 1, 0); transposed conv (cin, cout, kh, kw)
-> (2, 3, 1, 0); the input layer (nz, c, 4, 4) -> (0, 2, 3, 1); the output conv (1, c, 4, 4)
-> (2, 3, 1, 0). The critic returns one value per example; the PyTorch code's `mean(0)` is the
loss's mean.

Conditioning (`models/conditional.py`): a generator with batch norm conditions every batch norm
on the labels (per-class scales N(1, 0.02) as the paper's init), one without concatenates a label
embedding to z; the critic's heads act on the flattened 4x4 map the output conv reads (HWC order).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from wgan_jax import layers
from wgan_jax.models.common import DCGAN_INIT_STD, Conv, Deconv, dcgan_scale_init, normalize
from wgan_jax.models.network import ConvNetwork


def _check_size(image_size: int) -> int:
    """Number of stride-2 stages between 4x4 and `image_size` (the code asserts isize % 16 == 0)."""
    stages = (image_size // 4).bit_length() - 1
    if image_size < 16 or 4 * 2 ** stages != image_size:
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    return stages


class _ExtraLayer(nn.Module):
    """3x3 stride-1 conv (no bias), norm, activation: the code's `extra-layers` block."""

    norm: str
    activation: str
    conv_impl: str
    axis_name: str | None
    compute_dtype: str = "float32"

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.normal(DCGAN_INIT_STD), (3, 3, c, c))
        x = layers.conv_stride1(x, kernel, self.conv_impl, self.compute_dtype)
        x = normalize(x, self.norm, self.axis_name, "norm", dcgan_scale_init)
        return layers.relu(x) if self.activation == "relu" else layers.leaky_relu(x)


class PaperDCGANGenerator(ConvNetwork):
    """z [B, latent_dim] -> images [B, image_size, image_size, out_channels] in [-1, 1]."""

    image_size: int = 64
    out_channels: int = 3
    width: int = 64  # ngf
    latent_dim: int = 100
    extra_layers: int = 0
    norm: str = "batch"

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None) -> jax.Array:
        stages = _check_size(self.image_size)
        z = self.generator_input(z, y)
        c = self.width // 2 * 2 ** stages
        n_in = z.shape[-1]
        kernel = self.param("input", nn.initializers.normal(DCGAN_INIT_STD), (n_in, 4, 4, c))
        dt = self.compute_dtype
        x = layers.matmul(z, kernel.reshape(n_in, -1), dt).reshape(z.shape[0], 4, 4, c)
        x = layers.relu(self.generator_norm(x, y, "input_norm", dcgan_scale_init))
        for i in range(stages - 1):
            c //= 2
            x = Deconv(c, 4, self.conv_impl, use_bias=False, init="dcgan", compute_dtype=dt,
                       name=f"deconv_{i}")(x)
            x = layers.relu(self.generator_norm(x, y, f"deconv_{i}_norm", dcgan_scale_init))
        for i in range(self.extra_layers):
            x = _ExtraLayer(self.norm, "relu", self.conv_impl, self.axis_name, dt,
                            name=f"extra_{i}")(x)
        x = Deconv(self.out_channels, 4, self.conv_impl, use_bias=False, init="dcgan",
                   compute_dtype=dt, name="output")(x)
        return jnp.tanh(x)


class PaperDCGANCritic(ConvNetwork):
    """images [B, image_size, image_size, C] -> critic values [B] (or
    `conditional.critic_output`'s form)."""

    image_size: int = 64
    width: int = 64  # ndf
    extra_layers: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None):
        stages = _check_size(self.image_size)
        self.check_critic_labels(x, y)
        if x.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(f"critic built for {self.image_size}x{self.image_size} images, "
                             f"got shape {x.shape}")
        c, dt = self.width, self.compute_dtype
        x = layers.leaky_relu(Conv(c, 4, self.conv_impl, use_bias=False, init="dcgan",
                                   compute_dtype=dt, name="conv_0")(x))
        for i in range(self.extra_layers):
            x = _ExtraLayer(self.norm, "leaky_relu", self.conv_impl, self.axis_name, dt,
                            name=f"extra_{i}")(x)
        for i in range(1, stages):
            c *= 2
            x = Conv(c, 4, self.conv_impl, use_bias=False, init="dcgan", compute_dtype=dt,
                     name=f"conv_{i}")(x)
            x = layers.leaky_relu(normalize(x, self.norm, self.axis_name, f"conv_{i}_norm",
                                            dcgan_scale_init))
        kernel = self.param("output", nn.initializers.normal(DCGAN_INIT_STD), (4, 4, c, 1))
        features = x.reshape(x.shape[0], -1)
        values = layers.matmul(features, kernel.reshape(-1, 1), dt).reshape(-1)
        return self.critic_head(values, features, y)
