"""Latent interpolation: great circle (slerp) vs straight line (docs/EXPERIMENTS.md section 6).

Regenerate the figures and numbers with

    python -m wgan_jax.experiments.interpolation --workdir /tmp/interp

(about 75 s on 2 CPU cores: a short WGAN-GP run on 8gaussians, then the paths). To draw
the paths of a generator trained by run.py instead, point at its workdir:

    python -m wgan_jax.experiments.interpolation --workdir /tmp/interp \\
        --config.workdir_to_load=runs/my_toy_run

(the arch in that run's config.json decides: a toy generator gets the data-space paths, an
image generator the interpolation strips). The ``tiny`` variant,
``--config configs/experiments/interpolation.py:tiny``, runs in seconds.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the experiment config; ``arg='tiny'`` shrinks it to a smoke test."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.workdir_to_load = ""  # a run.py workdir; empty: train the toy generator below
    # The toy generator trained here: WGAN-GP settings of configs/wgan_gp.py's fast toy variant.
    c.dataset = "8gaussians"
    c.num_steps = 1500
    c.batch_size = 256
    c.toy_hidden = 128
    c.toy_depth = 3
    c.train = ml_collections.ConfigDict()
    c.train.loss = "wasserstein"
    c.train.optimizer = "adam"
    c.train.learning_rate = 1e-3
    c.train.lr_schedule = "linear"
    c.train.b1, c.train.b2, c.train.eps = 0.5, 0.9, 1e-8
    c.train.n_critic = 5
    c.train.gp_weight = 0.1
    c.train.clip_value = 0.0
    c.train.real_label_smoothing = 0.0
    c.train.label_flip_prob = 0.0

    c.num_pairs_drawn = 4  # pairs drawn as paths in the toy figure
    c.min_drawn_angle_deg = 120.0  # drawn pairs only: close pairs look the same either way
    c.num_pairs_stats = 1000  # pairs behind the numbers
    c.path_points = 33  # points per path, endpoints included
    c.norm_dims = (2, 16, 128)  # latent sizes of the norm-along-path comparison
    c.image_strip = True  # also draw strips through the (untrained) mnist DCGAN generator
    c.strip_pairs = 2
    c.strip_points = 9

    if arg == "tiny":
        c.num_steps = 10
        c.batch_size = 32
        c.toy_hidden = 16
        c.num_pairs_stats = 50
        c.path_points = 9
        c.image_strip = False
    elif arg not in (None, ""):
        raise ValueError(f"unknown config variant {arg!r}; expected 'tiny' or none")
    return c
