"""Latent interpolation: great circle (slerp) vs straight line (docs/EXPERIMENTS.md section 6).

Regenerate the figures and numbers with

    python -m wgan_jax.experiments.interpolation --workdir /tmp/interp

(a short WGAN-GP run on 8gaussians, then the paths). To draw the paths of a generator trained
by run.py instead, point at its workdir:

    python -m wgan_jax.experiments.interpolation --workdir /tmp/interp \\
        --config.workdir_to_load=runs/my_toy_run

(the arch in that run's config.json decides: a toy generator gets the data-space paths, an
image generator the interpolation strips). The ``tiny`` variant,
``--config configs/experiments/interpolation.py:tiny``, is a smoke test.

The fields named like the main config's (``seed``, ``dataset``, ``num_train_steps``,
``batch_size``, ``loss``, ``n_critic``, ``gp_weight``, ``model.*``, ``optimizer.*``) are those
fields: the run that trains the toy generator here (e.g. ``--config.num_train_steps=3000``,
``--config.optimizer.learning_rate=5e-4``). The rest are this experiment's.
"""

import ml_collections

from wgan_jax.experiments.common import check_variant


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the experiment config; ``arg='tiny'`` shrinks it to a smoke test."""
    check_variant(arg, ("tiny",))
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.workdir_to_load = ""  # a run.py workdir; empty: train the toy generator below
    # The toy generator trained here: WGAN-GP settings of configs/wgan_gp.py's fast toy variant.
    c.dataset = "8gaussians"
    c.num_train_steps = 1500
    c.batch_size = 256
    c.model = ml_collections.ConfigDict({"toy_hidden": 128, "toy_depth": 3})
    c.loss = "wasserstein"
    c.n_critic = 5
    c.gp_weight = 0.1
    c.clip_value = 0.0
    c.real_label_smoothing = 0.0
    c.label_flip_prob = 0.0
    c.optimizer = ml_collections.ConfigDict({
        "name": "adam", "learning_rate": 1e-3, "lr_schedule": "linear", "b1": 0.5, "b2": 0.9,
        "eps": 1e-8})

    c.num_pairs_drawn = 4  # pairs drawn as paths in the toy figure
    c.min_drawn_angle_deg = 120.0  # drawn pairs only: close pairs look the same either way
    c.num_pairs_stats = 1000  # pairs behind the numbers
    c.path_points = 33  # points per path, endpoints included
    c.norm_dims = (2, 16, 128)  # latent sizes of the norm-along-path comparison
    c.image_strip = True  # also draw strips through the (untrained) mnist DCGAN generator
    c.strip_pairs = 2
    c.strip_points = 9

    if arg == "tiny":
        c.num_train_steps = 10
        c.batch_size = 32
        c.model.toy_hidden = 16
        c.num_pairs_stats = 50
        c.path_points = 9
        c.image_strip = False
    return c
