"""Sample pictures: an image grid from a fixed noise batch, or for 2-D data the critic's value
surface with real and generated points."""
from __future__ import annotations

import math

import jax
import ml_collections
import numpy as np

from wgan_jax import registry, visualize
from wgan_jax.data import toy
from wgan_jax.evaluators.base import Networks, fixed_latents
from wgan_jax.evaluators.spec import EvaluatorSpec, check_positive_ints
from wgan_jax.state import TrainState

TOY_GRID_RANGE = 3.0  # gan_toy.py's plotting range
TOY_POINTS = 1000  # real and generated points drawn on the toy picture


class SamplePictures:
    """`samples`: the picture of the EMA generator's samples at the current step."""

    name = "samples"

    def __init__(self, networks: Networks, dataset: str, arch: str, *, every_steps: int,
                 seed: int, num_images: int):
        self.networks, self.dataset, self.every_steps = networks, dataset, every_steps
        self.toy = registry.dataset(dataset).is_toy
        self.value_range = registry.arch(arch).output_range
        n = TOY_POINTS if self.toy else num_images
        # A conditional generator: one row per class, the same latents in every row.
        self.num_classes = networks.models.num_classes
        self.y = None
        if self.num_classes:
            per_class = max(1, num_images // self.num_classes)
            z = fixed_latents(seed, per_class, networks.models.latent_dim)
            self.z = jax.numpy.tile(z, (self.num_classes, 1))
            self.y = np.repeat(np.arange(self.num_classes, dtype=np.int32), per_class)
        else:
            self.z = fixed_latents(seed, n, networks.models.latent_dim)
        if self.toy:
            key = jax.random.fold_in(jax.random.PRNGKey(seed + 1), 1)
            self.real = np.asarray(toy.sample(dataset, key, TOY_POINTS))
            self.grid = visualize.toy_grid(TOY_GRID_RANGE)

    def run(self, state: TrainState) -> dict[str, np.ndarray]:
        fake = self.networks.generate(state, self.z, self.y)
        if not self.toy:
            cols = len(self.z) // self.num_classes if self.num_classes else None
            return {"samples": visualize.image_grid(fake, self.value_range, cols)}
        values = self.networks.critic(state, self.grid)
        n = int(round(math.sqrt(len(self.grid))))
        return {"samples": visualize.toy_figure(
            self.real, fake, values.reshape(n, n), TOY_GRID_RANGE,
            f"{self.dataset}, step {int(state.step)}")}


def _defaults() -> ml_collections.ConfigDict:
    b = ml_collections.ConfigDict()
    b.every_steps = 1000
    b.num_images = 64  # images in the grid (image data; toy pictures draw TOY_POINTS points)
    return b


def _validate(block, config, fail, active) -> None:
    del config, active
    check_positive_ints(block, "eval.samples", fail, "every_steps", "num_images")


def _build(config, method, networks) -> SamplePictures:
    b = config.eval.samples
    return SamplePictures(networks, method.dataset, method.model.arch,
                          every_steps=b.every_steps, seed=config.seed, num_images=b.num_images)


SPEC = EvaluatorSpec(needs="any", defaults=_defaults, build=_build, validate=_validate)
