"""Distances between distributions: the parallel-lines example and the dirt piles.

Regenerate the figures and numbers of docs/EXPERIMENTS.md section 1 with

    python -m wgan_jax.experiments.distances_demo --workdir /tmp/dist

(single fields through e.g. ``--config.empirical_n=500``; the ``tiny`` variant,
``--config configs/experiments/distances.py:tiny``, runs in a second or two).
"""

import ml_collections

from wgan_jax.experiments.common import check_variant


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the experiment config; ``arg='tiny'`` shrinks it for a quick check."""
    check_variant(arg, ("tiny",))
    config = ml_collections.ConfigDict()
    # Closed-form curves: theta on a dense grid; odd num_thetas keeps theta = 0 on it.
    config.theta_min = -1.0
    config.theta_max = 1.0
    config.num_thetas = 201
    # Empirical check of the closed forms at a few thetas.
    config.empirical_thetas = (-1.0, -0.5, -0.1, 0.0, 0.1, 0.5, 1.0)
    config.empirical_n = 2000
    config.bin_width = 0.05
    config.y_bins = 10
    config.seed = 0

    if arg == "tiny":
        config.num_thetas = 21
        config.empirical_thetas = (-0.5, 0.0, 0.5)
        config.empirical_n = 200
    return config
