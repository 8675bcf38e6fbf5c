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
from wgan_jax.models.spectral import SpectralNormCritic

ARCHS = tuple(registry.ARCHS)

__all__ = ["ARCHS", "CONDITIONINGS", "CRITIC_NORMS", "GENERATOR_NORMS", "Models", "SpectralNormCritic",
           "apply_critic", "apply_generator", "build_models", "with_axis_name"]


def build_models(arch: str, *, critic_norm: str = "none", generator_norm: str = "none",
                 conv_impl: str = "auto", toy_hidden: int = 512, toy_depth: int = 3,
                 extra_layers: int = 0, compute_dtype: str = "float32",
                 conditioning: str = "none", num_classes: int = 0) -> Models:
    """Generator and critic of `arch`, matching the official code's layers.

    Options are checked where configs are validated (`config.validate`); `extra_layers` is the
    WGAN paper DCGAN's `--n_extra_layers` (arch 'dcgan64' only); `compute_dtype` 'bfloat16'
    runs every matmul/convolution on bfloat16 operands with float32 accumulation (parameters,
    norms, activations and losses stay float32). `conditioning` ('none', 'acgan',
    'projection') with `num_classes` labels makes both networks take labels `y`
    (`models/conditional.py`; ValueError for the toy MLPs, which have no labelled data).
    """
    spec = registry.arch(arch)
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
    elif arch == "dcgan64":
        # The paper's DCGAN derives its widths from the image size and its base width (64).
        gen = PaperDCGANGenerator(64, 3, 64, latent, extra_layers, generator_norm, impl, **dt)
        critic = PaperDCGANCritic(64, 64, extra_layers, inner_norm, impl, **dt)
    else:
        # The official DCGANs: the generator's deconvs run through the critic's widths in
        # reverse from a 4x4 map; where the data is not 4 * 2^n (mnist: 28), the first
        # deconv's 8x8 output is cropped to the size the later deconvs double to the data's.
        widths, channels = spec.widths, spec.data_shape[-1]
        out = "sigmoid" if spec.output_range == (0.0, 1.0) else "tanh"
        first = spec.data_shape[0] // 2 ** (len(widths) - 1)
        crop = first if first != 8 else None
        gen = DCGANGenerator(widths[-1], widths[-2::-1], channels, crop, out, latent,
                             generator_norm, conv_impl=impl, **dt)
        critic = DCGANCritic(widths, inner_norm, conv_impl=impl, **dt)
    if critic_norm == "spectral":
        critic = SpectralNormCritic(critic)
    return Models(gen, critic, latent, spec.data_shape, critic_norm, conditioning,
                  num_classes if conditioning != "none" else 0)
