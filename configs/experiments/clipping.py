"""Weight clipping in a deep (12-layer) critic: exploding/vanishing gradients, weight histograms.

Regenerate the figures and numbers of docs/EXPERIMENTS.md section 3 with

    python -m wgan_jax.experiments.clipping --workdir /tmp/clipping

(single fields through e.g. ``--config.num_train_steps=4000``;
``--config configs/experiments/clipping.py:tiny`` is a smoke test).

Top-level fields named like the main config's are those fields, shared by every setting; with
no generator to train, a run is ``num_train_steps`` steps of ``n_critic`` critic updates (1
here). ``method.clipping`` (its ``clip_value`` set per run from ``clip_values``) and
``method.gp`` hold each kind of critic's own main-config fields.

Choices, and why:
- Swiss roll with a fixed generator (fake = real + N(0, 1)) instead of a full WGAN: the
  pathologies are properties of the clipped critic, and a fixed target makes the settings
  comparable batch for batch.
- Critic: 12 hidden ReLU layers as in the paper, 128 units wide (our choice of width) so that
  all settings train in a couple of CPU minutes.
- Clipping: RMSProp (TF1's, eps 1e-10) at the WGAN paper's lr 5e-5 (c = 0.1, 0.01, 0.001). A
  control run at c = 0.01 starts from the initial kernels rescaled into [-c, c]: the default
  ("he") init is about +-0.15 wide, so the first clipping alone puts most weights at +-c, and
  the control shows whether training itself drives them there. In the 12-layer critic the
  gradients at c = 0.01 are too small for RMSProp to move any weight, so the same control runs
  once more in a 3-layer critic (the critic of section 2), where they do move.
- Gradient penalty: lambda = 10 and Adam(1e-4, 0.5, 0.9) as in gan_toy.py's optimizer (the
  paper's Algorithm 1 has beta1 = 0).
"""

import ml_collections

from wgan_jax.experiments.common import check_variant


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the experiment config; ``arg='tiny'`` shrinks it for a quick check."""
    check_variant(arg, ("tiny",))
    config = ml_collections.ConfigDict()
    config.dataset = "swissroll"
    config.seed = 0
    config.loss = "wasserstein"
    config.num_train_steps = 1000
    config.n_critic = 1
    config.batch_size = 256
    config.model = ml_collections.ConfigDict({"toy_hidden": 128, "toy_depth": 12})

    config.method = ml_collections.ConfigDict()
    config.method.clipping = ml_collections.ConfigDict({
        "gp_weight": 0.0, "optimizer": {"name": "rmsprop", "learning_rate": 5e-5, "eps": 1e-10}})
    config.method.gp = ml_collections.ConfigDict({
        "gp_weight": 10.0,
        "optimizer": {"name": "adam", "learning_rate": 1e-4, "b1": 0.5, "b2": 0.9}})

    config.noise_std = 1.0  # fake = real + noise_std * N(0, I)
    config.clip_values = (0.1, 0.01, 0.001)
    config.control_clip_value = 0.01  # None: no run from an init inside [-c, c]
    config.shallow_control_depth = 3  # the same control in a shallow critic; None: skip it
    config.include_gp = True
    config.diag_batches = 5  # batches the per-layer gradient norms are averaged over
    config.dpi = 80

    if arg == "tiny":
        config.model.toy_hidden = 8
        config.model.toy_depth = 4
        config.num_train_steps = 10
        config.batch_size = 16
        config.clip_values = (0.1, 0.01)
        config.shallow_control_depth = 2
        config.diag_batches = 2
        config.dpi = 40
    return config
