"""Spectral normalisation of a whole critic (Miyato et al. 2018)."""
from __future__ import annotations

import flax.linen as nn
import jax


class SpectralNormCritic(nn.Module):
    """Wraps a critic so every kernel is divided by its largest singular value (Miyato et al.).

    Kernels are reshaped to (fan_in, fan_out) matrices; one power-iteration step per call, whose
    vectors live in the 'spectral' collection and are written only when `update_stats` is True.
    Labels `y` go to the wrapped critic (a conditional critic's embedding and class head are
    normalised too, as SN-GAN's are).
    """

    critic: nn.Module
    n_steps: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, update_stats: bool = False):
        return nn.SpectralNorm(self.critic, n_steps=self.n_steps, collection_name="spectral",
                               name="sn")(x, y, update_stats=update_stats)
