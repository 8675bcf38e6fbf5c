"""Toy 2-D distributions of the WGAN-GP paper (gan_toy.py in igul222/improved_wgan_training).

Points are drawn on device with ``jax.random``. All functions are pure, so they can be
called inside ``jax.jit`` as long as ``name`` and the sizes are static Python values.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

TOY_DATASETS = ("8gaussians", "25gaussians", "swissroll")

_SQRT_HALF = 1.0 / math.sqrt(2.0)

# Unscaled centres, noise std and the final divisor, as in gan_toy.py.
_8G_CENTERS = 2.0 * np.array(
    [
        (1.0, 0.0),
        (-1.0, 0.0),
        (0.0, 1.0),
        (0.0, -1.0),
        (_SQRT_HALF, _SQRT_HALF),
        (_SQRT_HALF, -_SQRT_HALF),
        (-_SQRT_HALF, _SQRT_HALF),
        (-_SQRT_HALF, -_SQRT_HALF),
    ]
)
_8G_STD = 0.02
_8G_DIVISOR = 1.414

_25G_CENTERS = np.array([(2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)])
_25G_STD = 0.05
_25G_DIVISOR = 2.828

_SWISSROLL_NOISE = 0.25
_SWISSROLL_DIVISOR = 7.5

_MIXTURES = {
    "8gaussians": (_8G_CENTERS, _8G_STD, _8G_DIVISOR),
    "25gaussians": (_25G_CENTERS, _25G_STD, _25G_DIVISOR),
}


def _check_name(name: str) -> None:
    if name not in TOY_DATASETS:
        raise ValueError(f"Unknown toy dataset {name!r}; valid names: {', '.join(TOY_DATASETS)}.")


def _check_mixture(name: str) -> None:
    _check_name(name)
    if name not in _MIXTURES:
        raise ValueError(f"Toy dataset {name!r} is not a Gaussian mixture and has no modes.")


def _mixture(key: jax.Array, n: int, centers: np.ndarray, std: float, divisor: float) -> jax.Array:
    k_idx, k_noise = jax.random.split(key)
    idx = jax.random.randint(k_idx, (n,), 0, centers.shape[0])
    centers = jnp.asarray(centers, jnp.float32)
    noise = std * jax.random.normal(k_noise, (n, 2), jnp.float32)
    # Divide after adding the noise, in the same order as the reference code.
    return (centers[idx] + noise) / divisor


def _swissroll(key: jax.Array, n: int, noise: float = _SWISSROLL_NOISE) -> jax.Array:
    """sklearn's make_swiss_roll(n, noise)[:, [0, 2]] / 7.5, without the unused y column."""
    k_t, k_noise = jax.random.split(key)
    t = 1.5 * jnp.pi * (1.0 + 2.0 * jax.random.uniform(k_t, (n,), jnp.float32))
    xz = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=-1)
    xz = xz + noise * jax.random.normal(k_noise, (n, 2), jnp.float32)
    return xz / _SWISSROLL_DIVISOR


def sample(name: str, key: jax.Array, n: int) -> jax.Array:
    """Draws ``n`` fresh points of toy dataset ``name``; returns float32 of shape (n, 2).

    The reference code draws 25gaussians once (100k points) and cycles through them; here
    every call draws new points, i.e. samples from the underlying mixture itself.
    """
    _check_name(name)
    if name == "swissroll":
        return _swissroll(key, n)
    centers, std, divisor = _MIXTURES[name]
    return _mixture(key, n, centers, std, divisor)


def batches(name: str, key: jax.Array, n_critic: int, batch_size: int) -> jax.Array:
    """Real data for one training step: shape (n_critic, batch_size, 2), one batch per critic
    iteration."""
    return sample(name, key, n_critic * batch_size).reshape(n_critic, batch_size, 2)


def mode_centers(name: str) -> np.ndarray:
    """Centres of the mixture components after the final rescaling, shape (K, 2), float64."""
    _check_mixture(name)
    centers, _, divisor = _MIXTURES[name]
    return centers / divisor


def mode_std(name: str) -> float:
    """Per-coordinate std of each mixture component after the final rescaling."""
    _check_mixture(name)
    _, std, divisor = _MIXTURES[name]
    return std / divisor
