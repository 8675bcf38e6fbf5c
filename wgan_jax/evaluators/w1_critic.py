"""An independent W1 estimate: a fresh critic trained from scratch against the frozen generator.

Every `every_steps` a new critic (the run's critic architecture by default) is trained with the
WGAN-GP objective (lambda 10, Adam, a fixed number of steps and a fixed seed) on training-split
reals against fresh samples of the EMA generator; then `w1_heldout` = mean D(test reals) - mean
D(new generated samples) and its standard error `w1_heldout_stderr`. The same protocol gives one
number in the same units for WGAN-GP, WGAN with clipping and the standard GAN, and across runs,
which the run's own critic cannot (its scale depends on the method and the run).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from wgan_jax import losses, penalties, registry
from wgan_jax.evaluators.base import Networks, class_labels
from wgan_jax.evaluators.spec import EvaluatorSpec, check_positive_ints
from wgan_jax.models import Models, apply_critic, apply_generator
from wgan_jax.state import TrainState

EVAL_BATCH = 500  # critic batch when scoring the held-out sets (bounded memory)

# draw(data, key, n) -> n examples; `data` is whatever the sampler reads (an array of images, a
# generator's weights, or None for toy data drawn from the key).
Draw = Callable[[Any, jax.Array, int], jax.Array]


@dataclasses.dataclass(frozen=True)
class CriticTraining:
    """How the fresh critic is trained."""

    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-4
    b1: float = 0.5
    b2: float = 0.9
    gp_weight: float = 10.0
    one_sided: bool = False  # penalise only gradient norms above 1 (Petzka et al. 2018)


def make_fit(models: Models, training: CriticTraining, draw_real: Draw, draw_fake: Draw):
    """A jitted `fit(key, real_data, fake_data) -> (params, variables, em_curve)`: a critic of
    `models` initialised from `key` and trained `training.steps` WGAN-GP steps in one lax.scan.
    `em_curve` is the training-batch estimate mean D(real) - mean D(fake) at each step."""
    t = training
    tx = optax.adam(t.learning_rate, b1=t.b1, b2=t.b2)

    def fit(key, real_data, fake_data):
        k_init, k_x, k_loop = jax.random.split(key, 3)
        variables = dict(models.critic.init(k_init, draw_real(real_data, k_x, 2)))
        params = variables.pop("params")

        def step(carry, k):
            params, d_vars, opt_state = carry
            k_real, k_fake, k_eps = jax.random.split(k, 3)
            real = draw_real(real_data, k_real, t.batch_size)
            fake = jax.lax.stop_gradient(draw_fake(fake_data, k_fake, t.batch_size))
            eps = jax.random.uniform(k_eps, (t.batch_size,))

            def loss_fn(p):
                d, new_vars = apply_critic(models, p, d_vars, jnp.concatenate([real, fake]),
                                           True)
                d_real, d_fake = d[:t.batch_size], d[t.batch_size:]
                gp, _ = penalties.gradient_penalty(
                    lambda x: apply_critic(models, p, new_vars, x, False)[0], real, fake, eps,
                    weight=t.gp_weight, one_sided=t.one_sided)
                return losses.wgan_critic_loss(d_real, d_fake) + gp, (
                    new_vars, jnp.mean(d_real) - jnp.mean(d_fake))

            grads, (d_vars, em) = jax.grad(loss_fn, has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), d_vars, opt_state), em

        (params, variables, _), em = jax.lax.scan(
            step, (params, variables, tx.init(params)), jax.random.split(k_loop, t.steps))
        return params, variables, em

    return jax.jit(fit)


def critic_values(models: Models, params, variables, x: np.ndarray,
                  apply: Callable | None = None) -> np.ndarray:
    """Critic values of `x` in batches of EVAL_BATCH (float64)."""
    apply = apply or jax.jit(lambda p, v, b: apply_critic(models, p, v, b, False)[0])
    return np.concatenate([np.asarray(apply(params, variables, x[i:i + EVAL_BATCH]), np.float64)
                           for i in range(0, len(x), EVAL_BATCH)])


def heldout_estimate(d_real: np.ndarray, d_fake: np.ndarray) -> tuple[float, float]:
    """mean D(real) - mean D(fake) and its standard error (independent samples)."""
    d_real, d_fake = np.asarray(d_real, np.float64), np.asarray(d_fake, np.float64)
    se = math.sqrt(np.var(d_real, ddof=1) / len(d_real) + np.var(d_fake, ddof=1) / len(d_fake))
    return float(np.mean(d_real) - np.mean(d_fake)), se


def fresh_critic_models(method, arch: str, critic_norm: str) -> Models:
    """The networks whose critic is trained: the run's (or `arch`'s) with a norm the gradient
    penalty allows ('batch' becomes 'layer', as in the WGAN-GP code)."""
    spec = method.model
    norm = critic_norm or ("layer" if spec.critic_norm == "batch" else spec.critic_norm)
    changes = {"arch": arch or spec.arch, "critic_norm": norm}
    if hasattr(spec, "conditioning"):  # the fresh critic is unconditional
        changes.update(conditioning="none", num_classes=0)
    return dataclasses.replace(spec, **changes).build()


class W1CriticEvaluator:
    """`w1_heldout`, `w1_heldout_stderr`: a fresh WGAN-GP critic's estimate of W1 between the
    test split and the EMA generator."""

    name = "w1_critic"

    def __init__(self, networks: Networks, dataset: str, critic_models: Models, *,
                 every_steps: int, seed: int, training: CriticTraining, num_samples: int,
                 train_samples: int, data_dir: str | None):
        self.every_steps, self.networks = every_steps, networks
        self.critic_models, self.num_samples = critic_models, num_samples
        gen = networks.models
        key = jax.random.PRNGKey(seed)
        self.fit_key, k_test, self.k_fake = jax.random.split(key, 3)
        data = registry.dataset(dataset)
        if data.is_toy:
            from wgan_jax.data import toy
            draw_real = lambda _, k, n: toy.sample(dataset, k, n)  # noqa: E731
            self.train_data = None
            self.test_real = np.asarray(toy.sample(dataset, k_test, num_samples))
        else:
            from wgan_jax.evaluators.heldout import split_images
            self.train_data = jnp.asarray(split_images(dataset, "train", data_dir, train_samples))
            self.test_real = split_images(dataset, "test", data_dir, num_samples)
            draw_real = lambda imgs, k, n: imgs[  # noqa: E731
                jax.random.randint(k, (n,), 0, imgs.shape[0])]

        def draw_fake(g, k, n):
            # A conditional generator draws uniform classes: the test split's marginal.
            k_z, k_y = jax.random.split(k)
            y = (jax.random.randint(k_y, (n,), 0, gen.num_classes) if gen.conditional
                 else None)
            return apply_generator(gen, g[0], g[1], jax.random.normal(k_z, (n, gen.latent_dim)),
                                   y)[0]

        self.fit = make_fit(critic_models, training, draw_real, draw_fake)
        self._apply = jax.jit(lambda p, v, b: apply_critic(critic_models, p, v, b, False)[0])

    def run(self, state: TrainState) -> dict[str, float]:
        params, variables, _ = self.fit(self.fit_key, self.train_data,
                                        (state.g_ema, state.g_vars))
        z = jax.random.normal(self.k_fake, (self.num_samples, self.networks.models.latent_dim))
        y = class_labels(self.num_samples, self.networks.models.num_classes)
        fake = self.networks.generate(state, z, y)
        w1, se = heldout_estimate(
            critic_values(self.critic_models, params, variables, self.test_real, self._apply),
            critic_values(self.critic_models, params, variables, fake, self._apply))
        return {"w1_heldout": w1, "w1_heldout_stderr": se}


def _defaults() -> ml_collections.ConfigDict:
    b = ml_collections.ConfigDict()
    b.every_steps = 1000
    b.arch = ""  # '': the run's critic architecture
    b.critic_norm = ""  # '': the run's ('batch' becomes 'layer': the penalty is per example)
    b.steps = CriticTraining.steps
    b.batch_size = CriticTraining.batch_size
    b.learning_rate = CriticTraining.learning_rate
    b.b1, b.b2 = CriticTraining.b1, CriticTraining.b2
    b.gp_weight = CriticTraining.gp_weight
    b.one_sided = CriticTraining.one_sided
    b.seed = 0
    b.num_samples = 2000  # test reals and generated samples behind the estimate
    b.train_samples = 10_000  # image data: the first N training images the critic trains on
    return b


def _validate(block, config, fail, active) -> None:
    from wgan_jax.models.common import CRITIC_NORMS
    check_positive_ints(block, "eval.w1_critic", fail, "every_steps", "steps", "batch_size",
                        "num_samples", "train_samples")
    if block.num_samples < 2:
        fail("eval.w1_critic.num_samples", block.num_samples, "needs at least 2 samples")
    if not block.learning_rate > 0:
        fail("eval.w1_critic.learning_rate", block.learning_rate, "must be > 0")
    for f in ("b1", "b2"):
        if not 0 <= block[f] < 1:
            fail(f"eval.w1_critic.{f}", block[f], "must be in [0, 1)")
    if not block.gp_weight > 0:
        fail("eval.w1_critic.gp_weight", block.gp_weight,
             "the fresh critic is a WGAN-GP critic: lambda must be > 0 (10 in the paper)")
    if block.critic_norm and block.critic_norm not in set(CRITIC_NORMS) - {"batch"}:
        fail("eval.w1_critic.critic_norm", block.critic_norm,
             f"choose '' (the run's) or one of {tuple(set(CRITIC_NORMS) - {'batch'})}")
    if active and block.arch:
        fits = registry.dataset(config.dataset).archs
        if block.arch not in fits:
            fail("eval.w1_critic.arch", block.arch,
                 f"dataset {config.dataset!r} needs one of {fits}, or '' for the run's")


def _build(config, method, networks) -> W1CriticEvaluator:
    b = config.eval.w1_critic
    training = CriticTraining(steps=b.steps, batch_size=b.batch_size,
                              learning_rate=float(b.learning_rate), b1=float(b.b1),
                              b2=float(b.b2), gp_weight=float(b.gp_weight),
                              one_sided=bool(b.one_sided))
    return W1CriticEvaluator(
        networks, method.dataset, fresh_critic_models(method, b.arch, b.critic_norm),
        every_steps=b.every_steps, seed=b.seed, training=training,
        num_samples=b.num_samples, train_samples=b.train_samples, data_dir=config.data_dir)


SPEC = EvaluatorSpec(needs="any", defaults=_defaults, build=_build, validate=_validate)
