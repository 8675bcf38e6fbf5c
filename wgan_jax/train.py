"""`train_and_evaluate(config, workdir)`: the training loop, its writers, samples and checkpoints."""
from __future__ import annotations

import json
import math
import os

import jax
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, periodic_actions
from etils import epath

from wgan_jax import checkpoint, evaluate, visualize
from wgan_jax import config as config_lib
from wgan_jax.data import toy
from wgan_jax.metrics import NonFiniteError, train_collection
from wgan_jax.models import OUTPUT_RANGES, Models, build_models
from wgan_jax.optim import learning_rate_schedule, make_optimizer
from wgan_jax import state as state_lib
from wgan_jax.state import TrainState, param_count
from wgan_jax.step import (StepConfig, apply_critic, apply_generator, batch_sharding,
                           make_mesh, make_train_step, replicated)

TOY_GRID_RANGE = 3.0  # gan_toy.py's plotting range


def critic_iterations(step: int, n_critic: int, warmup: bool) -> int:
    """Critic iterations for 0-based generator step `step` (official WGAN warm-up if enabled)."""
    if warmup and (step < 25 or step % 500 == 0):
        return 100
    return n_critic


def step_config(config: ml_collections.ConfigDict) -> StepConfig:
    """The compiled step's static settings, from the config."""
    return StepConfig(loss=config.loss, gp_weight=float(config.gp_weight),
                      gp_one_sided=bool(config.gp_one_sided),
                      real_label_smoothing=float(config.real_label_smoothing),
                      label_flip_prob=float(config.label_flip_prob),
                      ema_decay=float(config.ema_decay))


def models_from_config(config: ml_collections.ConfigDict) -> Models:
    """The generator and critic the config names."""
    m = config.model
    return build_models(m.arch, critic_norm=m.critic_norm, generator_norm=m.generator_norm,
                        conv_impl=m.conv_impl, toy_hidden=m.toy_hidden, toy_depth=m.toy_depth,
                        extra_layers=m.extra_layers)


def optimizers_from_config(config: ml_collections.ConfigDict):
    """(generator optimizer, critic optimizer); the critic's ends in weight clipping if set."""
    o = config.optimizer
    n_critic_updates = config.num_train_steps * config.n_critic

    def tx(total, clip):
        lr = learning_rate_schedule(o.learning_rate, o.lr_schedule, total)
        return make_optimizer(o.name, lr, b1=o.b1, b2=o.b2, eps=o.eps, rms_decay=o.rms_decay,
                              clip_value=clip)

    return (tx(config.num_train_steps, None),
            tx(n_critic_updates, config.clip_value if config.clip_value > 0 else None))


def create_train_state(config: ml_collections.ConfigDict, rng: jax.Array) -> TrainState:
    """Networks and optimizers as `config` says, initialised from `rng`."""
    g_tx, d_tx = optimizers_from_config(config)
    return state_lib.create_train_state(models_from_config(config), g_tx, d_tx, rng)


def initial_state(config: ml_collections.ConfigDict) -> TrainState:
    """The train state a run of `config` starts from (rng from `config.seed`)."""
    return create_train_state(config, jax.random.PRNGKey(config.seed))


class RealData:
    """Real batches [n_critic, global_batch, ...] placed sharded over the mesh."""

    def __init__(self, config, mesh, start_step: int):
        self.mesh = mesh
        self.sharding = batch_sharding(mesh)
        self.dataset = config.dataset
        self.batch_size = config.batch_size
        if config.dataset in config_lib.TOY_DATASETS:
            key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0xDA7A)
            self._key = key
            self._toy = jax.jit(toy.batches, static_argnums=(0, 2, 3),
                                out_shardings=self.sharding)
            self._images = None
        else:
            from wgan_jax.data import images  # tensorflow only when images are used
            # A resumed run continues the data stream after the batches its steps consumed.
            consumed = sum(critic_iterations(s, config.n_critic, config.critic_warmup)
                           for s in range(start_step))
            self._images = images.make_image_iterator(
                config.dataset, data_dir=config.data_dir, global_batch_size=config.batch_size,
                n_critic=1, seed=config.seed, shuffle_buffer=config.shuffle_buffer,
                skip_batches=consumed)

    def close(self) -> None:
        """Stop the input pipeline (an open tf.data iterator can hang interpreter exit)."""
        if self._images is not None and hasattr(self._images, "close"):
            self._images.close()

    def batch(self, step: int, n_critic: int) -> jax.Array:
        if self._images is None:
            return self._toy(self.dataset, jax.random.fold_in(self._key, step), n_critic,
                             self.batch_size)
        local = np.concatenate([next(self._images) for _ in range(n_critic)], axis=0)
        return jax.make_array_from_process_local_data(self.sharding, local)


