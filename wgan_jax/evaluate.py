"""Toy-data evaluators: mode coverage, sample quality and the exact W1 next to the critic's."""
from __future__ import annotations

import numpy as np

from wgan_jax import distances


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
            "critic_em_estimate": float(np.mean(d_real) - np.mean(d_fake))}
