"""Checkpoints of the train state with Orbax: save every N steps, keep a few, resume the latest."""
from __future__ import annotations

import os
import shutil

import flax
import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

from wgan_jax.state import TrainState


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the configured model."""


class _Manager(ocp.CheckpointManager):
    """Orbax's CheckpointManager, minus its own questions to JAX's preemption sync service.

    Orbax asks `reached_preemption_sync_point(step)` when it saves and again from its
    background thread when a save finalizes, with that checkpoint's step. The service keeps the
    last step it was asked about and, on a preemption notice, sets the stop step to it plus
    one: a finalize that asks about step 3 while training is at step 6 sets the stop at 4,
    which the loop never reaches, and the SIGTERM is lost. Only the training loop asks
    (`distributed.Preemption`), once per step, in order; it saves the stop step itself.
    """

    def reached_preemption(self, step: int) -> bool:  # noqa: ARG002 (Orbax's signature)
        return False


def manager(directory: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
    """A CheckpointManager in `directory` (created if missing) keeping `max_to_keep` steps."""
    if "://" not in directory:
        directory = os.path.abspath(directory)
    path = epath.Path(directory)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{directory} exists and is not a directory; pass another "
                              "--workdir or move that file away")
    # A process killed while writing leaves a `<step>.orbax-checkpoint-tmp*` folder, which
    # latest_step() ignores. Local folders are cleaned here, before anything is saved: Orbax's
    # own cleanup runs in a background thread, which test doubles of the file system (TFDS's
    # mock_data) do not reach. Remote ones are left to Orbax.
    remote = "://" in directory
    if not remote:
        remove_partial_saves(directory)
    return _Manager(
        directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, cleanup_tmp_directories=remote))


def remove_partial_saves(directory: str) -> None:
    """Delete the temporary folders of interrupted saves in local `directory` (process 0)."""
    if jax.process_index() != 0 or not os.path.isdir(directory):
        return
    for name in sorted(os.listdir(directory)):
        if ".orbax-checkpoint-tmp" in name:
            logging.warning("removing %s, left by a save that did not finish", name)
            shutil.rmtree(os.path.join(directory, name))


def save(mngr: ocp.CheckpointManager, step: int, state: TrainState) -> None:
    """Save the state's arrays at `step` (asynchronously; `wait` before reading), by all
    processes together."""
    mngr.save(step, args=ocp.args.StandardSave(flax.serialization.to_state_dict(state)))


def restore_latest(mngr: ocp.CheckpointManager, state: TrainState,
                   step: int | None = None) -> tuple[TrainState, int]:
    """Restore the latest step (or `step`) into `state`'s structure; (state, 0) when there is
    none."""
    if step is None:
        step = mngr.latest_step()
    elif step not in mngr.all_steps():
        raise CheckpointError(f"no checkpoint of step {step} in {mngr.directory}; there are "
                              f"{sorted(mngr.all_steps())}")
    if step is None:
        return state, 0
    target = flax.serialization.to_state_dict(state)
    path = os.path.join(str(mngr.directory), str(step))
    try:
        restored = mngr.restore(step, args=ocp.args.StandardRestore(target))
        mismatch = [f"{jax.tree_util.keystr(k)}: saved {getattr(a, 'shape', None)}, "
                    f"expected {getattr(b, 'shape', None)}"
                    for (k, a), b in zip(jax.tree_util.tree_leaves_with_path(restored),
                                         jax.tree.leaves(target), strict=False)
                    if getattr(a, "shape", None) != getattr(b, "shape", None)]
        if mismatch or jax.tree.structure(restored) != jax.tree.structure(target):
            raise ValueError("arrays do not match the model: " + "; ".join(mismatch[:3]))
        new_state = flax.serialization.from_state_dict(state, restored)
    except Exception as e:  # orbax raises many types for unreadable or mismatched files
        raise CheckpointError(
            f"could not restore the checkpoint at {path}: {type(e).__name__}: {e}\n"
            "It is corrupted or was written by a different config (model, optimizer or mode). "
            "Nothing was deleted: resume with the config that wrote it, move that step folder "
            "aside to resume from an older one, or start a fresh --workdir.") from e
    return new_state, int(step)
