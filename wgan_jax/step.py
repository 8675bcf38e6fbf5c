"""The training step's update math: n_critic critic updates (lax.scan) then one generator update.

Written per device in the pmap programming model: gradients and metrics are averaged with
explicit `lax.pmean` over the named axis `data`, batch-norm statistics are those of the global
batch, and `make_train_step` maps the per-device step over a device mesh (`parallel.py`). Random
draws (z, the generator's labels, eps, label flips) are made for the global batch and sliced per
device, so results do not depend on the number of devices. Settings come validated from
`Method.from_config`.
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
from wgan_jax.models.apply import critic_values
from wgan_jax.parallel import AXIS
from wgan_jax.state import TrainState


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Static settings of the step (hashable: part of the compiled function's identity)."""

    loss: str = "wasserstein"  # a key of `losses.LOSSES`
    gp_weight: float = 10.0  # 0 turns the gradient penalty off (e.g. weight clipping)
    gp_one_sided: bool = False
    real_label_smoothing: float = 0.0  # standard GAN loss only
    label_flip_prob: float = 0.0  # standard GAN loss only
    ema_decay: float = 0.0  # generator EMA; 0 keeps g_ema equal to g_params
    conditioning: str = "none"  # 'none', 'acgan' or 'projection' (as the models were built)
    acgan_critic_weight: float = 1.0  # weight of the critic's class cross-entropy on reals
    acgan_generator_weight: float = 0.1  # weight of the generator's class cross-entropy
    generator_batch_size: int = 0  # global batch of the generator update; 0: the critic's


def metric_names(cfg: StepConfig) -> tuple[str, ...]:
    """The names of the scalars the step returns for `cfg`, declared once for the writers."""
    names = ["em_distance", "em_distance_last", "d_real", "d_fake", "critic_loss",
             "critic_grad_norm", "generator_loss", "generator_grad_norm", "critic_param_norm",
             "generator_param_norm"]
    if cfg.gp_weight > 0:
        names += ["gradient_penalty", "grad_norm_mean", "grad_norm_min", "grad_norm_max"]
    if cfg.conditioning == "acgan":
        names += ["acgan_critic_loss", "acgan_generator_loss", "acgan_accuracy_real",
                  "acgan_accuracy_fake"]
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


def _split_output(out):
    """(values, class logits or None) of a critic output."""
    return (out[0], out[1]) if isinstance(out, tuple) else (out, None)


def critic_update(state: TrainState, cfg: StepConfig, real, fake, key, *,
                  real_labels=None, fake_labels=None, axis_name: str | None = AXIS,
                  n_devices: int = 1):
    """One critic step on (real, fake): loss, optional gradient penalty, pmean, optimizer.

    Conditional critics see `real_labels` with the reals and `fake_labels` with the fakes; the
    penalty's interpolates get the real example's label; 'acgan' adds acgan_critic_weight x the
    class cross-entropy on the reals (gan_cifar_resnet.py: the fakes' class loss is only
    measured, as `acgan_accuracy_fake`). Returns (state with new d_params, d_vars and
    d_opt_state, metrics). `fake` is a constant.
    """
    models, d_vars = state.models, state.d_vars
    local = real.shape[0]
    k_eps, k_flip = jax.random.split(key)
    fake = lax.stop_gradient(fake)
    table = losses.LOSSES[cfg.loss]
    labels = None if real_labels is None else jnp.concatenate([real_labels, fake_labels])

    def loss_fn(params):
        if not models.critic_mixes_examples:
            out, new_vars = apply_critic(models, params, d_vars, jnp.concatenate([real, fake]),
                                         True, labels)
            values, logits = _split_output(out)
            d_real, d_fake = values[:local], values[local:]
        else:
            out_r, new_vars = apply_critic(models, params, d_vars, real, True, real_labels)
            out_f, new_vars = apply_critic(models, params, new_vars, fake, True, fake_labels)
            (d_real, lr), (d_fake, lf) = _split_output(out_r), _split_output(out_f)
            logits = None if lr is None else jnp.concatenate([lr, lf])
        metrics = {"em_distance": losses.em_distance(d_real, d_fake),
                   "d_real": jnp.mean(d_real), "d_fake": jnp.mean(d_fake)}
        if table.label_hacks:
            flips = _global_draw(
                lambda k, n: jax.random.bernoulli(k, cfg.label_flip_prob, (2, n)).T,
                k_flip, local, axis_name, n_devices)
            loss = table.critic(d_real, d_fake, cfg.real_label_smoothing, flips[:, 0],
                                flips[:, 1])
        else:
            loss = table.critic(d_real, d_fake)
        if logits is not None:
            ce = losses.classifier_cross_entropy(logits[:local], real_labels)
            metrics.update(acgan_critic_loss=ce,
                           acgan_accuracy_real=losses.classifier_accuracy(logits[:local],
                                                                          real_labels),
                           acgan_accuracy_fake=losses.classifier_accuracy(logits[local:],
                                                                          fake_labels))
            loss = loss + cfg.acgan_critic_weight * ce
        if cfg.gp_weight > 0:
            eps = _global_draw(lambda k, n: jax.random.uniform(k, (n,)), k_eps, local,
                               axis_name, n_devices)

            # Power-iteration vectors as at the start of this step: the same sigma as above.
            # The penalty is on the critic values only (ACGAN: not on the class logits).
            def critic_fn(x, y=None):
                return critic_values(apply_critic(models, params, d_vars, x, False, y)[0])

            penalty, norms = penalties.gradient_penalty(
                critic_fn, real, fake, eps, cfg.gp_weight, cfg.gp_one_sided, real_labels)
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