def _check_finite(values: dict[str, float], step: int, since: int) -> None:
    bad = sorted(k for k, v in values.items() if not math.isfinite(v))
    if bad:
        where = f"step {step}" if since == step else f"steps {since}-{step}"
        raise NonFiniteError(
            f"non-finite {', '.join(bad)} at {where} (values: "
            f"{ {k: values[k] for k in bad} }). The last good checkpoint is kept; lower the "
            "learning rate, or raise gp_weight / lower clip_value, and resume or restart.")


class Sampler:
    """Fixed-noise samples, toy evaluation and pictures, from the EMA generator."""

    def __init__(self, config, models: Models):
        self.config = config
        self.models = models
        self.toy = config.dataset in config_lib.TOY_DATASETS
        n = max(config.eval.num_samples, config.eval.w1_samples) if self.toy else \
            config.eval.num_sample_images
        key = jax.random.PRNGKey(config.seed + 1)
        self.z = jax.random.normal(key, (n, models.latent_dim))
        self._gen = jax.jit(lambda p, v, z: apply_generator(models, p, v, z)[0])
        self._critic = jax.jit(lambda p, v, x: apply_critic(models, p, v, x, False)[0])
        if self.toy:
            self.real = np.asarray(toy.sample(config.dataset, jax.random.fold_in(key, 1),
                                              config.eval.w1_samples))

    def samples(self, state: TrainState) -> np.ndarray:
        return np.asarray(self._gen(state.g_ema, state.g_vars, self.z))

    def evaluate(self, state: TrainState) -> dict[str, float]:
        """Toy metrics: modes_covered, high_quality_fraction, exact_w1, critic_em_estimate."""
        if not self.toy:
            return {}
        fake = self.samples(state)
        out = {}
        if self.config.dataset != "swissroll":
            out.update(evaluate.mode_coverage(fake[:self.config.eval.num_samples],
                                              toy.mode_centers(self.config.dataset),
                                              toy.mode_std(self.config.dataset)))
        n = self.config.eval.w1_samples
        d_real = np.asarray(self._critic(state.d_params, state.d_vars, self.real))
        d_fake = np.asarray(self._critic(state.d_params, state.d_vars, fake[:n]))
        out.update(evaluate.w1_report(self.real, fake[:n], d_real, d_fake))
        return out

    def picture(self, state: TrainState, step: int) -> np.ndarray:
        fake = self.samples(state)
        if not self.toy:
            return visualize.image_grid(fake, OUTPUT_RANGES[self.config.model.arch])
        grid = visualize.toy_grid(TOY_GRID_RANGE)
        values = np.asarray(self._critic(state.d_params, state.d_vars, grid))
        n = int(round(math.sqrt(len(grid))))
        return visualize.toy_figure(self.real[:1000], fake[:1000], values.reshape(n, n),
                                    TOY_GRID_RANGE, f"{self.config.dataset}, step {step}")


def _prepare_workdir(workdir: str) -> None:
    path = epath.Path(workdir)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"--workdir {workdir} exists and is not a directory; "
                                 "pass a directory path")
    path.mkdir(parents=True, exist_ok=True)


