"""Spectrally normalized critic (Miyato et al. 2018) on the 25-gaussians toy.

    python run.py --config=configs/spectral.py            # WGAN loss + spectral norm, no GP
    python run.py --config=configs/spectral.py:wgan_gp    # WGAN loss + spectral norm + GP
    python run.py --config=configs/spectral.py:gan        # standard (non-saturating) GAN + SN

Every critic kernel is divided by its largest singular value, estimated by one power-iteration
step per critic update (the vectors live in the train state's critic variables, collection
'spectral', and are updated in critic steps only). That makes each layer 1-Lipschitz, so the
critic is 1-Lipschitz without clipping. Optimizer: Adam(1e-3 decaying linearly to 0,
b1=0.5, b2=0.9), as the default toy config (Miyato et al. use Adam(2e-4, 0.5, 0.999) on images);
n_critic 5 for the WGAN losses, 1 for the standard GAN loss (SN-GAN's CIFAR setting uses 5 too).
"""
from configs import wgan_gp


def get_config(arg: str | None = None):
    c = wgan_gp.get_config("toy")
    c.model.critic_norm = "spectral"
    variant = arg or "wgan"
    if variant == "wgan":
        c.gp_weight = 0.0
    elif variant == "wgan_gp":
        pass  # keeps the toy's lambda = 0.1
    elif variant == "gan":
        c.loss = "gan_nonsaturating"
        c.gp_weight = 0.0
        c.n_critic = 1
    else:
        raise ValueError(f"unknown variant {variant!r} of configs/spectral.py; choose wgan, "
                         "wgan_gp or gan")
    return c
