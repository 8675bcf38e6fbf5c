"""Critic value surfaces against a fixed generator (fake = real + N(0, 1)).

Regenerate the figure and numbers of docs/EXPERIMENTS.md section 2 with

    python -m wgan_jax.experiments.critic_surfaces --workdir /tmp/surfaces

(single fields through e.g. ``--config.seed=1`` or ``--config.model.toy_hidden=512`` for
gan_toy.py's width; ``--config configs/experiments/critic_surfaces.py:short`` trains half as
long, and ``...:tiny`` is a smoke test).

Top-level fields named like the main config's are those fields, shared by every critic; with no
generator to train, a run is ``num_train_steps`` steps of ``n_critic`` critic updates (1 here),
so ``num_train_steps`` counts critic updates. ``method.<name>`` holds one critic's own
main-config fields (and its ``label``).

Choices, and why:
- Critic: gan_toy.py's MLP (3 ReLU layers) but 128 units wide instead of 512, so that 8000
  steps of the three critics on all three datasets fit in a few CPU minutes.
- Weight clipping: c = 0.01 as in the WGAN paper, but RMSProp (TF1's, eps 1e-10) at lr 1e-3
  instead of 5e-5: at 5e-5 the clipped critic was still improving after 4000 steps
  (8gaussians: EM estimate 3e-4 and rising, against 2.2e-3 and flat at 1e-3). Clipping bounds
  the function class either way, which is what the experiment is about.
- Gradient penalty: lambda = 10 (the paper's default), not gan_toy.py's 0.1. With a soft
  penalty the critic's slope settles near 1 + W1 / (2 lambda) (maximise s * W1 - lambda *
  (s - 1)^2 over the slope s), so lambda = 0.1 inflates the estimate several-fold (measured:
  5.1 x W1 on the Swiss roll, mean input-gradient norm 5.5); lambda = 10 leaves about 5%.
  Adam(3e-3, 0.5, 0.9) with linear decay to 0: the paper's 1e-4 is far from converged after
  4000 steps, and the decay removes most of the batch noise from the final critic.
- 8000 steps: at 4000 the GP estimate landed within 10% of W1 in 11 of 12 runs (3 datasets x
  4 seeds; 8gaussians at seed 0 was 17% under); at 8000 all three datasets are within 10%.
- Spectral norm (docs/EXPERIMENTS.md section 5): every kernel divided by its largest singular
  value (one power iteration per step), WGAN loss only, with GP's optimizer and schedule. The
  product of the layers' norms bounds the critic's slope by 1, usually loosely.
"""

import ml_collections

from wgan_jax.experiments.common import check_variant


def _adam_linear_decay() -> dict:
    """Adam(3e-3, 0.5, 0.9) decaying linearly to 0: the GP and spectral-norm critics' optimizer."""
    return {"name": "adam", "learning_rate": 3e-3, "b1": 0.5, "b2": 0.9, "lr_schedule": "linear"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the experiment config; ``arg`` picks a variant: 'tiny' or 'short'."""
    check_variant(arg, ("tiny", "short"))
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.loss = "wasserstein"
    config.num_train_steps = 8000
    config.n_critic = 1
    config.batch_size = 256
    config.model = ml_collections.ConfigDict({"toy_hidden": 128, "toy_depth": 3})

    config.methods = ("clipping", "gp", "spectral")
    config.method = ml_collections.ConfigDict()
    config.method.clipping = ml_collections.ConfigDict({
        "label": "weight clipping", "gp_weight": 0.0, "clip_value": 0.01,
        "optimizer": {"name": "rmsprop", "learning_rate": 1e-3, "eps": 1e-10}})
    config.method.gp = ml_collections.ConfigDict({
        "label": "gradient penalty", "gp_weight": 10.0, "optimizer": _adam_linear_decay()})
    # Spectral norm: the WGAN loss alone (no penalty, no clipping), GP's optimizer and schedule.
    config.method.spectral = ml_collections.ConfigDict({
        "label": "spectral norm", "gp_weight": 0.0, "model": {"critic_norm": "spectral"},
        "optimizer": _adam_linear_decay()})

    config.datasets = ("8gaussians", "25gaussians", "swissroll")
    config.noise_std = 1.0  # fake = real + noise_std * N(0, I)
    config.eval_points = 2000  # fresh real and fake points for the estimate and exact W1

    # The picture: critic values on a grid_size x grid_size grid over [-grid_range, grid_range]^2.
    config.grid_size = 128
    config.grid_range = 3.0
    config.plot_points = 500
    config.dpi = 80

    if arg == "tiny":
        config.model.toy_hidden = 16
        config.num_train_steps = 20
        config.batch_size = 32
        config.eval_points = 100
        config.grid_size = 16
        config.plot_points = 50
        config.dpi = 40
    elif arg == "short":
        config.num_train_steps = 4000
    return config
