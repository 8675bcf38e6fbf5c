"""Checkpoints of the train state with Orbax: save every N steps, keep a few, resume the latest.

Each step, once Orbax has finalized it, gets a checksum file (`<step>/sha256sums.json`: the
sha256 of every file of the step, written by process 0); a restore checks it and refuses a
step whose files changed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading

import flax
import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

from wgan_jax import distributed
from wgan_jax.state import TrainState


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the configured model."""


class CheckpointCorruptError(CheckpointError):
    """A saved step's files do not match the checksums written when it was saved."""


CHECKSUMS = "sha256sums.json"


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

    def _finalize_checkpoint(self, step: int) -> None:
        # Runs in Orbax's finalize thread once the step's files are committed (renamed into
        # place), on every process. Orbax's own version only logs a failed commit (the step
        # then silently never appears); raising here makes `wait` report it. (Its other job,
        # a metric of time saved by preemption, never applies: reached_preemption is False.)
        if jax.process_index() != 0:
            return
        try:
            self.check_for_errors()
        except Exception as e:
            raise CheckpointError(f"saving the checkpoint of step {step} in {self.directory} "
                                  f"failed: {_one_line(e)}") from e
        step_dir = epath.Path(self.directory) / str(step)
        if step_dir.exists():
            write_checksums(step_dir)


def manager(directory: str, max_to_keep: int = 3, *,
            clean: bool = False) -> ocp.CheckpointManager:
    """A CheckpointManager in `directory` (created if missing) keeping `max_to_keep` steps.

    `clean`: first remove what interrupted saves left (the training run, holding its workdir;
    never a reader such as wgan_jax.score, which would delete a live run's save in progress).
    """
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
    if clean and not remote:
        remove_partial_saves(directory)
    # Orbax bounds a whole save (writing, then the barriers where the processes wait for each
    # other) by one timeout: SAVE_TIMEOUT_S to write, plus --distributed_timeout_s to wait.
    timeout = int(SAVE_TIMEOUT_S + distributed.timeout_s())
    return _Manager(
        directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, cleanup_tmp_directories=clean and remote,
            async_options=ocp.AsyncOptions(timeout_secs=timeout)))


def remove_partial_saves(directory: str) -> None:
    """Delete the temporary folders of interrupted saves in local `directory` (process 0)."""
    if jax.process_index() != 0 or not os.path.isdir(directory):
        return
    for name in sorted(os.listdir(directory)):
        if ".orbax-checkpoint-tmp" in name:
            logging.warning("removing %s, left by a save that did not finish", name)
            shutil.rmtree(os.path.join(directory, name))


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def save(mngr: ocp.CheckpointManager, step: int, state: TrainState) -> None:
    """Save the state's arrays at `step` (asynchronously; `wait` before reading), by all
    processes together. A failed save (this one, or the previous one still finishing) raises
    CheckpointError in one line."""
    try:
        mngr.save(step, args=ocp.args.StandardSave(flax.serialization.to_state_dict(state)))
    except CheckpointError:
        raise
    except Exception as e:  # orbax, tensorstore and the OS raise many types
        raise CheckpointError(f"saving the checkpoint of step {step} in {mngr.directory} "
                              f"failed: {_one_line(e)}") from e


SAVE_TIMEOUT_S = 600.0  # s to write one checkpoint


def wait(mngr: ocp.CheckpointManager, timeout: float = SAVE_TIMEOUT_S) -> None:
    """Wait (at most `timeout` s) for the save in flight to be written and finalized; raise
    CheckpointError in one line if it failed or did not end in time."""
    _bounded(mngr.wait_until_finished, timeout, f"the save in {mngr.directory}")


def close(mngr: ocp.CheckpointManager, timeout: float = SAVE_TIMEOUT_S) -> None:
    """`wait`, then shut the manager's threads down, each within `timeout` s."""
    wait(mngr, timeout)
    _bounded(mngr.close, timeout, f"closing the checkpoints in {mngr.directory}")


