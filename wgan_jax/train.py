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

from wgan_jax import checkpoint, dtype_advice, errors, evaluators, visualize, writers
from wgan_jax import workdir as workdir_lib
from wgan_jax.data.feed import RealBatches
from wgan_jax.distributed import Preemption
from wgan_jax.method import Method
from wgan_jax.metrics import WindowAverage, check_finite, check_finite_results, check_finite_state
from wgan_jax.parallel import make_mesh, replicated
from wgan_jax.state import TrainState, param_count
from wgan_jax.step import make_train_step, metric_names


@dataclasses.dataclass
class RunResult:
    """What a run ends with: its last step, the last logged training metrics (averaged over
    the last logging window) and each evaluator's last results, kept apart. `preempted`: the
    run stopped early on a preemption notice, after saving the checkpoint of `step`.
    `complete`: the workdir held a run finished at `step` already; nothing was changed, and
    the metrics are those of its final_metrics.json."""

    step: int
    train: dict[str, float]
    eval: dict[str, float]
    preempted: bool = False
    complete: bool = False

    def to_json(self) -> str:
        out = dataclasses.asdict(self)
        del out["preempted"], out["complete"]  # final_metrics.json: finished runs only
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
    if not method.data.is_toy:  # a missing data set stops the run before its workdir exists
        from wgan_jax.data import images
        images.check_available(method.dataset, config.data_dir, config.source_dir)
    _prepare_workdir(workdir)
    # Nothing in the workdir is written, or cleaned, before the run holds it.
    hold = workdir_lib.hold(workdir, stale_after=config.hold_stale_seconds,
                            wait=config.hold_wait_seconds)
    try:
        return _held_run(config, method, workdir, mesh, hold)
    finally:
        hold.release()


def _held_run(config, method: Method, workdir: str, mesh, hold) -> RunResult:
    ckpt = checkpoint.manager(os.path.join(workdir, "checkpoints"), config.keep_checkpoints,
                              clean=True)
    latest = ckpt.latest_step() or 0
    # Before any restore: a config that changes what is trained is refused by name.
    changes = workdir_lib.check_resume(workdir, config, latest) if latest else {}
    done = _finished(config, workdir, ckpt, latest)
    if done is not None:
        return done
    state, start_step = _restore_or_init(method, config, workdir, mesh, ckpt, changes)
    data = RealBatches(method, mesh, start_step, data_dir=config.data_dir,
                       source_dir=config.source_dir, shuffle_buffer=config.shuffle_buffer,
                       train_subset=config.train_subset)
    preemption = Preemption()
    try:
        with preemption.watching():
            result = _loop(config, method, workdir, state, start_step, mesh, data, ckpt,
                           preemption, hold)
    except BaseException:
        data.close()
        try:  # keep the last good checkpoint: let a save in flight finish, within a bound
            checkpoint.close(ckpt, SAVE_TIMEOUT)
        except checkpoint.CheckpointError as e:
            logging.error("%s", e)
        raise
    data.close()
    checkpoint.close(ckpt, SAVE_TIMEOUT)
    if result.preempted:
        logging.warning("preempted: saved the checkpoint of step %d in %s; run the same "
                        "command again to resume from it", result.step,
                        os.path.join(workdir, "checkpoints"))
    elif jax.process_index() == 0:
        (epath.Path(workdir) / "final_metrics.json").write_text(result.to_json())
    return result


