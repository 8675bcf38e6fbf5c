"""`train_and_evaluate(config, workdir)`: the training loop, its writers, evaluators and
checkpoints."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from etils import epath

from wgan_jax import checkpoint, dtype_advice, evaluators, visualize, writers
from wgan_jax.data.feed import RealBatches
from wgan_jax.distributed import Preemption
from wgan_jax.method import Method
from wgan_jax.metrics import WindowAverage, check_finite
from wgan_jax.parallel import make_mesh, replicated
from wgan_jax.state import TrainState, param_count
from wgan_jax.step import make_train_step, metric_names


@dataclasses.dataclass
class RunResult:
    """What a run ends with: its last step, the last logged training metrics (averaged over
    the last logging window) and each evaluator's last results, kept apart. `preempted`: the
    run stopped early on a preemption notice, after saving the checkpoint of `step`."""

    step: int
    train: dict[str, float]
    eval: dict[str, float]
    preempted: bool = False

    def to_json(self) -> str:
        out = dataclasses.asdict(self)
        del out["preempted"]  # final_metrics.json is written for finished runs only
        return json.dumps(out, indent=2)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> RunResult:
    """Train as `config` says, writing metrics, pictures and checkpoints into `workdir`.

    Resumes from the latest checkpoint in `workdir/checkpoints` if there is one. On SIGTERM
    (a preemption notice) every process finishes its step, all save the same step and the run
    returns early with `preempted=True` once the checkpoint is written.
    """
    mesh = make_mesh()
    method = Method.from_config(config, num_devices=mesh.size)
    advice = dtype_advice.compute_dtype_warning(config.compute_dtype, jax.default_backend(),
                                                dtype_advice.cpu_flags())
    if advice:
        logging.warning(advice)
    _prepare_workdir(workdir)
    state, start_step, ckpt = _restore_or_init(method, config, workdir, mesh)
    data = RealBatches(method, mesh, start_step, data_dir=config.data_dir,
                       source_dir=config.source_dir, shuffle_buffer=config.shuffle_buffer)
    preemption = Preemption()
    try:
        with preemption.watching():
            result = _loop(config, method, workdir, state, start_step, mesh, data, ckpt,
                           preemption)
    finally:
        data.close()
        ckpt.wait_until_finished()
    if result.preempted:
        logging.warning("preempted: saved the checkpoint of step %d in %s; run the same "
                        "command again to resume from it", result.step,
                        os.path.join(workdir, "checkpoints"))
    elif jax.process_index() == 0:
        (epath.Path(workdir) / "final_metrics.json").write_text(result.to_json())
    return result


def _prepare_workdir(workdir: str) -> None:
    path = epath.Path(workdir)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"--workdir {workdir} exists and is not a directory; "
                                 "pass a directory path")
    path.mkdir(parents=True, exist_ok=True)


def _restore_or_init(method: Method, config, workdir: str, mesh):
    """(state, its step, checkpoint manager): the latest checkpoint's, or a fresh state,
    replicated over `mesh`."""
    # Placed on the mesh before restoring: the restore target's shardings tell every process
    # which part of the saved arrays to read.
    state = jax.device_put(method.init_state(), replicated(mesh))
    logging.info("generator params: %d, critic params: %d", param_count(state.g_params),
                 param_count(state.d_params))
    ckpt = checkpoint.manager(os.path.join(workdir, "checkpoints"), config.keep_checkpoints)
    state, start_step = checkpoint.restore_latest(ckpt, state)
    if start_step:
        logging.info("resuming from the checkpoint of step %d in %s", start_step, workdir)
    elif jax.process_index() == 0:
        (epath.Path(workdir) / "config.json").write_text(config.to_json_best_effort(indent=2))
    return state, start_step, ckpt


def _writer(config, workdir: str, start_step: int):
    writer = writers.create_writer(workdir, just_logging=jax.process_index() != 0)
    if start_step == 0:
        writer.write_hparams(_flat(config))
    return writer


def _due(step: int, every: int, final_step: int) -> bool:
    return step % every == 0 or step == final_step


def _write_results(writer, workdir: str, step: int, results: dict[str, Any]) -> dict[str, float]:
    """Write an evaluator's scalars and pictures (PNGs by process 0); return the scalars."""
    scalars = {k: float(v) for k, v in results.items() if np.ndim(v) == 0}
    images = {k: v for k, v in results.items() if np.ndim(v) == 3}
    if scalars:
        writer.write_scalars(step, scalars)
        logging.info("eval at step %d: %s", step, scalars)
    if images:
        if jax.process_index() == 0:
            for key, picture in images.items():
                visualize.save_png(picture, os.path.join(workdir, key, f"step_{step:07d}.png"))
        writer.write_images(step, {k: v[None] for k, v in images.items()})
    return scalars


