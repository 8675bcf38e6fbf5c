"""Toy 2-D distributions of the WGAN-GP paper (gan_toy.py in igul222/improved_wgan_training).

Points are drawn on device with ``jax.random``. All functions are pure, so they can be
called inside ``jax.jit`` as long as ``name`` and the sizes are static Python values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from wgan_jax import registry

TOY_DATASETS = registry.TOY_DATASETS


def _check_name(name: str) -> None:
    if name not in TOY_DATASETS:
        raise ValueError(f"Unknown toy dataset {name!r}; valid names: {', '.join(TOY_DATASETS)}.")


def _mixture(key: jax.Array, n: int, centers: np.ndarray, std: float, divisor: float) -> jax.Array:
    k_idx, k_noise = jax.random.split(key)
    idx = jax.random.randint(k_idx, (n,), 0, centers.shape[0])
    centers = jnp.asarray(centers, jnp.float32)
    noise = std * jax.random.normal(k_noise, (n, 2), jnp.float32)
    # Divide after adding the noise, in the same order as the reference code.
    return (centers[idx] + noise) / divisor


def _swissroll(key: jax.Array, n: int, noise: float = registry.SWISSROLL_NOISE) -> jax.Array:
    """sklearn's make_swiss_roll(n, noise)[:, [0, 2]] / 7.5, without the unused y column."""
    k_t, k_noise = jax.random.split(key)
    t = 1.5 * jnp.pi * (1.0 + 2.0 * jax.random.uniform(k_t, (n,), jnp.float32))
    xz = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=-1)
    xz = xz + noise * jax.random.normal(k_noise, (n, 2), jnp.float32)
    return xz / registry.SWISSROLL_DIVISOR


def sample(name: str, key: jax.Array, n: int) -> jax.Array:
    """Draws ``n`` fresh points of toy dataset ``name``; returns float32 of shape (n, 2).

    The reference code draws 25gaussians once (100k points) and cycles through them; here
    every call draws new points, i.e. samples from the underlying mixture itself.
    """
    _check_name(name)
    if name == "swissroll":
        return _swissroll(key, n)
    m = registry.mixture(name)
    return _mixture(key, n, np.asarray(m.centers), m.std, m.divisor)


def batches(name: str, key: jax.Array, n_critic: int, batch_size: int) -> jax.Array:
    """Real data for one training step: shape (n_critic, batch_size, 2), one batch per critic
    iteration."""
    return sample(name, key, n_critic * batch_size).reshape(n_critic, batch_size, 2)


def mode_centers(name: str) -> np.ndarray:
    """Centres of the mixture components after the final rescaling, shape (K, 2), float64."""
    _check_name(name)
    return registry.mixture(name).mode_centers()


def mode_std(name: str) -> float:
    """Per-coordinate std of each mixture component after the final rescaling."""
    _check_name(name)
    return registry.mixture(name).mode_std()
