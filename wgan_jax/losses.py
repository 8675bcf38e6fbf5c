"""Loss functions: WGAN critic/generator losses, the EM estimate, standard GAN baselines, the
ACGAN auxiliary classifier's cross-entropy, and `LOSSES`, the table the step reads by name.

All take critic outputs (one value per example) and return scalars.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax


def em_distance(d_real: jax.Array, d_fake: jax.Array) -> jax.Array:
    """The critic's Earth-Mover (Wasserstein-1) estimate: mean D(real) - mean D(fake).

    It approximates W1 up to the critic's Lipschitz constant (K * W1 for a K-Lipschitz critic).
    """
    return jnp.mean(d_real) - jnp.mean(d_fake)


def wgan_critic_loss(d_real: jax.Array, d_fake: jax.Array) -> jax.Array:
    """WGAN critic loss mean D(fake) - mean D(real) (= -EM estimate), without any penalty."""
    return jnp.mean(d_fake) - jnp.mean(d_real)


def wgan_generator_loss(d_fake: jax.Array) -> jax.Array:
    """WGAN generator loss -mean D(G(z)). Its value carries no meaning, only its gradient."""
    return -jnp.mean(d_fake)


def gan_critic_loss(d_real: jax.Array, d_fake: jax.Array, real_label_smoothing: float = 0.0,
                    flip_real: jax.Array | None = None,
                    flip_fake: jax.Array | None = None) -> jax.Array:
    """Standard GAN discriminator loss from logits: BCE(real, 1 - s) + BCE(fake, 0).

    `real_label_smoothing` s > 0 is one-sided label smoothing (only real targets move).
    `flip_real` / `flip_fake` (boolean, per example) swap those examples' targets: the
    "occasionally flip the labels" GAN hack.
    """
    real_t = jnp.full_like(d_real, 1.0 - real_label_smoothing)
    fake_t = jnp.zeros_like(d_fake)
    if flip_real is not None:
        real_t = jnp.where(flip_real, 0.0, real_t)
    if flip_fake is not None:
        fake_t = jnp.where(flip_fake, 1.0 - real_label_smoothing, fake_t)
    return (jnp.mean(optax.sigmoid_binary_cross_entropy(d_real, real_t))
            + jnp.mean(optax.sigmoid_binary_cross_entropy(d_fake, fake_t)))


def gan_generator_loss_minimax(d_fake: jax.Array) -> jax.Array:
    """Minimax generator loss: mean log(1 - sigmoid(D(G(z)))) (minimised; saturates early)."""
    return -jnp.mean(optax.sigmoid_binary_cross_entropy(d_fake, jnp.zeros_like(d_fake)))


def gan_generator_loss_nonsaturating(d_fake: jax.Array) -> jax.Array:
    """Non-saturating generator loss: -mean log(sigmoid(D(G(z))))."""
    return jnp.mean(optax.sigmoid_binary_cross_entropy(d_fake, jnp.ones_like(d_fake)))


def wgan_critic_loss_hacks(d_real, d_fake, real_label_smoothing=0.0, flip_real=None,
                           flip_fake=None):
    """`wgan_critic_loss` with `gan_critic_loss`'s signature (the GAN hacks do not apply)."""
    del real_label_smoothing, flip_real, flip_fake
    return wgan_critic_loss(d_real, d_fake)


@dataclasses.dataclass(frozen=True)
class Loss:
    """A critic loss and its generator loss. `critic(d_real, d_fake, real_label_smoothing,
    flip_real, flip_fake)`, `generator(d_fake)`; `label_hacks`: the loss reads the label
    smoothing and flips (the step draws the flips only then)."""

    critic: Callable[..., jax.Array]
    generator: Callable[[jax.Array], jax.Array]
    label_hacks: bool


LOSSES: dict[str, Loss] = {
    "wasserstein": Loss(wgan_critic_loss_hacks, wgan_generator_loss, False),
    "gan_minimax": Loss(gan_critic_loss, gan_generator_loss_minimax, True),
    "gan_nonsaturating": Loss(gan_critic_loss, gan_generator_loss_nonsaturating, True),
}


def classifier_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of class `logits` [B, K] against integer `labels` [B] (the
    ACGAN auxiliary loss, tf.nn.sparse_softmax_cross_entropy_with_logits averaged)."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), labels))


def classifier_accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of examples whose largest logit is their label."""
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
