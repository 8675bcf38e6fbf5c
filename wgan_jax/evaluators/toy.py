"""Toy-data evaluation: mode coverage, sample quality, the exact W1 next to the critic's."""
from __future__ import annotations

import jax
import numpy as np

from wgan_jax import distances, losses, registry
from wgan_jax.data import toy
from wgan_jax.evaluators.base import Networks, fixed_latents
from wgan_jax.state import TrainState


def mode_coverage(samples: np.ndarray, centers: np.ndarray, std: float,
                  num_std: float = 3.0, min_fraction: float = 0.01) -> dict[str, float]:
    """`modes_covered`: modes receiving >= `min_fraction` of the samples within `num_std` std of
    their centre; `high_quality_fraction`: samples within `num_std` std of some centre."""
    samples = np.asarray(samples, np.float64)
    d = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
    nearest = np.argmin(d, axis=1)
    close = d[np.arange(len(samples)), nearest] <= num_std * std
    counts = np.bincount(nearest[close], minlength=len(centers))
    return {"modes_covered": float(np.sum(counts >= min_fraction * len(samples))),
            "high_quality_fraction": float(np.mean(close))}


def w1_report(real: np.ndarray, fake: np.ndarray, d_real: np.ndarray,
              d_fake: np.ndarray) -> dict[str, float]:
    """Exact W1 of two point sets (POT) and the critic's EM estimate on the same points."""
    return {"exact_w1": distances.w1_points(np.asarray(real, np.float64),
                                            np.asarray(fake, np.float64)),
            "critic_em_estimate": float(losses.em_distance(np.asarray(d_real, np.float64),
                                                           np.asarray(d_fake, np.float64)))}


class ToyEvaluator:
    """modes_covered, high_quality_fraction (mixtures), exact_w1 and critic_em_estimate."""

    name = "toy"

    def __init__(self, networks: Networks, dataset: str, *, every_steps: int, seed: int,
                 num_samples: int, w1_samples: int):
        self.networks, self.dataset, self.every_steps = networks, dataset, every_steps
        self.num_samples, self.w1_samples = num_samples, w1_samples
        self.mixture = registry.dataset(dataset).mixture
        self.z = fixed_latents(seed, max(num_samples, w1_samples), networks.models.latent_dim)
        key = jax.random.fold_in(jax.random.PRNGKey(seed + 1), 1)
        self.real = np.asarray(toy.sample(dataset, key, w1_samples))

    def run(self, state: TrainState) -> dict[str, float]:
        fake = self.networks.generate(state, self.z)
        out = {}
        if self.mixture is not None:
            out.update(mode_coverage(fake[:self.num_samples], self.mixture.mode_centers(),
                                     self.mixture.mode_std()))
        n = self.w1_samples
        out.update(w1_report(self.real, fake[:n], self.networks.critic(state, self.real),
                             self.networks.critic(state, fake[:n])))
        return out
