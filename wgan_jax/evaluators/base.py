"""The evaluator interface, and the generator/critic functions evaluators share."""
from __future__ import annotations

from typing import Protocol

import jax
import numpy as np

from wgan_jax.models import Models, apply_critic, apply_generator
from wgan_jax.state import TrainState


class Evaluator(Protocol):
    """Something computed from the train state every `every_steps` generator steps.

    `run` returns scalars (written as metrics) and [H, W, 3] uint8 arrays (written as images and
    saved as `<workdir>/<key>/step_NNNNNNN.png`).
    """

    name: str
    every_steps: int

    def run(self, state: TrainState) -> dict[str, float | np.ndarray]: ...


class Networks:
    """Jitted generator (from the EMA weights) and critic of `models`, for evaluation."""

    def __init__(self, models: Models):
        self.models = models
        self._gen = jax.jit(lambda p, v, z: apply_generator(models, p, v, z)[0])
        self._critic = jax.jit(lambda p, v, x: apply_critic(models, p, v, x, False)[0])

    def generate(self, state: TrainState, z) -> np.ndarray:
        """Samples of the EMA generator for latents `z`."""
        return np.asarray(self._gen(state.g_ema, state.g_vars, z))

    def critic(self, state: TrainState, x) -> np.ndarray:
        """Critic values of `x` (spectral-norm vectors not advanced)."""
        return np.asarray(self._critic(state.d_params, state.d_vars, x))


def fixed_latents(seed: int, n: int, latent_dim: int) -> jax.Array:
    """The fixed noise batch evaluators sample from (the same across a run and its resumes)."""
    return jax.random.normal(jax.random.PRNGKey(seed + 1), (n, latent_dim))
