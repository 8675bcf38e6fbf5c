"""Paths through the Gaussian latent space: straight lines and great circles (slerp).

A d-dimensional standard Gaussian puts almost all its mass near the sphere of radius sqrt(d),
so the midpoint of a straight line between two latent draws (norm about sqrt(d / 2) for
independent draws) lies where the generator has rarely been trained. Great-circle
interpolation (Tom White, "Sampling Generative Networks", 2016; the GAN hacks' "spherical z")
keeps the norm on that shell.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# Below this sine of the angle between the endpoints the great circle is ill-defined
# (parallel or opposite vectors, or a zero vector) and interpolation falls back to lerp.
PARALLEL_EPS = 1e-4


def _array_module(*xs):
    """jax.numpy if any input is a JAX array (or tracer), else NumPy: host data stays on the
    host, where many small paths are cheaper than compiling XLA ops for every new shape."""
    return jnp if any(isinstance(x, jax.Array) for x in xs) else np


def lerp(z0, z1, t):
    """Straight-line interpolation (1 - t) z0 + t z1; `t` broadcasts against z's leading axes.

    NumPy inputs give a NumPy result, JAX inputs a JAX one (also inside jit).
    """
    xp = _array_module(z0, z1, t)
    z0, z1 = xp.asarray(z0), xp.asarray(z1)
    dtype = xp.result_type(z0, z1, xp.float32)
    t = xp.asarray(t, dtype)[..., None]
    return (1.0 - t) * z0.astype(dtype) + t * z1.astype(dtype)


def slerp(z0, z1, t):
    """Great-circle interpolation between latent points z0 and z1 (last axis: latent).

    The direction turns at constant angular speed in the plane of z0 and z1 (the angle to z0
    is t times the angle between them) and the norm goes linearly from |z0| to |z1|; for
    endpoints of equal norm this is the classic slerp
    sin((1-t) w) / sin(w) z0 + sin(t w) / sin(w) z1. `t` (scalar or array) broadcasts
    against the leading axes of z0 and z1, so batches of pairs and many t work at once.
    Nearly parallel or opposite endpoints, or a zero endpoint, fall back to `lerp`.
    NumPy inputs give a NumPy result, JAX inputs a JAX one (also inside jit).
    """
    xp = _array_module(z0, z1, t)
    z0, z1 = xp.asarray(z0), xp.asarray(z1)
    dtype = xp.result_type(z0, z1, xp.float32)
    z0, z1 = z0.astype(dtype), z1.astype(dtype)
    tt = xp.asarray(t, dtype)[..., None]
    n0 = xp.linalg.norm(z0, axis=-1, keepdims=True)
    n1 = xp.linalg.norm(z1, axis=-1, keepdims=True)
    # The safe denominators only matter on the fallback branch, which `where` discards.
    u0 = z0 / xp.where(n0 > 0, n0, 1.0)
    u1 = z1 / xp.where(n1 > 0, n1, 1.0)
    # arccos of the dot product loses half the digits near 0 and pi; this form does not.
    omega = 2.0 * xp.arctan2(xp.linalg.norm(u0 - u1, axis=-1, keepdims=True),
                             xp.linalg.norm(u0 + u1, axis=-1, keepdims=True))
    sin = xp.sin(omega)
    ok = (sin > PARALLEL_EPS) & (n0 > 0) & (n1 > 0)
    safe_sin = xp.where(ok, sin, 1.0)
    direction = (xp.sin((1.0 - tt) * omega) * u0 + xp.sin(tt * omega) * u1) / safe_sin
    radius = (1.0 - tt) * n0 + tt * n1
    return xp.where(ok, radius * direction, (1.0 - tt) * z0 + tt * z1)


def interpolation_path(z0, z1, n: int, method: str = "slerp"):
    """`n` evenly spaced points from z0 to z1 (both included) along `method` ('slerp' or
    'lerp'); shape [n, *z0.shape]."""
    if n < 2:
        raise ValueError(f"a path needs at least 2 points, got n={n}")
    if method not in ("slerp", "lerp"):
        raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")
    xp = _array_module(z0, z1)
    z0, z1 = xp.asarray(z0), xp.asarray(z1)
    if z0.shape != z1.shape or z0.ndim == 0:
        raise ValueError(f"endpoints need the same shape [..., latent], got {z0.shape}, "
                         f"{z1.shape}")
    t = xp.linspace(0.0, 1.0, n).reshape((n,) + (1,) * (z0.ndim - 1))
    fn = slerp if method == "slerp" else lerp
    return fn(z0[None], z1[None], t)
