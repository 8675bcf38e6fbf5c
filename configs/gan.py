"""The standard GAN (Goodfellow et al. 2014), as the WGAN-GP code's MODE='dcgan' trains it.

    python run.py --config=configs/gan.py                  # 25-gaussians toy
    python run.py --config=configs/gan.py:mnist            # gan_mnist.py MODE='dcgan'
    python run.py --config=configs/gan.py:fashion_mnist
    python run.py --config=configs/gan.py:cifar10          # gan_cifar.py MODE='dcgan'
    python run.py --config=configs/gan.py:celeba64         # gan_64x64.py MODE='dcgan'

The baseline the WGAN papers compare against: a discriminator trained with binary cross-entropy
on logits, the non-saturating generator loss (-log D(G(z)), the official code's gen_cost), one
discriminator step per generator step, Adam(2e-4, b1=0.5, b2=0.999) for both networks, no
gradient penalty and no clipping. Same networks as the WGAN-GP configs, with the official
scripts' batch norm in this mode: none on mnist, in the critic on cifar10 (G has it in every
mode there), in G and the critic on celeba64.

The logged `em_distance` is then the mean logit gap D(real) - D(fake), not an EM estimate; the
discriminator's own distance estimate is the Jensen-Shannon one, log 2 - critic_loss / 2 (exact
for the optimal discriminator).

Toy variant (default): the default toy run's schedule (3,000 steps, lr 2e-3 decaying linearly,
EMA 0.99) with the GAN loss and one discriminator step, as docs/EXPERIMENTS.md section 4 compares.
"""
from configs import wgan_gp
from wgan_jax import registry


def get_config(arg: str | None = None):
    c = wgan_gp.get_config(arg)
    c.loss = "gan_nonsaturating"
    c.gp_weight = 0.0
    c.clip_value = 0.0
    c.n_critic = 1
    if registry.dataset(c.dataset).is_toy:
        return c
    c.optimizer.learning_rate = 2e-4
    c.optimizer.b1 = 0.5
    c.optimizer.b2 = 0.999
    if c.model.arch in ("cifar", "celeba64"):
        c.model.critic_norm = "batch"
    return c