def _bounded(fn, timeout: float, what: str) -> None:
    # In a daemon thread: a wait that never returns (a peer gone, a storage call stuck) must
    # neither hang the run nor its interpreter's exit.
    errors: list[BaseException] = []

    def target():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 (handed to the caller)
            errors.append(e)

    t = threading.Thread(target=target, name="checkpoint-wait", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise CheckpointError(f"{what} did not finish within {timeout:.0f} s; the previous "
                              "complete checkpoint is kept. Check the storage and rerun to "
                              "resume")
    if errors:
        e = errors[0]
        if isinstance(e, CheckpointError):
            raise e
        raise CheckpointError(f"{what} failed: {_one_line(e)}; the previous complete "
                              "checkpoint is kept") from e


# ---------------------------------------------------------------------------------------------
# Checksums.

def _files(step_dir: epath.Path) -> list[epath.Path]:
    out = []
    for p in sorted(step_dir.iterdir()):  # (etils' rglob refuses `**` on every backend)
        if p.is_dir():
            out.extend(_files(p))
        elif p.name != CHECKSUMS:
            out.append(p)
    return out


def _sha256(path: epath.Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checksums(step_dir: epath.Path) -> None:
    """Write `step_dir/sha256sums.json`: {relative path: [size, sha256]} of its files."""
    sums = {str(p.relative_to(step_dir)): [p.stat().length, _sha256(p)]
            for p in _files(step_dir)}
    tmp = step_dir / f"{CHECKSUMS}.tmp"
    tmp.write_text(json.dumps(sums, indent=0, sort_keys=True))
    tmp.rename(step_dir / CHECKSUMS)  # complete, or absent


def verify_checksums(step_dir: epath.Path) -> list[str] | None:
    """The files of `step_dir` whose size or sha256 differ from its checksum file (missing and
    extra files included); None when the step has no checksum file."""
    path = step_dir / CHECKSUMS
    if not path.exists():
        return None
    try:
        sums = json.loads(path.read_text())
    except ValueError:
        return [CHECKSUMS]
    now = {str(p.relative_to(step_dir)): p for p in _files(step_dir)}
    bad = [name for name in sorted(set(sums) | set(now))
           if name not in now or name not in sums
           or now[name].stat().length != sums[name][0] or _sha256(now[name]) != sums[name][1]]
    return bad


def _verified(mngr, step: int) -> bool:
    """Check `step`'s checksums: True if they match, False (with a warning) if it has none;
    CheckpointCorruptError if they do not match."""
    step_dir = epath.Path(mngr.directory) / str(step)
    bad = verify_checksums(step_dir)
    if bad is None:
        logging.warning("the checkpoint of step %d in %s has no checksum file (saved by an older "
                        "version, or the run was killed right after saving it): restoring it "
                        "unchecked", step, mngr.directory)
        return False
    if bad:
        older = [s for s in mngr.all_steps() if s < step]
        workdir = os.path.dirname(str(mngr.directory).rstrip("/"))
        fallback = (f"to resume from step {max(older)} instead, move it aside (mv {step_dir} "
                    f"{workdir}/corrupt_checkpoint_{step}) or pass "
                    "--config.restore_fallback=True" if older else
                    "there is no older checkpoint: start a fresh --workdir")
        raise CheckpointCorruptError(
            f"the checkpoint of step {step} in {mngr.directory} is damaged: "
            f"{len(bad)} file(s) differ from their checksums ({', '.join(bad[:3])}); nothing "
            f"was restored or deleted; {fallback}")
    return True


def set_aside(mngr: ocp.CheckpointManager, step: int) -> str:
    """Move a damaged step out of the checkpoints folder (to `corrupt_checkpoint_<step>` next
    to it), by process 0; its files are kept. Returns the new path."""
    src = epath.Path(mngr.directory) / str(step)
    dst = epath.Path(mngr.directory).parent / f"corrupt_checkpoint_{step}"
    if jax.process_index() == 0:
        src.rename(dst)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(f"set_aside_{step}")
    mngr.reload()
    return str(dst)


def restore_latest(mngr: ocp.CheckpointManager, state: TrainState,
                   step: int | None = None, *, fallback: bool = False) -> tuple[TrainState, int]:
    """Restore the latest step (or `step`) into `state`'s structure, after checking its
    checksums; (state, 0) when there is none.

    A damaged step raises CheckpointCorruptError; with `fallback` it is set aside instead
    (moved out of the checkpoints folder, not deleted) and the next older step is tried.
    """
    checked = False
    if step is None:
        step = mngr.latest_step()
        while fallback and step is not None:
            try:
                _verified(mngr, step)
                checked = True
                break
            except CheckpointCorruptError as e:
                logging.warning("%s", e)
                moved = set_aside(mngr, step)
                logging.warning("restore_fallback: moved step %d to %s; trying the previous "
                                "step", step, moved)
                step = mngr.latest_step()
    elif step not in mngr.all_steps():
        raise CheckpointError(f"no checkpoint of step {step} in {mngr.directory}; there are "
                              f"{sorted(mngr.all_steps())}")
    if step is None:
        return state, 0
    if not checked:
        _verified(mngr, step)
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
            f"could not restore the checkpoint at {path} ({_one_line(e)}): it is unreadable or "
            "was written by a different config (model, optimizer or mode). Nothing was "
            "deleted: resume with the config that wrote it, move that step folder aside to "
            "resume from an older one, or start a fresh --workdir") from e
    return new_state, int(step)
