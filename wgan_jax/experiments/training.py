"""Training loops the experiments share: a toy GAN with all seeds at once, and a critic trained
alone against a fixed generator. Networks, optimizers and step settings come from a `Method`."""
from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from wgan_jax.config import ConfigError
from wgan_jax.data import toy
from wgan_jax.method import Method
from wgan_jax.state import TrainState, create_train_state
from wgan_jax.step import critic_update, train_step


def stacked_states(method: Method, seeds: Sequence[int]) -> TrainState:
    """A train state whose array leaves are stacked over `seeds`; seed s starts from
    PRNGKey(s), so methods given the same seeds start from the same networks."""
    models = method.models()
    # One optimizer object for all seeds: it is static data of the state's pytree structure.
    g_tx, d_tx = method.optimizers()
    states = [create_train_state(models, g_tx, d_tx, jax.random.PRNGKey(s)) for s in seeds]
    return jax.tree.map(lambda *x: jnp.stack(x), *states)


def make_toy_chunk(method: Method, length: int):
    """Jitted `(stacked_state, data_keys) -> (stacked_state, em[seeds, length])`: `length`
    training steps of every seed on `method.dataset` (a toy set), real data drawn on the device
    from each seed's key. The state is donated."""
    if method.critic_warmup:
        raise ConfigError("config.critic_warmup=True is invalid here: the experiments run "
                          "n_critic critic updates per step; set it to False")
    cfg, dataset = method.step, method.dataset
    n_critic, batch_size = method.n_critic, method.batch_size

    def one_seed(state, data_key):
        def body(s, _):
            real = toy.batches(dataset, jax.random.fold_in(data_key, s.step), n_critic,
                               batch_size)
            s, metrics = train_step(s, real, cfg=cfg, axis_name=None)
            return s, metrics["em_distance"]

        return lax.scan(body, state, None, length=length)

    return jax.jit(jax.vmap(one_seed), donate_argnums=0)


@functools.partial(jax.jit, static_argnames=("dataset", "n"))
def fixed_generator_batch(dataset: str, key: jax.Array, n: int,
                          noise_std: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """`n` real points and `n` fake points; fake = fresh real points + N(0, noise_std^2).

    The fake points come from their own real draw (gan_toy.py adds the noise to the real batch
    itself): same fake distribution, but the two batches are independent samples, as the
    two distributions are in a GAN.
    """
    k_real, k_base, k_noise = jax.random.split(key, 3)
    real = toy.sample(dataset, k_real, n)
    fake = toy.sample(dataset, k_base, n) + noise_std * jax.random.normal(k_noise, (n, 2))
    return real, fake


def fixed_generator_batches(dataset: str, key: jax.Array, steps: int, batch_size: int,
                            noise_std: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Real and fake batches for `steps` critic updates, each [steps, batch_size, 2]."""
    real, fake = fixed_generator_batch(dataset, key, steps * batch_size, noise_std)
    return real.reshape(steps, batch_size, 2), fake.reshape(steps, batch_size, 2)


def critic_updates(method: Method) -> int:
    """Critic updates of a critic-only run: n_critic per step, as in a GAN run (the critic
    optimizer's schedule spans this many updates)."""
    return method.num_train_steps * method.n_critic


def make_critic_trainer(method: Method):
    """A compiled `(params, variables, real, fake, key) -> (params, variables, em_trace)` that
    trains `method`'s critic alone with its critic optimizer and step settings.

    `variables` are the critic's non-param collections (the spectral norm's power-iteration
    vectors; empty otherwise). `real` and `fake` are [updates, batch, ...]: one batch per
    critic update, consumed by one `lax.scan`; `em_trace` is the batch EM estimate of every
    update. Calls with equally shaped batches share one compilation.
    """
    models = method.models()
    g_tx, d_tx = method.optimizers()
    cfg = method.step

    @jax.jit
    def train(params, variables, real, fake, key):
        # No generator: its parts of the state stay empty.
        state = TrainState(step=jnp.zeros((), jnp.int32), rng=key, g_params={},
                           d_params=params, g_vars={}, d_vars=variables,
                           g_opt_state=g_tx.init({}), d_opt_state=d_tx.init(params), g_ema={},
                           models=models, g_tx=g_tx, d_tx=d_tx)

        def body(s, xs):
            r, f, k = xs
            s, metrics = critic_update(s, cfg, r, f, k, axis_name=None)
            return s, metrics["em_distance"]

        keys = jax.random.split(key, real.shape[0])
        state, em = lax.scan(body, state, (real, fake, keys))
        return state.d_params, state.d_vars, em

    return train
