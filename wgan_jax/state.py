"""The one training-state pytree and its construction."""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from wgan_jax.models import Models


@flax.struct.dataclass
class TrainState:
    """Everything a training run changes: both networks, their optimizers, step and rng.

    `g_vars` / `d_vars` hold the non-parameter collections (batch-norm statistics, spectral-norm
    power-iteration vectors). `g_ema` is an exponential moving average of the generator params
    (equal to `g_params` when the decay is 0). Networks and optimizers are static fields.
    """

    step: jax.Array
    rng: jax.Array
    g_params: Any
    d_params: Any
    g_vars: Any
    d_vars: Any
    g_opt_state: Any
    d_opt_state: Any
    g_ema: Any
    models: Models = flax.struct.field(pytree_node=False)
    g_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
    d_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)


def _split_vars(variables):
    variables = dict(variables)
    params = variables.pop("params")
    return params, variables


def create_train_state(models: Models, g_tx: optax.GradientTransformation,
                       d_tx: optax.GradientTransformation, rng: jax.Array) -> TrainState:
    """Initialise both networks (official inits) and their optimizers from `rng`."""
    k_g, k_d, k_run = jax.random.split(rng, 3)
    z = jnp.zeros((2, models.latent_dim), jnp.float32)
    x = jnp.zeros((2,) + tuple(models.data_shape), jnp.float32)
    y = (jnp.zeros((2,), jnp.int32),) if models.conditioning != "none" else ()
    # One compiled init per network: op-by-op init of the conv layers dispatches hundreds of ops.
    g_params, g_vars = _split_vars(jax.jit(models.generator.init)(k_g, z, *y))
    d_params, d_vars = _split_vars(jax.jit(models.critic.init)(k_d, x, *y))
    return TrainState(
        step=jnp.zeros((), jnp.int32), rng=k_run,
        g_params=g_params, d_params=d_params, g_vars=g_vars, d_vars=d_vars,
        g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
        g_ema=jax.tree.map(jnp.copy, g_params),
        models=models, g_tx=g_tx, d_tx=d_tx)


def param_count(tree) -> int:
    """Number of scalars in a pytree of arrays."""
    return sum(int(x.size) for x in jax.tree.leaves(tree))
