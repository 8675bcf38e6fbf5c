"""The training step's update math: n_critic critic updates (lax.scan) then one generator update.

Written per device in the pmap programming model: gradients and metrics are averaged with
explicit `lax.pmean` over the named axis `data`, batch-norm statistics are those of the global
batch, and `make_train_step` maps the per-device step over a device mesh (`parallel.py`). Random
draws (z, eps) are made for the global batch and sliced per device, so results do not depend on
the number of devices. Settings come validated from `Method.from_config`.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.sharding import Mesh

from wgan_jax import losses, parallel, penalties
from wgan_jax.models import apply_critic, apply_generator, with_axis_name
from wgan_jax.parallel import AXIS
from wgan_jax.state import TrainState

LOSSES = ("wasserstein", "gan_minimax", "gan_nonsaturating")


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Static settings of the step (hashable: part of the compiled function's identity)."""

    loss: str = "wasserstein"
    gp_weight: float = 10.0  # 0 turns the gradient penalty off (e.g. weight clipping)
    gp_one_sided: bool = False
    real_label_smoothing: float = 0.0  # standard GAN loss only
    label_flip_prob: float = 0.0  # standard GAN loss only
    ema_decay: float = 0.0  # generator EMA; 0 keeps g_ema equal to g_params


def metric_names(cfg: StepConfig) -> tuple[str, ...]:
    """The names of the scalars the step returns for `cfg`, declared once for the writers."""
    names = ["em_distance", "em_distance_last", "d_real", "d_fake", "critic_loss",
             "critic_grad_norm", "generator_loss", "generator_grad_norm", "critic_param_norm",
             "generator_param_norm"]
    if cfg.gp_weight > 0:
        names += ["gradient_penalty", "grad_norm_mean", "grad_norm_min", "grad_norm_max"]
    return tuple(sorted(names))


def _global_draw(sample_fn, key, local_batch: int, axis_name: str | None, n_devices: int):
    """Draw for the global batch from a replicated key; keep this device's slice."""
    full = sample_fn(key, local_batch * n_devices)
    if axis_name is None or n_devices == 1:
        return full
    start = lax.axis_index(axis_name) * local_batch
    return lax.dynamic_slice_in_dim(full, start, local_batch, axis=0)


def _pmean(x, axis_name):
    return x if axis_name is None else lax.pmean(x, axis_name)


def _tree_norm(tree) -> jax.Array:
    return optax.global_norm(tree)


def critic_update(state: TrainState, cfg: StepConfig, real, fake, key, *,
                  axis_name: str | None = AXIS, n_devices: int = 1):
    """One critic step on (real, fake): loss, optional gradient penalty, pmean, optimizer.

    Returns (state with new d_params, d_vars and d_opt_state, metrics). `fake` is a constant.
    """
    models, d_vars = state.models, state.d_vars
    local = real.shape[0]
    k_eps, k_flip = jax.random.split(key)
    fake = lax.stop_gradient(fake)
    fuse = models.critic_norm != "batch"  # batch norm must see real and fake separately

    def loss_fn(params):
        if fuse:
            out, new_vars = apply_critic(models, params, d_vars,
                                         jnp.concatenate([real, fake]), True)
            d_real, d_fake = out[:local], out[local:]
        else:
            d_real, new_vars = apply_critic(models, params, d_vars, real, True)
            d_fake, new_vars = apply_critic(models, params, new_vars, fake, True)
        metrics = {"em_distance": losses.em_estimate(d_real, d_fake),
                   "d_real": jnp.mean(d_real), "d_fake": jnp.mean(d_fake)}
        if cfg.loss == "wasserstein":
            loss = losses.wgan_critic_loss(d_real, d_fake)
        else:
            flips = _global_draw(
                lambda k, n: jax.random.bernoulli(k, cfg.label_flip_prob, (2, n)).T,
                k_flip, local, axis_name, n_devices)
            loss = losses.gan_critic_loss(d_real, d_fake, cfg.real_label_smoothing,
                                          flips[:, 0], flips[:, 1])
        if cfg.gp_weight > 0:
            eps = _global_draw(lambda k, n: jax.random.uniform(k, (n,)), k_eps, local,
                               axis_name, n_devices)
            # Power-iteration vectors as at the start of this step: the same sigma as above.
            penalty, norms = penalties.gradient_penalty(
                lambda x: apply_critic(models, params, d_vars, x, False)[0], real, fake, eps,
                cfg.gp_weight, cfg.gp_one_sided)
            metrics.update(gradient_penalty=penalty, grad_norm_mean=jnp.mean(norms),
                           grad_norm_min=jnp.min(norms), grad_norm_max=jnp.max(norms))
            loss = loss + penalty
        metrics["critic_loss"] = loss
        return loss, (new_vars, metrics)

    grads, (new_vars, metrics) = jax.grad(loss_fn, has_aux=True)(state.d_params)
    grads = _pmean(grads, axis_name)
    updates, d_opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, updates)
    metrics["critic_grad_norm"] = _tree_norm(grads)
    mins = {k: metrics.pop(k) for k in ("grad_norm_min", "grad_norm_max") if k in metrics}
    metrics = _pmean(metrics, axis_name)
    if axis_name is not None and mins:
        mins["grad_norm_min"] = lax.pmin(mins["grad_norm_min"], axis_name)
        mins["grad_norm_max"] = lax.pmax(mins["grad_norm_max"], axis_name)
    metrics.update(mins)
    state = state.replace(d_params=d_params, d_vars=_pmean(new_vars, axis_name),
                          d_opt_state=d_opt_state)
    return state, metrics