def _evaluate(evals, state: TrainState, step: int, final_step: int, writer,
              workdir: str, *, force: bool = False) -> dict[str, float]:
    """Run the evaluators due at `step` (all with `force`); their scalars by name."""
    out: dict[str, float] = {}
    for ev in evals:
        if force or _due(step, ev.every_steps, final_step):
            out.update(_write_results(writer, workdir, step, ev.run(state)))
    return out


def _loop(config, method: Method, workdir, state, start_step, mesh, data, ckpt,
          preemption: Preemption) -> RunResult:
    train_step = make_train_step(method.step, mesh, fast_compile=method.fast_compile)
    evals = evaluators.build(config, method)
    writer = _writer(config, workdir, start_step)
    progress = writers.Progress(method.num_train_steps, writer)
    window = WindowAverage(metric_names(method.step))
    # On XLA:CPU, programs left in flight behind each other (the step, the metric merge, the next
    # batch) have been seen to hang, and collectives of several devices can deadlock: finish
    # each step before dispatching the next. The host waits for the step anyway there.
    sync_each_step = jax.default_backend() == "cpu"
    final_step = method.num_train_steps
    last_train: dict[str, float] = {}
    last_eval: dict[str, float] = {}
    since = start_step + 1
    preempted_at = None
    for step in range(start_step + 1, final_step + 1):
        with jax.profiler.StepTraceAnnotation("train", step_num=step):
            batch = data.batch(step, method.critic_iterations(step - 1))
            state, step_metrics = train_step(state, batch)
        if sync_each_step:
            jax.block_until_ready((state, step_metrics))
        window.add(step_metrics)
        progress(step)

        # Asked every step, on every process, whether or not it is due to save.
        stop = preemption.reached(step)
        save_now = stop or _due(step, config.checkpoint_every_steps, final_step)
        if _due(step, config.log_every_steps, final_step) or save_now:
            last_train = window.pop()
            check_finite(last_train, step, since)
            writer.write_scalars(step, last_train)
            since = step + 1
        if not stop:  # the grace period is short: evaluate on the resumed run
            last_eval.update(_evaluate(evals, state, step, final_step, writer, workdir))
        if save_now:
            checkpoint.save(ckpt, step, state)
        if stop:
            preempted_at = step
            break
    if preempted_at is not None:
        ckpt.wait_until_finished()
        writer.flush()
        return RunResult(preempted_at, last_train, last_eval, preempted=True)
    if start_step >= final_step:
        logging.info("nothing to train: the checkpoint is at step %d >= num_train_steps=%d",
                     start_step, final_step)
        last_eval = _evaluate(evals, state, start_step, final_step, writer, workdir,
                              force=True)
    ckpt.wait_until_finished()
    writer.flush()
    return RunResult(max(start_step, final_step), last_train, last_eval)


def _flat(config: ml_collections.ConfigDict, prefix: str = "") -> dict:
    out = {}
    for k, v in config.items():
        if isinstance(v, ml_collections.ConfigDict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out
