"""Optimizers from explicit settings, and weight clipping as an optax transform."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULES = ("constant", "linear")


def clip_params(clip_value: float) -> optax.GradientTransformation:
    """Keep every parameter in [-c, c] after the update is applied (WGAN's weight clipping).

    Chain it last: `optax.chain(optimizer, clip_params(c))`. The update it returns is
    `clip(p + u, -c, c) - p`, so `optax.apply_updates` lands on the clipped value, which is
    Algorithm 1 of the WGAN paper (step, then clip). optax has no built-in for this
    (`optax.clip` clips updates, not parameters; `keep_params_nonnegative` is the same idea
    for the bound 0). Up to float rounding of `p + (clip(p+u) - p)`, i.e. one ulp of c.
    """
    if clip_value <= 0:
        raise ValueError(f"clip value must be > 0, got {clip_value}")

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("clip_params needs the current params: call update(g, s, params)")
        new = jax.tree.map(lambda p, u: jnp.clip(p + u, -clip_value, clip_value) - p,
                           params, updates)
        return new, state

    return optax.GradientTransformation(init_fn, update_fn)


def learning_rate_schedule(learning_rate: float, schedule: str, total_updates: int):
    """A constant rate, or linear decay to 0 over `total_updates` optimizer updates."""
    if schedule == "constant":
        return learning_rate
    if schedule == "linear":
        return optax.linear_schedule(learning_rate, 0.0, max(int(total_updates), 1))
    raise ValueError(f"lr schedule must be one of {SCHEDULES}, got {schedule!r}")


def make_optimizer(name: str, learning_rate, *, b1: float = 0.5, b2: float = 0.9,
                   eps: float | None = None, rms_decay: float = 0.9,
                   clip_value: float | None = None) -> optax.GradientTransformation:
    """Adam / RMSProp / SGD, optionally followed by weight clipping to [-clip_value, clip_value].

    RMSProp is TF1's (decay 0.9, eps inside the sqrt, mean square initialised to ones), which the
    official WGAN code uses through `tf.train.RMSPropOptimizer`. `eps=None` takes each
    optimizer's official default: 1e-8 for Adam, TF1's 1e-10 for RMSProp.
    """
    if name == "adam":
        tx = optax.adam(learning_rate, b1=b1, b2=b2, eps=1e-8 if eps is None else eps)
    elif name == "rmsprop":
        tx = optax.rmsprop(learning_rate, decay=rms_decay, eps=1e-10 if eps is None else eps,
                           initial_scale=1.0)
    elif name == "sgd":
        tx = optax.sgd(learning_rate)
    else:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    if clip_value is not None:
        tx = optax.chain(tx, clip_params(clip_value))
    return tx
