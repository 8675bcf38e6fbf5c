"""WGAN-GP (Gulrajani et al. 2017) configs.

    python run.py --config=configs/wgan_gp.py               # 25-gaussians toy
    python run.py --config=configs/wgan_gp.py:toy_paper     # gan_toy.py exactly (100k steps)
    python run.py --config=configs/wgan_gp.py:mnist         # gan_mnist.py
    python run.py --config=configs/wgan_gp.py:fashion_mnist # gan_mnist.py on Fashion-MNIST
    python run.py --config=configs/wgan_gp.py:fashion_mnist_fast  # the same, CPU-sized
    python run.py --config=configs/wgan_gp.py:cifar10       # gan_cifar.py
    python run.py --config=configs/wgan_gp.py:celeba64      # gan_64x64.py's DCGAN on CelebA

Variants: the arg picks one of `toy` (default), `toy_paper`, `8gaussians`, `swissroll`,
`mnist`, `fashion_mnist`, `fashion_mnist_fast`, `cifar10`, `celeba64`; single fields by
`--config.field=value`.
`--config.model.arch=dcgan64` swaps celeba64's model for the WGAN paper's PyTorch DCGAN (4x4
kernels, no biases; its critic batch norm is replaced by `model.critic_norm`, 'none' here).

Data: mnist and fashion_mnist are prepared offline on the first run from their original idx files
(Debian's dataset-fashion-mnist, or `--config.source_dir=DIR`). cifar10 and celeba64 need TFDS
sets prepared once on a machine with internet (`tfds build cifar10` / `tfds build celeb_a
--data_dir DIR`; CelebA's files come from its authors' Google Drive, which TFDS fetches) and
copied over, then `--config.data_dir=DIR`; celeba64 center-crops the 178x178 square of each
218x178 image and resizes it to 64x64.

Paper/official defaults: lambda 10 (0.1 on the toy), n_critic 5, Adam(1e-4, b1=0.5, b2=0.9)
(the official DCGAN/toy scripts' beta1; the paper's Algorithm 1 says beta1=0), batch 256 toy /
50 mnist / 64 cifar and celeba64.

Deviation (variant `toy`, the default): to finish on a 2-core CPU in under 10 minutes it trains
3,000 steps at lr 2e-3 (20x the paper's) decaying linearly to 0, and samples/evaluates an EMA
(decay 0.99) of the generator weights. What it reaches, in how long, and the settings tried on
the way: docs/EXPERIMENTS.md, "The default toy run". At the paper's lr 1e-4 the toy needs far
more steps; `toy_paper` keeps the paper's values.

Variant `fashion_mnist_fast`: gan_mnist.py's WGAN-GP on Fashion-MNIST sized for a 2-core CPU
(1,500 generator steps; timings and results in docs/EXPERIMENTS.md section 8): lr 5e-4 (5x the
paper's) decaying linearly to 0 and samples from an EMA (decay 0.99) of the generator weights,
as the toy default does, because at the paper's lr 1e-4 the samples are still blurry after a
few hundred steps; batch 50 and lambda 10 as the paper.
"""
from wgan_jax import registry
from wgan_jax.config import base_config

# variant: (dataset, model.arch, model.generator_norm, batch_size) of the official scripts;
# gan_cifar.py and gan_64x64.py use batch norm in G in every mode, gan_mnist.py only in WGAN mode.
IMAGE_VARIANTS = {
    "mnist": ("mnist", "mnist", "none", 50),
    "fashion_mnist": ("fashion_mnist", "mnist", "none", 50),
    "cifar10": ("cifar10", "cifar", "batch", 64),
    "celeba64": ("celeba64", "celeba64", "batch", 64),
    "fashion_mnist_fast": ("fashion_mnist", "mnist", "none", 50),
}


def get_config(arg: str | None = None):
    c = base_config()
    variant = arg or "toy"
    if variant in ("toy", "8gaussians", "swissroll"):
        c.dataset = "25gaussians" if variant == "toy" else variant
        c.num_train_steps = 3000
        c.optimizer.learning_rate = 2e-3
        c.optimizer.lr_schedule = "linear"
        c.ema_decay = 0.99
    elif variant == "toy_paper":
        c.num_train_steps = 100_000
        c.eval.toy.every_steps = c.eval.samples.every_steps = c.checkpoint_every_steps = 5000
    elif variant in IMAGE_VARIANTS:
        c.dataset, c.model.arch, c.model.generator_norm, c.batch_size = IMAGE_VARIANTS[variant]
        c.gp_weight = 10.0
        c.evals = ("samples",)
        if registry.dataset(c.dataset).classifier:
            # The offline classifier's distance, at a cadence costing a few % of training
            # (docs/EXPERIMENTS.md, "Evaluator costs").
            c.evals = ("samples", "classifier")
            c.eval.classifier.every_steps = 5000
        c.num_train_steps = 200_000  # the official scripts' ITERS
        c.log_every_steps = 100
        c.eval.samples.every_steps = 1000
        c.checkpoint_every_steps = 5000
        if variant == "fashion_mnist_fast":
            c.num_train_steps = 1500
            c.optimizer.learning_rate = 5e-4
            c.optimizer.lr_schedule = "linear"
            c.ema_decay = 0.99
            c.log_every_steps = 10
            c.eval.samples.every_steps = c.eval.classifier.every_steps = 250
            c.checkpoint_every_steps = 250
    else:
        raise ValueError(f"unknown variant {variant!r} of configs/wgan_gp.py; choose toy, "
                         "toy_paper, 8gaussians, swissroll, mnist, fashion_mnist, "
                         "fashion_mnist_fast, cifar10, celeba64")
    return c
