"""`build_models(arch, ...)`: the generator and critic of an architecture of `registry.ARCHS`."""
from __future__ import annotations

from wgan_jax import registry
from wgan_jax.layers import default_conv_impl
from wgan_jax.models.apply import Models, apply_critic, apply_generator, with_axis_name
from wgan_jax.models.common import CRITIC_NORMS, GENERATOR_NORMS
from wgan_jax.models.conditional import CONDITIONINGS, check_conditioning
from wgan_jax.models.dcgan import DCGANCritic, DCGANGenerator
from wgan_jax.models.mlp import MLPCritic, MLPGenerator
from wgan_jax.models.paper_dcgan import PaperDCGANCritic, PaperDCGANGenerator
from wgan_jax.models.resnet import (
    ResNet32Critic,
    ResNet32Generator,
    ResNet64Critic,
    ResNet64Generator,
)
from wgan_jax.models.spectral import SpectralNormCritic

ARCHS = tuple(registry.ARCHS)

__all__ = ["ARCHS", "CONDITIONINGS", "CRITIC_NORMS", "GENERATOR_NORMS", "Models",
           "SpectralNormCritic", "apply_critic", "apply_generator", "build_models",
           "with_axis_name"]


def build_models(arch: str, *, critic_norm: str = "none", generator_norm: str = "none",
                 conv_impl: str = "auto", toy_hidden: int = 512, toy_depth: int = 3,
                 extra_layers: int = 0, compute_dtype: str = "float32",
                 conditioning: str = "none", num_classes: int = 0, width: int = 0,
                 channels: int = 0) -> Models:
    """Generator and critic of `arch`, matching the official code's layers.

    Options are checked where configs are validated (`config.validate`); `extra_layers` is the
    WGAN paper DCGAN's `--n_extra_layers` (arch 'dcgan64' only); `compute_dtype` 'bfloat16'
    runs every matmul/convolution on bfloat16 operands with float32 accumulation (parameters,
    norms, activations and losses stay float32). `conditioning` ('none', 'acgan',
    'projection') with `num_classes` labels makes both networks take labels `y`
    (`models/conditional.py`; ValueError for the toy MLPs, which have no labelled data).
    For the ResNets, `width` is DIM (0: the official 128 for resnet32, 64 for resnet64) and
    `channels` the image channels (0: the arch's 3; 1 for Fashion-MNIST padded to 32x32).
    """
    spec = registry.arch(arch)
    resnet = arch in ("resnet32", "resnet64")
    if width and not resnet:
        raise ValueError(f"width={width}: only the ResNets (resnet32, resnet64) take a width; "
                         f"{arch!r} has its official widths, set width=0")
    if width < 0:
        raise ValueError(f"width must be >= 0 (0: the official width), got {width}")
    data_shape = spec.data_shape
    if channels and channels != data_shape[-1]:
        if channels not in spec.other_channels:
            raise ValueError(f"channels={channels}: arch {arch!r} builds for "
                             f"{(data_shape[-1],) + spec.other_channels} image channels")
        data_shape = data_shape[:-1] + (channels,)
    check_conditioning(conditioning, num_classes)
    if conditioning != "none" and arch == "toy":
        raise ValueError(f"conditioning={conditioning!r}: the toy datasets have no labels; "
                         "use conditioning='none'")
    dt = dict(compute_dtype=compute_dtype)
    if conditioning != "none":
        dt.update(conditioning=conditioning, num_classes=num_classes)
    impl = default_conv_impl() if conv_impl == "auto" else conv_impl
    inner_norm = "none" if critic_norm == "spectral" else critic_norm
    latent = spec.latent_dim
    if arch == "toy":
        gen = MLPGenerator(hidden=toy_hidden, depth=toy_depth, norm=generator_norm, **dt)
        critic = MLPCritic(hidden=toy_hidden, depth=toy_depth, norm=inner_norm, **dt)
    elif arch == "mlp":
        # The seed WGAN's MLPs: critic 784-128-1, generator latent-128-784 with a sigmoid.
        (hidden,) = spec.widths
        gen = MLPGenerator(hidden=hidden, depth=1, out_shape=spec.data_shape, latent_dim=latent,
                           norm=generator_norm, output="sigmoid", **dt)
        critic = MLPCritic(hidden=hidden, depth=1, norm=inner_norm, **dt)
    elif resnet:
        gen_cls, critic_cls = ((ResNet32Generator, ResNet32Critic) if arch == "resnet32"
                               else (ResNet64Generator, ResNet64Critic))
        kw = dict(dim=width or spec.widths[0], conv_impl=impl, **dt)
        gen = gen_cls(channels=data_shape[-1], latent_dim=latent, norm=generator_norm, **kw)
        critic = critic_cls(norm=inner_norm, **kw)
    elif arch == "dcgan64":
        # The paper's DCGAN derives its widths from the image size and its base width (64).
        gen = PaperDCGANGenerator(image_size=64, out_channels=3, width=64, latent_dim=latent,
                                  extra_layers=extra_layers, norm=generator_norm,
                                  conv_impl=impl, **dt)
        critic = PaperDCGANCritic(image_size=64, width=64, extra_layers=extra_layers,
                                  norm=inner_norm, conv_impl=impl, **dt)
    else:
        # The official DCGANs: the generator's deconvs run through the critic's widths in
        # reverse from a 4x4 map; where the data is not 4 * 2^n (mnist: 28), the first
        # deconv's 8x8 output is cropped to the size the later deconvs double to the data's.
        widths, channels = spec.widths, spec.data_shape[-1]
        out = "sigmoid" if spec.output_range == (0.0, 1.0) else "tanh"
        first = spec.data_shape[0] // 2 ** (len(widths) - 1)
        crop = first if first != 8 else None
        gen = DCGANGenerator(base_channels=widths[-1], channels=widths[-2::-1],
                             out_channels=channels, crop_first=crop, output=out,
                             latent_dim=latent, norm=generator_norm, conv_impl=impl, **dt)
        critic = DCGANCritic(channels=widths, norm=inner_norm, conv_impl=impl, **dt)
    if critic_norm == "spectral":
        critic = SpectralNormCritic(critic)
    return Models(gen, critic, latent, data_shape, critic_norm, conditioning,
                  num_classes if conditioning != "none" else 0)
