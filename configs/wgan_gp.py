"""WGAN-GP (Gulrajani et al. 2017) configs.

    python run.py --config=configs/wgan_gp.py               # 25-gaussians toy
    python run.py --config=configs/wgan_gp.py:toy_paper     # gan_toy.py exactly (100k steps)
    python run.py --config=configs/wgan_gp.py:mnist         # gan_mnist.py
    python run.py --config=configs/wgan_gp.py:fashion_mnist # gan_mnist.py on Fashion-MNIST
    python run.py --config=configs/wgan_gp.py:fashion_mnist_fast  # the same, CPU-sized
    python run.py --config=configs/wgan_gp.py:cifar10       # gan_cifar.py
    python run.py --config=configs/wgan_gp.py:celeba64      # gan_64x64.py's DCGAN on CelebA
    python run.py --config=configs/wgan_gp.py:cifar10_resnet   # gan_cifar_resnet.py
    python run.py --config=configs/wgan_gp.py:celeba64_resnet  # gan_64x64.py's ResNet, CelebA
    python run.py --config=configs/wgan_gp.py:fashion_mnist32_resnet  # resnet32, CPU-sized
    python run.py --config=configs/wgan_gp.py:fashion_mnist_fast_acgan       # conditional
    python run.py --config=configs/wgan_gp.py:fashion_mnist_fast_projection  # conditional

Variants: the arg picks one of `toy` (default), `toy_paper`, `8gaussians`, `swissroll`,
`mnist`, `fashion_mnist`, `fashion_mnist_fast`, `cifar10`, `celeba64`, `cifar10_resnet`,
`celeba64_resnet`, `fashion_mnist32_resnet`, `fashion_mnist_fast_acgan`,
`fashion_mnist_fast_projection`; single fields by `--config.field=value`.
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

Variants `fashion_mnist_fast_acgan` and `fashion_mnist_fast_projection`: `fashion_mnist_fast`
made class-conditional (`config.conditioning`). The DCGAN generator has no batch norm, so it
reads a learned label embedding concatenated to z; the critic adds an ACGAN class head (loss
weights 1.0 critic / 0.1 generator, gan_cifar_resnet.py's) or the projection term <embed(y),
features> on the features its output layer reads. The offline classifier evaluates samples
(frechet_classifier_distance, conditional_accuracy) every 500 steps on 10,000 samples.

Variant `cifar10_resnet`: gan_cifar_resnet.py's settings: resnet32 (DIM 128, batch norm in G,
no normalisation in the critic), Adam(2e-4, b1=0, b2=0.9) with the learning rate decaying
linearly to 0 over the 100k generator steps, n_critic 5, lambda 10, critic batch 64, generator
batch 128, reals dequantised with U(0, 1/128) noise. Where it differs: the official script
maps a byte q to 2 * (q/256 - 0.5) + U(0, 1/128) (so reals lie in [-1, 1)); the pipeline maps
it to q/127.5 - 1 and `dequantize` rescales that to the official value before adding the noise,
so the values match. The official script's default is the conditional ACGAN model (Inception
Score 8.42 in the paper); this variant is the unconditional one (7.86) and
`--config.conditioning=acgan` gives the conditional one. In critic iterations the official code
generates the fakes for the real batch's labels, as the step here does. The Inception Score is
computed by the `inception` evaluator (pytorch-fid's weights), not the TF1 graph of the paper.

Variant `celeba64_resnet`: gan_64x64.py's WGAN-GP mode with GoodGenerator/GoodDiscriminator
(resnet64, dim 64, batch norm in G, layer norm in the critic), Adam(1e-4, b1=0, b2=0.9) constant,
n_critic 5, lambda 10, batch 64, 200k generator steps, reals 2 * (q/255 - 0.5) (no dequantising).
It differs in the data: the official script trains on 64x64 ImageNet, this config on CelebA's
central 178x178 square resized to 64x64.

Variant `fashion_mnist32_resnet`: resnet32 on Fashion-MNIST padded to 32x32 (one channel, in
[-1, 1]), sized for a 2-core CPU: what was shrunk is the width (DIM 32 instead of 128, about
1/16 of the FLOPs), the length (3,000 generator steps), the batch (32 for both networks) and
the learning-rate schedule (2e-4 decaying to 0 over those steps); the generator is sampled from
an EMA (decay 0.99). Its step runs at 0.33 generator iterations/s on a 2-core AMD Zen 1 VM
(float32; `benchmarks/step_throughput.py --arch resnet32 --mode gp --width 32 --batch 32`), so
the 3,000 steps take about 2.5 hours there. float32, because this project's CPU benchmarks
found bfloat16 slower on CPUs without bf16 instructions (`--config.compute_dtype=bfloat16`
where they have them).
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
    "fashion_mnist_fast_acgan": ("fashion_mnist", "mnist", "none", 50),
    "fashion_mnist_fast_projection": ("fashion_mnist", "mnist", "none", 50),
    "cifar10_resnet": ("cifar10", "resnet32", "batch", 64),
    "celeba64_resnet": ("celeba64", "resnet64", "batch", 64),
    "fashion_mnist32_resnet": ("fashion_mnist32", "resnet32", "batch", 32),
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
            # (README, "Image quality": ~23 s per evaluation on 2 cores).
            c.evals = ("samples", "classifier")
            c.eval.classifier.every_steps = 5000
        c.num_train_steps = 200_000  # the official scripts' ITERS
        c.log_every_steps = 100
        c.eval.samples.every_steps = 1000
        c.checkpoint_every_steps = 5000
        if variant.startswith("fashion_mnist_fast"):
            c.num_train_steps = 1500
            c.optimizer.learning_rate = 5e-4
            c.optimizer.lr_schedule = "linear"
            c.ema_decay = 0.99
            c.log_every_steps = 10
            c.eval.samples.every_steps = c.eval.classifier.every_steps = 250
            c.checkpoint_every_steps = 250
        if variant.startswith("fashion_mnist_fast_"):
            c.conditioning = variant.rsplit("_", 1)[1]
            c.evals = ("samples", "classifier")
            c.eval.classifier.every_steps = 500
            c.eval.classifier.num_samples = 10_000
        if variant.endswith("_resnet"):
            c.optimizer.b1 = 0.0
        if variant == "cifar10_resnet":
            c.num_train_steps = 100_000
            c.optimizer.learning_rate = 2e-4
            c.optimizer.lr_schedule = "linear"
            c.generator_batch_size = 128
            c.dequantize = 1.0 / 128
        elif variant == "celeba64_resnet":
            c.model.critic_norm = "layer"
        elif variant == "fashion_mnist32_resnet":
            c.model.width = 32
            c.num_train_steps = 3000
            c.optimizer.learning_rate = 2e-4
            c.optimizer.lr_schedule = "linear"
            c.ema_decay = 0.99
            c.log_every_steps = 10
            c.eval.samples.every_steps = c.checkpoint_every_steps = 250
    else:
        raise ValueError(f"unknown variant {variant!r} of configs/wgan_gp.py; choose toy, "
                         "toy_paper, 8gaussians, swissroll, mnist, fashion_mnist, "
                         "fashion_mnist_fast, cifar10, celeba64, cifar10_resnet, celeba64_resnet, "
                         "fashion_mnist32_resnet, fashion_mnist_fast_acgan, "
                         "fashion_mnist_fast_projection")
    return c
