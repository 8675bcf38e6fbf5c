"""Toy-data evaluation: mode coverage, sample quality, the exact W1 with its sampling floor next
to the critic's estimate."""
from __future__ import annotations

import jax
import ml_collections
import numpy as np

from wgan_jax import distances, losses, registry
from wgan_jax.data import toy
from wgan_jax.evaluators.base import Networks, fixed_latents
from wgan_jax.evaluators.spec import EvaluatorSpec, check_positive_ints
from wgan_jax.state import TrainState

NEAR_MODE_STD = 3.0  # a sample is "high quality" within this many mode std of a centre
FLOOR_KEY = 0xF100  # the two real draws behind exact_w1_floor


def near_mode(points: np.ndarray, centers: np.ndarray, std: float,
              num_std: float = NEAR_MODE_STD) -> np.ndarray:
    """Whether each point of `points` [..., 2] lies within `num_std` std of some centre."""
    d = np.linalg.norm(np.asarray(points, np.float64)[..., None, :] - centers, axis=-1)
    return d.min(axis=-1) <= num_std * std


def mode_coverage(samples: np.ndarray, centers: np.ndarray, std: float,
                  num_std: float = NEAR_MODE_STD, min_fraction: float = 0.01) -> dict[str, float]:
    """`modes_covered`: modes receiving >= `min_fraction` of the samples within `num_std` std of
    their centre; `high_quality_fraction`: samples within `num_std` std of some centre."""
    samples = np.asarray(samples, np.float64)
    d = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
    nearest = np.argmin(d, axis=1)
    close = near_mode(samples, centers, std, num_std)
    counts = np.bincount(nearest[close], minlength=len(centers))
    return {"modes_covered": float(np.sum(counts >= min_fraction * len(samples))),
            "high_quality_fraction": float(np.mean(close))}


def w1_report(real: np.ndarray, fake: np.ndarray, d_real: np.ndarray,
              d_fake: np.ndarray) -> dict[str, float]:
    """Exact W1 of two point sets (POT), and the critic's EM estimate on the same points
    (`em_distance_heldout`: toy reals are fresh draws, never seen in training)."""
    return {"exact_w1": distances.w1_points(np.asarray(real, np.float64),
                                            np.asarray(fake, np.float64)),
            "em_distance_heldout": float(losses.em_distance(np.asarray(d_real, np.float64),
                                                            np.asarray(d_fake, np.float64)))}


def real_w1_floor(dataset: str, n: int, seed: int) -> float:
    """Exact W1 between two independent `n`-point draws of the real data: what a perfect
    generator scores on `exact_w1` at that size (sampling noise, not a modelling error)."""
    k0, k1 = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), FLOOR_KEY))
    return distances.w1_points(np.asarray(toy.sample(dataset, k0, n), np.float64),
                               np.asarray(toy.sample(dataset, k1, n), np.float64))


class ToyEvaluator:
    """modes_covered, high_quality_fraction (mixtures), exact_w1 with exact_w1_floor, and
    em_distance_heldout."""

    name = "toy"

    def __init__(self, networks: Networks, dataset: str, *, every_steps: int, seed: int,
                 num_samples: int, w1_samples: int):
        self.networks, self.dataset, self.every_steps = networks, dataset, every_steps
        self.num_samples, self.w1_samples = num_samples, w1_samples
        self.mixture = registry.dataset(dataset).mixture
        self.z = fixed_latents(seed, max(num_samples, w1_samples), networks.models.latent_dim)
        key = jax.random.fold_in(jax.random.PRNGKey(seed + 1), 1)
        self.real = np.asarray(toy.sample(dataset, key, w1_samples))
        self.floor = real_w1_floor(dataset, w1_samples, seed)

    def run(self, state: TrainState) -> dict[str, float]:
        fake = self.networks.generate(state, self.z)
        out = {}
        if self.mixture is not None:
            out.update(mode_coverage(fake[:self.num_samples], self.mixture.mode_centers(),
                                     self.mixture.mode_std()))
        n = self.w1_samples
        out.update(w1_report(self.real, fake[:n], self.networks.critic(state, self.real),
                             self.networks.critic(state, fake[:n])))
        out["exact_w1_floor"] = self.floor
        return out


def _defaults() -> ml_collections.ConfigDict:
    b = ml_collections.ConfigDict()
    b.every_steps = 1000
    b.num_samples = 2500  # generated points for modes_covered / high_quality_fraction
    # Real and generated points for exact_w1 (and its floor): ~2 s of POT each on one core;
    # the floor at 2000 points is ~0.06 on 25gaussians (~0.04 at 4000 for ~10 s).
    b.w1_samples = 2000
    return b


def _validate(block, config, fail, active) -> None:
    del config, active
    check_positive_ints(block, "eval.toy", fail, "every_steps", "num_samples", "w1_samples")


def _build(config, method, networks) -> ToyEvaluator:
    b = config.eval.toy
    return ToyEvaluator(networks, method.dataset, every_steps=b.every_steps, seed=config.seed,
                        num_samples=b.num_samples, w1_samples=b.w1_samples)


SPEC = EvaluatorSpec(needs="toy", defaults=_defaults, build=_build, validate=_validate)
