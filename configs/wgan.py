"""WGAN with weight clipping (Arjovsky et al. 2017) configs.

    python run.py --config=configs/wgan.py                # 25-gaussians toy
    python run.py --config=configs/wgan.py:mnist          # gan_mnist.py MODE='wgan'
    python run.py --config=configs/wgan.py:fashion_mnist
    python run.py --config=configs/wgan.py:cifar10        # gan_cifar.py MODE='wgan'
    python run.py --config=configs/wgan.py:celeba64       # the WGAN paper's DCGAN (its LSUN model)
    python run.py --config=configs/wgan.py:fashion_mnist_mlp  # the seed WGAN's MLPs
    python run.py --config=configs/wgan.py:mnist_mlp

Paper defaults (Algorithm 1): RMSProp lr 5e-5 (TF1/official: decay 0.9, mean square started at 1,
eps inside the sqrt), clip c = 0.01 applied after every critic step to every critic parameter
(batch-norm scale/offset included, as in the official code), n_critic 5, no gradient penalty.
Official architecture changes in this mode: mnist adds batch norm to G and D, cifar adds it to D.
celeba64 trains the WGAN paper's own 64x64 DCGAN (model.arch='dcgan64': the PyTorch code's 4x4
kernels, no biases, N(0, 0.02) init, latent 100, batch norm in G and in D after its first conv);
`--config.model.arch=celeba64` gives gan_64x64.py's 5x5 DCGAN with batch norm in D instead.
Batch 64 (paper) except the toy (256) and mnist (50), as the official scripts.
`critic_warmup=True` turns on the official code's schedule (100 critic iterations for the first 25
generator steps and every 500th); it is off by default because the paper does not describe it.

Variants `mnist_mlp` / `fashion_mnist_mlp`: the WGAN of the MLP tutorial the project grew from
(critic 784-128-1, generator 10-128-784 with a sigmoid, RMSProp 5e-5, c = 0.01, n_critic 5,
batch 32), `model.arch='mlp'`.

Deviation (toy): 7,000 steps so a run ends on a laptop; weight clipping does not reach the
WGAN-GP result on the toy in that budget (that is the WGAN-GP paper's point).
"""
from configs import wgan_gp


def get_config(arg: str | None = None):
    mlp = arg in ("mnist_mlp", "fashion_mnist_mlp")
    c = wgan_gp.get_config(arg.removesuffix("_mlp") if mlp else arg)
    c.gp_weight = 0.0
    c.clip_value = 0.01
    c.optimizer.name = "rmsprop"
    c.optimizer.learning_rate = 5e-5
    c.optimizer.eps = 1e-10
    c.optimizer.lr_schedule = "constant"
    c.ema_decay = 0.0
    if c.model.arch == "mnist":
        c.model.generator_norm = "batch"
        c.model.critic_norm = "batch"
    elif c.model.arch == "cifar":
        c.model.critic_norm = "batch"
    if mlp:
        c.model.arch = "mlp"
        c.model.generator_norm = c.model.critic_norm = "none"
        c.batch_size = 32
    elif c.model.arch == "celeba64":
        c.model.arch = "dcgan64"
        c.model.generator_norm = "batch"
        c.model.critic_norm = "batch"
    return c