def generator_update(state: TrainState, cfg: StepConfig, key, local: int, *,
                     axis_name: str | None = AXIS, n_devices: int = 1):
    """One generator step against the current critic; returns (g_params, g_vars, opt, metrics)."""
    models = state.models
    z = _global_draw(lambda k, n: jax.random.normal(k, (n, models.latent_dim)), key, local,
                     axis_name, n_devices)

    def loss_fn(params):
        fake, new_vars = apply_generator(models, params, state.g_vars, z)
        d_fake, _ = apply_critic(models, state.d_params, state.d_vars, fake, False)
        if cfg.loss == "wasserstein":
            loss = losses.wgan_generator_loss(d_fake)
        elif cfg.loss == "gan_minimax":
            loss = losses.gan_generator_loss_minimax(d_fake)
        else:
            loss = losses.gan_generator_loss_nonsaturating(d_fake)
        return loss, new_vars

    (loss, new_vars), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
    grads = _pmean(grads, axis_name)
    updates, opt_state = state.g_tx.update(grads, state.g_opt_state, state.g_params)
    params = optax.apply_updates(state.g_params, updates)
    metrics = {"generator_loss": _pmean(loss, axis_name), "generator_grad_norm": _tree_norm(grads)}
    return params, _pmean(new_vars, axis_name), opt_state, metrics


def train_step(state: TrainState, batch: jax.Array, *, cfg: StepConfig,
               axis_name: str | None = AXIS, n_devices: int = 1):
    """Per-device step. `batch` is [n_critic, local_batch, ...] real data: one batch per critic
    iteration. Returns the new state and a flat dict of metrics (averaged over devices)."""
    models = with_axis_name(state.models, axis_name)
    unnamed = state.models
    state = state.replace(models=models)
    local = batch.shape[1]
    n_critic = batch.shape[0]
    step_key = jax.random.fold_in(state.rng, state.step)

    def critic_iter(carry, xs):
        d_params, d_vars, d_opt = carry
        real, i = xs
        critic_state = state.replace(d_params=d_params, d_vars=d_vars, d_opt_state=d_opt)
        k_z, k_rest = jax.random.split(jax.random.fold_in(step_key, i))
        z = _global_draw(lambda k, n: jax.random.normal(k, (n, models.latent_dim)), k_z, local,
                         axis_name, n_devices)
        fake, _ = apply_generator(models, state.g_params, state.g_vars, z)
        new, m = critic_update(critic_state, cfg, real, fake, k_rest, axis_name=axis_name,
                               n_devices=n_devices)
        return (new.d_params, new.d_vars, new.d_opt_state), m

    (d_params, d_vars, d_opt), per_iter = lax.scan(
        critic_iter, (state.d_params, state.d_vars, state.d_opt_state),
        (batch, jnp.arange(n_critic)))
    state = state.replace(d_params=d_params, d_vars=d_vars, d_opt_state=d_opt)

    g_params, g_vars, g_opt, g_metrics = generator_update(
        state, cfg, jax.random.fold_in(step_key, n_critic), local, axis_name=axis_name,
        n_devices=n_devices)
    g_ema = (g_params if cfg.ema_decay == 0 else
             jax.tree.map(lambda e, p: cfg.ema_decay * e + (1 - cfg.ema_decay) * p,
                          state.g_ema, g_params))
    state = state.replace(step=state.step + 1, g_params=g_params, g_vars=g_vars,
                          g_opt_state=g_opt, g_ema=g_ema, models=unnamed)

    metrics = {k: jnp.mean(v) for k, v in per_iter.items()}
    metrics["em_distance_last"] = per_iter["em_distance"][-1]
    if "grad_norm_min" in per_iter:
        metrics["grad_norm_min"] = jnp.min(per_iter["grad_norm_min"])
        metrics["grad_norm_max"] = jnp.max(per_iter["grad_norm_max"])
    metrics.update(g_metrics)
    metrics["critic_param_norm"] = _tree_norm(state.d_params)
    metrics["generator_param_norm"] = _tree_norm(state.g_params)
    return state, metrics


def make_train_step(cfg: StepConfig, mesh: Mesh, *, fast_compile: bool = False):
    """The jitted data-parallel step `(state, batch) -> (state, metrics)`; state is donated.

    `batch` is [n_critic, global_batch, ...] sharded with `parallel.batch_sharding(mesh)`; the
    global batch must divide evenly over the mesh's devices. Compile options:
    `parallel.compile_options` (`fast_compile` for short runs).
    """
    per_device = functools.partial(train_step, cfg=cfg, axis_name=AXIS,
                                   n_devices=mesh.shape[AXIS])
    return parallel.shard_step(per_device, mesh, fast_compile=fast_compile)
