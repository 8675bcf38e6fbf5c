"""GAN vs WGAN vs WGAN-GP on the 8- and 25-gaussians toys (docs/EXPERIMENTS.md section 4).

Regenerate the figures, table and numbers with

    python -m wgan_jax.experiments.compare_losses --workdir /tmp/compare

(the ``tiny`` variant, ``--config configs/experiments/compare_losses.py:tiny``, is a smoke test;
single fields through e.g. ``--config.num_train_steps=4000`` or
``--config.method.wgan.optimizer.learning_rate=5e-5``).

Top-level fields named like the main config's (``seed``, ``num_train_steps``, ``batch_size``,
``model.*``) are those fields, shared by every method; ``method.<name>`` holds one method's own
main-config fields (and its ``label``); the rest are this experiment's.

Every method trains the same MLPs (gan_toy.py's ReLU MLPs, narrower) for the same number of
generator steps, all seeds at once (vmapped), from the same initial weights per seed.

Deviations from the papers, to fit a 2-core CPU: width 128 instead of 512, batch 128 instead
of 256, 2,000 generator steps instead of 100k, and learning rates 10x the papers' (WGAN-GP
1e-4 -> 1e-3, WGAN 5e-5 -> 5e-4) decaying linearly to 0. The standard GAN uses the same Adam
settings as WGAN-GP, so only the loss and the critic schedule differ between those two: one
discriminator step per generator step (the usual 1:1 schedule; the critics of both WGANs take 5).
"""

import ml_collections

from wgan_jax.experiments.common import check_variant

METHODS = ("gan", "gan_hacks", "wgan", "wgan_gp")


def _method(label, loss, optimizer, learning_rate, n_critic, *, gp_weight=0.0, clip_value=0.0,
            real_label_smoothing=0.0, label_flip_prob=0.0, eps=1e-8):
    """One method: main-config fields (every one that tells the methods apart) and a label."""
    return ml_collections.ConfigDict({
        "label": label, "loss": loss, "n_critic": n_critic, "gp_weight": gp_weight,
        "clip_value": clip_value,  # 0: no weight clipping
        "real_label_smoothing": real_label_smoothing, "label_flip_prob": label_flip_prob,
        "optimizer": {"name": optimizer, "learning_rate": learning_rate, "lr_schedule": "linear",
                      "b1": 0.5, "b2": 0.9, "eps": eps}})


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the experiment config; ``arg='tiny'`` shrinks it to a smoke test."""
    check_variant(arg, ("tiny",))
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_train_steps = 2000  # generator steps, the same for every method
    c.batch_size = 128
    c.model = ml_collections.ConfigDict({"toy_hidden": 128, "toy_depth": 3})

    c.methods = METHODS
    c.method = ml_collections.ConfigDict()
    c.method.gan = _method("GAN", "gan_nonsaturating", "adam", 1e-3, 1)
    c.method.gan_hacks = _method("GAN + hacks", "gan_nonsaturating", "adam", 1e-3, 1,
                                 real_label_smoothing=0.1, label_flip_prob=0.05)
    # TF1 RMSProp as configs/wgan.py (eps 1e-10); clip c = 0.01 as the paper.
    c.method.wgan = _method("WGAN (clip)", "wasserstein", "rmsprop", 5e-4, 5, clip_value=0.01,
                            eps=1e-10)
    c.method.wgan_gp = _method("WGAN-GP", "wasserstein", "adam", 1e-3, 5, gp_weight=0.1)

    c.datasets = ("8gaussians", "25gaussians")
    c.num_seeds = 3
    c.eval_every = 100  # generator steps between two points of the curves
    c.w1_samples = 1000  # generated and real points for the exact W1 along the curve
    c.coverage_samples = 2500  # generated points for the final mode coverage
    c.threads = 2  # (dataset, method) runs trained at once

    if arg == "tiny":
        c.datasets = ("8gaussians",)
        c.num_seeds = 2
        c.num_train_steps = 20
        c.eval_every = 5
        c.batch_size = 32
        c.model.toy_hidden = 16
        c.w1_samples = 100
        c.coverage_samples = 200
    return c