def draw_labels(key, n: int, num_classes: int) -> jax.Array:
    """`n` class labels drawn uniformly from [0, num_classes) (the generator's labels)."""
    return jax.random.randint(key, (n,), 0, num_classes, dtype=jnp.int32)


def generator_update(state: TrainState, cfg: StepConfig, key, local: int, *,
                     axis_name: str | None = AXIS, n_devices: int = 1):
    """One generator step against the current critic on `local` examples per device; returns
    (g_params, g_vars, opt, metrics). A conditional generator gets labels drawn uniformly
    (a global draw sliced per device, as z); 'acgan' adds acgan_generator_weight x the class
    cross-entropy of the critic's logits against them."""
    models = state.models
    z = _global_draw(lambda k, n: jax.random.normal(k, (n, models.latent_dim)), key, local,
                     axis_name, n_devices)
    y = (_global_draw(lambda k, n: draw_labels(k, n, models.num_classes),
                      jax.random.fold_in(key, 1), local,
                      axis_name, n_devices) if models.conditional else None)
    table = losses.LOSSES[cfg.loss]

    def loss_fn(params):
        fake, new_vars = apply_generator(models, params, state.g_vars, z, y)
        out, _ = apply_critic(models, state.d_params, state.d_vars, fake, False, y)
        d_fake, logits = _split_output(out)
        loss = table.generator(d_fake)
        aux = {}
        if logits is not None:
            aux["acgan_generator_loss"] = losses.classifier_cross_entropy(logits, y)
            loss = loss + cfg.acgan_generator_weight * aux["acgan_generator_loss"]
        return loss, (new_vars, aux)

    (loss, (new_vars, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
    grads = _pmean(grads, axis_name)
    updates, opt_state = state.g_tx.update(grads, state.g_opt_state, state.g_params)
    params = optax.apply_updates(state.g_params, updates)
    metrics = {"generator_loss": _pmean(loss, axis_name), "generator_grad_norm": _tree_norm(grads),
               **_pmean(aux, axis_name)}
    return params, _pmean(new_vars, axis_name), opt_state, metrics


def train_step(state: TrainState, batch, *, cfg: StepConfig, axis_name: str | None = AXIS,
               n_devices: int = 1):
    """Per-device step. `batch` is [n_critic, local_batch, ...] real data, one batch per critic
    iteration, or for a conditional run a pair (images, int labels [n_critic, local_batch]).
    Returns the new state and a flat dict of metrics (averaged over devices).

    In the critic iterations a conditional generator makes its fakes for the real batch's
    labels (gan_cifar_resnet.py), so real and fake batches have the same classes.
    """
    models = with_axis_name(state.models, axis_name)
    if cfg.conditioning != models.conditioning:
        raise ValueError(f"step built for conditioning={cfg.conditioning!r}, models for "
                         f"{models.conditioning!r}")
    images, labels = batch if models.conditional else (batch, None)
    unnamed = state.models
    state = state.replace(models=models)
    local = images.shape[1]
    n_critic = images.shape[0]
    g_local = cfg.generator_batch_size // n_devices if cfg.generator_batch_size else local
    step_key = jax.random.fold_in(state.rng, state.step)

    def critic_iter(carry, xs):
        d_params, d_vars, d_opt = carry
        real, y, i = xs
        critic_state = state.replace(d_params=d_params, d_vars=d_vars, d_opt_state=d_opt)
        k_z, k_rest = jax.random.split(jax.random.fold_in(step_key, i))
        z = _global_draw(lambda k, n: jax.random.normal(k, (n, models.latent_dim)), k_z, local,
                         axis_name, n_devices)
        fake, _ = apply_generator(models, state.g_params, state.g_vars, z, y)
        new, m = critic_update(critic_state, cfg, real, fake, k_rest, real_labels=y,
                               fake_labels=y, axis_name=axis_name, n_devices=n_devices)
        return (new.d_params, new.d_vars, new.d_opt_state), m

    (d_params, d_vars, d_opt), per_iter = lax.scan(
        critic_iter, (state.d_params, state.d_vars, state.d_opt_state),
        (images, labels, jnp.arange(n_critic)))
    state = state.replace(d_params=d_params, d_vars=d_vars, d_opt_state=d_opt)

    g_params, g_vars, g_opt, g_metrics = generator_update(
        state, cfg, jax.random.fold_in(step_key, n_critic), g_local, axis_name=axis_name,
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

    `batch` is [n_critic, global_batch, ...] (with labels: a pair, the labels
    [n_critic, global_batch]) sharded with `parallel.batch_sharding(mesh)`; the
    global batch must divide evenly over the mesh's devices. Compile options:
    `parallel.compile_options` (`fast_compile` for short runs).
    """
    per_device = functools.partial(train_step, cfg=cfg, axis_name=AXIS,
                                   n_devices=mesh.shape[AXIS])
    return parallel.shard_step(per_device, mesh, fast_compile=fast_compile)