def _loop(config, workdir, state, start_step, mesh, data, ckpt) -> dict[str, float]:
    is_main = jax.process_index() == 0
    train_step = make_train_step(step_config(config), mesh, fast_compile=config.fast_compile)
    sampler = Sampler(config, state.models)
    writer = metric_writers.create_default_writer(workdir, just_logging=not is_main)
    if start_step == 0:
        writer.write_hparams(_flat(config))
    progress = periodic_actions.ReportProgress(num_train_steps=config.num_train_steps,
                                               writer=writer)

    # On XLA:CPU, programs left in flight behind each other (the step, the metric merge, the next
    # batch) have been seen to hang, and collectives of several devices can deadlock: finish
    # each step before dispatching the next. The host waits for the step anyway there.
    sync_each_step = jax.default_backend() == "cpu"
    collection = first = merge = acc = None
    since = start_step + 1
    last: dict[str, float] = {}
    final_step = config.num_train_steps
    for step in range(start_step + 1, final_step + 1):
        n_critic = critic_iterations(step - 1, config.n_critic, config.critic_warmup)
        with jax.profiler.StepTraceAnnotation("train", step_num=step):
            batch = data.batch(step, n_critic)
            state, step_metrics = train_step(state, batch)
        if sync_each_step:
            jax.block_until_ready((state, step_metrics))
        if collection is None:
            collection = train_collection(step_metrics)
            # One compiled call per step instead of dozens of eager ops per metric.
            first = jax.jit(lambda m: collection.single_from_model_output(**m))
            merge = jax.jit(lambda a, m: a.merge(collection.single_from_model_output(**m)))
        acc = first(step_metrics) if acc is None else merge(acc, step_metrics)
        progress(step)

        is_last = step == final_step
        save_now = step % config.checkpoint_every_steps == 0 or is_last
        if step % config.log_every_steps == 0 or save_now:
            last = {k: float(v) for k, v in jax.device_get(acc.compute()).items()}
            _check_finite(last, step, since)
            writer.write_scalars(step, last)
            acc, since = None, step + 1
        if step % config.sample_every_steps == 0 or is_last:
            picture = sampler.picture(state, step)
            if is_main:
                visualize.save_png(picture, os.path.join(workdir, "samples",
                                                         f"step_{step:07d}.png"))
            writer.write_images(step, {"samples": picture[None]})
        if step % config.eval_every_steps == 0 or is_last:
            results = sampler.evaluate(state)
            if results:
                writer.write_scalars(step, results)
                logging.info("eval at step %d: %s", step, results)
                last.update(results)
        if save_now:
            checkpoint.save(ckpt, step, state)
    if start_step >= final_step:
        logging.info("nothing to train: the checkpoint is at step %d >= num_train_steps=%d",
                     start_step, final_step)
        last = sampler.evaluate(state)
    ckpt.wait_until_finished()
    writer.flush()
    return last


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
    """Train as `config` says, writing metrics, samples and checkpoints into `workdir`.

    Resumes from the latest checkpoint in `workdir/checkpoints` if there is one. Returns the
    last logged training metrics merged with the final evaluation.
    """
    mesh = make_mesh()
    config_lib.validate(config, num_devices=mesh.size)
    _prepare_workdir(workdir)
    is_main = jax.process_index() == 0

    state = initial_state(config)
    logging.info("generator params: %d, critic params: %d", param_count(state.g_params),
                 param_count(state.d_params))
    ckpt = checkpoint.manager(os.path.join(workdir, "checkpoints"), config.keep_checkpoints)
    state, start_step = checkpoint.restore_latest(ckpt, state)
    if start_step:
        logging.info("resuming from the checkpoint of step %d in %s", start_step, workdir)
    elif is_main:
        (epath.Path(workdir) / "config.json").write_text(config.to_json_best_effort(indent=2))
    state = jax.device_put(state, replicated(mesh))

    data = RealData(config, mesh, start_step)
    try:
        last = _loop(config, workdir, state, start_step, mesh, data, ckpt)
    finally:
        data.close()
        ckpt.wait_until_finished()
    if is_main:
        (epath.Path(workdir) / "final_metrics.json").write_text(json.dumps(
            {"step": max(start_step, config.num_train_steps), **last}, indent=2))
    return last


def _flat(config: ml_collections.ConfigDict, prefix: str = "") -> dict:
    out = {}
    for k, v in config.items():
        if isinstance(v, ml_collections.ConfigDict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out