def _prepare_workdir(workdir: str) -> None:
    path = epath.Path(workdir)
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"--workdir {workdir} exists and is not a directory; "
                                     "pass a directory path")
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 (an object store's client raises its own types)
        if "://" not in workdir:
            raise
        detail = " ".join(str(e).split())[:300]
        raise errors.UserError(
            f"--workdir={workdir}: cannot reach it ({type(e).__name__}: {detail}); check the "
            "bucket name, the credentials (gcloud auth application-default login) and the "
            "network, or pass a local --workdir") from e


# Seconds a save in flight may take to finish when the run ends, before it stops with an error.
SAVE_TIMEOUT = 1800.0


def _finished(config, workdir: str, ckpt, latest: int) -> RunResult | None:
    """For a workdir whose run already reached num_train_steps and finished: say so and return
    its final metrics, changing nothing."""
    step = workdir_lib.finished_step(workdir, latest, config.num_train_steps)
    if step is None:
        return None
    final = workdir_lib.read_final_metrics(workdir)
    logging.warning("the run in %s is complete at step %d (num_train_steps=%d); nothing was "
                    "changed. To train it further, raise --config.num_train_steps above %d",
                    workdir, step, config.num_train_steps, step)
    checkpoint.close(ckpt, SAVE_TIMEOUT)
    return RunResult(step, final.get("train", {}), final.get("eval", {}), complete=True)


def _restore_or_init(method: Method, config, workdir: str, mesh, ckpt, changes):
    """(state, its step): the latest checkpoint's, or a fresh state, replicated over `mesh`;
    records the start in config.json and config_history.jsonl."""
    # Placed on the mesh before restoring: the restore target's shardings tell every process
    # which part of the saved arrays to read.
    state = jax.device_put(method.init_state(), replicated(mesh))
    logging.info("generator params: %d, critic params: %d", param_count(state.g_params),
                 param_count(state.d_params))
    state, start_step = checkpoint.restore_latest(ckpt, state, fallback=config.restore_fallback)
    if start_step:
        logging.info("resuming from the checkpoint of step %d in %s", start_step, workdir)
        for field, (old, new) in changes.items():
            logging.info("config.%s changed on resume: %r -> %r", field, old, new)
        if "num_train_steps" in changes and config.optimizer.lr_schedule != "constant":
            logging.warning("num_train_steps changed with lr_schedule=%r: the learning rate "
                            "follows the schedule of the new length from here on",
                            config.optimizer.lr_schedule)
    workdir_lib.record_start(workdir, config, start_step, changes)
    return state, start_step


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
    due = [ev for ev in evals if force or _due(step, ev.every_steps, final_step)]
    if due:  # nothing is drawn, or pictured, from non-finite parameters
        check_finite_state(state, step, "before evaluating")
    for ev in due:
        results = ev.run(state)
        check_finite_results(results, step, f"the {ev.name!r} evaluator's results")
        out.update(_write_results(writer, workdir, step, results))
    return out


def _loop(config, method: Method, workdir, state, start_step, mesh, data, ckpt,
          preemption: Preemption, hold) -> RunResult:
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

        # Asked every step, on every process, whether or not it is due to save.
        stop = preemption.reached(step)
        save_now = stop or _due(step, config.checkpoint_every_steps, final_step)
        if _due(step, config.log_every_steps, final_step) or save_now:
            last_train = window.pop()
            check_finite(last_train, step, since)
            writer.write_scalars(step, last_train)
            since = step + 1
        progress(step, last_train)
        if not stop:  # the grace period is short: evaluate on the resumed run
            last_eval.update(_evaluate(evals, state, step, final_step, writer, workdir))
        if save_now:
            hold.check()
            check_finite_state(state, step, "before saving")
            if stop:
                hold.stopping()  # a replacement job waits for this save
            # Scalars up to `step` reach the disk before its checkpoint can exist: a run
            # killed after the save resumes with no gap in its event files.
            writer.flush()
            checkpoint.save(ckpt, step, state)
            logging.info("saving the checkpoint of step %d", step)
        if stop:
            preempted_at = step
            break
    if preempted_at is not None:
        checkpoint.wait(ckpt, SAVE_TIMEOUT)
        writer.flush()
        return RunResult(preempted_at, last_train, last_eval, preempted=True)
    if start_step >= final_step:
        logging.info("nothing to train: the checkpoint is at step %d >= num_train_steps=%d",
                     start_step, final_step)
        last_eval = _evaluate(evals, state, start_step, final_step, writer, workdir,
                              force=True)
    checkpoint.wait(ckpt, SAVE_TIMEOUT)
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
