"""The evaluator interface, and the generator/critic functions evaluators share."""
from __future__ import annotations

from typing import Protocol

import jax
import numpy as np

from wgan_jax.models import Models, apply_critic, apply_generator
from wgan_jax.models.apply import critic_values
from wgan_jax.state import TrainState


class Evaluator(Protocol):
    """Something computed from the train state every `every_steps` generator steps.

    `run` returns scalars (written as metrics) and [H, W, 3] uint8 arrays (written as images and
    saved as `<workdir>/<key>/step_NNNNNNN.png`).
    """

    name: str
    every_steps: int

    def run(self, state: TrainState) -> dict[str, float | np.ndarray]: ...


BATCH = 250  # examples per network call when evaluating many (bounded memory)


class Networks:
    """Jitted generator (from the EMA weights) and critic of `models`, for evaluation."""

    def __init__(self, models: Models):
        self.models = models
        self._gen = jax.jit(lambda p, v, z, y: apply_generator(models, p, v, z, y)[0])
        self._critic = jax.jit(
            lambda p, v, x, y: critic_values(apply_critic(models, p, v, x, False, y)[0]))

    def generate(self, state: TrainState, z, y=None) -> np.ndarray:
        """Samples of the EMA generator for latents `z` (and class labels `y` [N], which a
        conditional generator needs: `class_labels`), BATCH at a time."""
        return np.concatenate([np.asarray(self._gen(state.g_ema, state.g_vars, zb, yb))
                               for zb, yb in _batches(z, y)])

    def critic(self, state: TrainState, x, y=None) -> np.ndarray:
        """Critic values of `x` (with labels `y` [N] for a conditional critic; spectral-norm
        vectors not advanced), BATCH at a time."""
        return np.concatenate([np.asarray(self._critic(state.d_params, state.d_vars, xb, yb))
                               for xb, yb in _batches(x, y)])


def _batches(x, y):
    for i in range(0, len(x), BATCH):
        yield x[i:i + BATCH], None if y is None else y[i:i + BATCH]


def class_labels(n: int, num_classes: int) -> np.ndarray | None:
    """Labels 0, 1, ..., K-1, 0, 1, ... for `n` samples of a conditional generator (every class
    equally often); None for an unconditional one (`num_classes` 0)."""
    return np.arange(n, dtype=np.int32) % num_classes if num_classes else None


def fixed_latents(seed: int, n: int, latent_dim: int) -> jax.Array:
    """The fixed noise batch evaluators sample from (the same across a run and its resumes)."""
    return jax.random.normal(jax.random.PRNGKey(seed + 1), (n, latent_dim))
