"""The WGAN-GP gradient penalty on random interpolates of real and fake samples."""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def safe_norm(x: jax.Array, axis=-1) -> jax.Array:
    """Euclidean norm whose gradient is 0 (not NaN) where the vector is 0; exact elsewhere."""
    sq = jnp.sum(jnp.square(x), axis=axis)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def interpolate(real: jax.Array, fake: jax.Array, eps: jax.Array) -> jax.Array:
    """x_hat = eps*real + (1-eps)*fake, one eps per example broadcast over the rest."""
    e = eps.reshape((-1,) + (1,) * (real.ndim - 1))
    return e * real + (1.0 - e) * fake


def input_gradients(critic_fn: Callable[..., jax.Array], x: jax.Array,
                    labels: jax.Array | None = None) -> jax.Array:
    """Per-example gradients dD(x_i)/dx_i via vmap of grad of the critic on one example;
    with `labels`, `critic_fn(x, y)` sees example i's label with it."""
    if labels is None:
        return jax.vmap(jax.grad(lambda xi: critic_fn(xi[None])[0]))(x)
    return jax.vmap(jax.grad(lambda xi, yi: critic_fn(xi[None], yi[None])[0]))(x, labels)


def gradient_penalty(critic_fn: Callable[..., jax.Array], real: jax.Array,
                     fake: jax.Array, eps: jax.Array, weight: float = 10.0,
                     one_sided: bool = False,
                     labels: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """WGAN-GP penalty `weight * mean((||grad D(x_hat)|| - 1)^2)` and the per-example norms.

    `critic_fn` maps a batch [B, ...] (and, with `labels` [B], their labels) to values [B]; it
    must have no cross-example layers (no batch norm). `one_sided=True` gives
    `weight * mean(max(0, ||g|| - 1)^2)` (Petzka et al.). Differentiable w.r.t. whatever
    `critic_fn` closes over (double backprop).
    """
    x_hat = interpolate(real, fake, eps)
    grads = input_gradients(critic_fn, x_hat, labels)
    norms = safe_norm(grads.reshape(grads.shape[0], -1))
    gap = norms - 1.0
    if one_sided:
        gap = jnp.maximum(gap, 0.0)
    return weight * jnp.mean(jnp.square(gap)), norms
