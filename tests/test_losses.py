"""Tests of wgan_jax.losses against hand-computed values."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import losses

D_REAL = jnp.array([1.0, 2.0, 3.0])
D_FAKE = jnp.array([0.0, -1.0])


def _sig(t):
    return 1.0 / (1.0 + math.exp(-t))


def _bce(logit, target):
    """-t log sigmoid(l) - (1 - t) log(1 - sigmoid(l)), written out by hand."""
    p = _sig(logit)
    return -target * math.log(p) - (1.0 - target) * math.log(1.0 - p)


# ---------------------------------------------------------------- Wasserstein losses


def test_em_distance_hand_value():
    # mean(1, 2, 3) = 2, mean(0, -1) = -0.5
    assert float(losses.em_distance(D_REAL, D_FAKE)) == pytest.approx(2.5, abs=1e-7)


def test_em_distance_is_not_symmetric():
    assert float(losses.em_distance(D_FAKE, D_REAL)) == pytest.approx(-2.5, abs=1e-7)


def test_wgan_critic_loss_is_minus_em():
    assert float(losses.wgan_critic_loss(D_REAL, D_FAKE)) == pytest.approx(-2.5, abs=1e-7)


def test_wgan_generator_loss_hand_value():
    assert float(losses.wgan_generator_loss(D_FAKE)) == pytest.approx(0.5, abs=1e-7)
    assert float(losses.wgan_generator_loss(D_REAL)) == pytest.approx(-2.0, abs=1e-7)


def test_wgan_losses_use_means_not_sums():
    # Different batch sizes: a sum-based implementation would give 6 - (-1) = 7.
    d_real = jnp.array([1.0, 2.0, 3.0, 4.0])
    d_fake = jnp.array([-1.0])
    assert float(losses.em_distance(d_real, d_fake)) == pytest.approx(3.5, abs=1e-7)


# ---------------------------------------------------------------- standard GAN losses

GR = [0.5, -1.0, 2.0]
GF = [2.0, -0.3]


def test_gan_critic_loss_hand_logs():
    want = (sum(-math.log(_sig(t)) for t in GR) / 3
            + sum(-math.log(1.0 - _sig(t)) for t in GF) / 2)
    got = losses.gan_critic_loss(jnp.array(GR), jnp.array(GF))
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_gan_critic_loss_one_sided_label_smoothing():
    s = 0.1
    want = (sum(_bce(t, 1.0 - s) for t in GR) / 3 + sum(_bce(t, 0.0) for t in GF) / 2)
    got = losses.gan_critic_loss(jnp.array(GR), jnp.array(GF), real_label_smoothing=s)
    assert float(got) == pytest.approx(want, rel=1e-6)
    # Smoothing only moves real targets: the fake part is unchanged.
    fake_only = sum(_bce(t, 0.0) for t in GF) / 2
    real_part = float(got) - fake_only
    assert real_part == pytest.approx(sum(_bce(t, 0.9) for t in GR) / 3, rel=1e-6)


def test_gan_critic_loss_label_flips_swap_targets():
    flip_real = jnp.array([False, True, False])
    flip_fake = jnp.array([True, False])
    want = ((_bce(GR[0], 1.0) + _bce(GR[1], 0.0) + _bce(GR[2], 1.0)) / 3
            + (_bce(GF[0], 1.0) + _bce(GF[1], 0.0)) / 2)
    got = losses.gan_critic_loss(jnp.array(GR), jnp.array(GF), 0.0, flip_real, flip_fake)
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_gan_critic_loss_flips_with_smoothing():
    s = 0.2
    flip_real = jnp.array([True, True, False])
    flip_fake = jnp.array([True, True])
    # flipped real -> target 0, flipped fake -> the (smoothed) real target 1 - s
    want = ((_bce(GR[0], 0.0) + _bce(GR[1], 0.0) + _bce(GR[2], 1.0 - s)) / 3
            + (_bce(GF[0], 1.0 - s) + _bce(GF[1], 1.0 - s)) / 2)
    got = losses.gan_critic_loss(jnp.array(GR), jnp.array(GF), s, flip_real, flip_fake)
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_gan_critic_loss_flipping_everything_swaps_roles():
    # With every label flipped, reals are scored as fakes and vice versa.
    r, f = jnp.array(GR), jnp.array(GF)
    flipped = losses.gan_critic_loss(r, f, 0.0, jnp.ones(3, bool), jnp.ones(2, bool))
    want = (sum(_bce(t, 0.0) for t in GR) / 3 + sum(_bce(t, 1.0) for t in GF) / 2)
    assert float(flipped) == pytest.approx(want, rel=1e-6)
    assert abs(float(flipped) - float(losses.gan_critic_loss(r, f))) > 0.1


def test_gan_generator_loss_minimax_hand_logs():
    want = sum(math.log(1.0 - _sig(t)) for t in GF) / 2
    got = losses.gan_generator_loss_minimax(jnp.array(GF))
    assert float(got) == pytest.approx(want, rel=1e-6)
    assert want < 0


def test_gan_generator_loss_nonsaturating_hand_logs():
    want = -sum(math.log(_sig(t)) for t in GF) / 2
    got = losses.gan_generator_loss_nonsaturating(jnp.array(GF))
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_gan_losses_are_stable_for_large_logits():
    # log(sigmoid(-100)) = -100 - log(1 + e^-100) ~ -100; a naive log(sigmoid) gives -inf.
    big = jnp.array([-100.0])
    assert float(losses.gan_generator_loss_nonsaturating(big)) == pytest.approx(100.0, rel=1e-6)
    assert float(losses.gan_generator_loss_minimax(-big)) == pytest.approx(-100.0, rel=1e-6)
    assert np.isfinite(float(losses.gan_critic_loss(-big, big)))
