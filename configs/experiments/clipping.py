"""Weight clipping in a deep (12-layer) critic: exploding/vanishing gradients, weight histograms.

Regenerate the figures and numbers of docs/EXPERIMENTS.md section 3 with

    python -m wgan_jax.experiments.clipping --workdir /tmp/clipping

(about 2 minutes on 2 CPU cores; single fields through e.g. ``--config.steps=4000``;
``--config configs/experiments/clipping.py:tiny`` runs in seconds).

Choices, and why:
- Swiss roll with a fixed generator (fake = real + N(0, 1)) instead of a full WGAN: the
  pathologies are properties of the clipped critic, and a fixed target makes the settings
  comparable batch for batch.
- Critic: 12 hidden ReLU layers as in the paper, 128 units wide (our choice of width) so that
  all settings train in a couple of CPU minutes.
- Clipping: RMSProp at the WGAN paper's lr 5e-5 (c = 0.1, 0.01, 0.001). A control run at
  c = 0.01 starts from the initial kernels rescaled into [-c, c]: the default ("he") init is
  about +-0.15 wide, so the first clipping alone puts most weights at +-c, and the control
  shows whether training itself drives them there. In the 12-layer critic the gradients at
  c = 0.01 are too small for RMSProp to move any weight, so the same control runs once more in
  a 3-layer critic (the critic of section 2), where they do move.
- Gradient penalty: lambda = 10 and Adam(1e-4, 0.5, 0.9) as in gan_toy.py's optimizer (the
  paper's Algorithm 1 has beta1 = 0).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the experiment config; ``arg='tiny'`` shrinks it for a quick check."""
    config = ml_collections.ConfigDict()
    config.dataset = "swissroll"
    config.noise_std = 1.0  # fake = real + noise_std * N(0, I)
    config.hidden = 128
    config.depth = 12
    config.steps = 1000
    config.batch_size = 256
    config.seed = 0
    config.clip_values = (0.1, 0.01, 0.001)
    config.control_clip_value = 0.01  # None: no run from an init inside [-c, c]
    config.shallow_control_depth = 3  # the same control in a shallow critic; None: skip it
    config.include_gp = True
    config.diag_batches = 5  # batches the per-layer gradient norms are averaged over

    config.clipping = ml_collections.ConfigDict()
    config.clipping.optimizer = "rmsprop"
    config.clipping.learning_rate = 5e-5

    config.gp = ml_collections.ConfigDict()
    config.gp.optimizer = "adam"
    config.gp.learning_rate = 1e-4
    config.gp.b1 = 0.5
    config.gp.b2 = 0.9
    config.gp.gp_weight = 10.0

    config.dpi = 80

    if arg == "tiny":
        config.hidden = 8
        config.depth = 4
        config.steps = 10
        config.batch_size = 16
        config.clip_values = (0.1, 0.01)
        config.shallow_control_depth = 2
        config.diag_batches = 2
        config.dpi = 40
    elif arg not in (None, ""):
        raise ValueError(f"unknown config variant {arg!r}; expected 'tiny' or none")
    return config
