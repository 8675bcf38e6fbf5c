"""A run's hold on its workdir, the config it may resume with, and whether it already finished.

One run writes a workdir at a time. The run holds it through a record, `workdir/run.lock`
(host, pid, process start time, a heartbeat refreshed by a background thread), created
atomically where the file system allows it (O_EXCL locally; on gs:// written and read back with
a unique token, since object stores have no file locks). A second run on a live run's workdir
refuses; a run that died (same host: its pid is gone; another host: its heartbeat is older than
`stale_after` seconds) is taken over; a run that is saving on its way out (preemption) is
waited for, up to `wait` seconds.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from absl import logging
from etils import epath

from wgan_jax.checkpoint import CheckpointError
from wgan_jax.errors import UserError

LOCK_NAME = "run.lock"
HISTORY_NAME = "config_history.jsonl"


class WorkdirBusyError(UserError, RuntimeError):
    """Another live run holds the workdir."""


class HoldLostError(UserError, RuntimeError):
    """This run's hold on its workdir was taken over by another run (its heartbeat was late)."""


class ConfigMismatchError(CheckpointError):
    """The workdir's checkpoints were trained with a config that differs in what is trained."""


# ---------------------------------------------------------------------------------------------
# The hold.

def _boot_id() -> str:
    # Two machines can share a host name (containers, "localhost"); a pid means something only
    # on the machine, and boot, that wrote it.
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The kernel's start time of `pid` (clock ticks since boot), '' where unknown: tells a live
    process from a later one that reuses its pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _pid_alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's live process
    return not start or not _process_start(pid) or _process_start(pid) == start


class Hold:
    """This process's hold on `workdir` (see the module docstring). Use as a context manager,
    or `acquire()` ... `release()`.

    `stale_after`: seconds without a heartbeat after which another host's holder counts as
    dead. `wait`: seconds to wait for a holder that is finishing (saving on a preemption)
    before refusing. `heartbeat_every`: seconds between heartbeats (default stale_after / 5).
    """

    def __init__(self, workdir: str, *, stale_after: float = 300.0, wait: float = 120.0,
                 heartbeat_every: float | None = None, poll: float = 0.5):
        self.workdir = str(workdir)
        self.path = epath.Path(workdir) / LOCK_NAME
        self.remote = "://" in self.workdir
        self.stale_after, self.wait, self.poll = stale_after, wait, poll
        self.heartbeat_every = heartbeat_every or max(0.5, stale_after / 5)
        self.token = uuid.uuid4().hex
        self.state = "running"
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()

    def record(self) -> dict[str, Any]:
        pid = os.getpid()
        return {"token": self.token, "host": socket.gethostname(), "boot_id": _boot_id(),
                "pid": pid, "process_start": _process_start(pid), "state": self.state,
                "heartbeat": time.time()}

    # -- file access --------------------------------------------------------------------------
    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _create(self) -> bool:
        """Create the record if there is none; True when this process holds it."""
        data = json.dumps(self.record())
        if not self.remote:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return True
        if self.path.exists():
            return False
        self.path.write_text(data)
        time.sleep(min(1.0, self.poll))  # a concurrent writer's object replaces ours by now
        rec = self._read()
        return bool(rec) and rec.get("token") == self.token

    def _write(self) -> None:
        data = json.dumps(self.record())
        if self.remote:
            self.path.write_text(data)
            return
        tmp = f"{self.path}.{self.token}.tmp"
        with open(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, self.path)  # readers never see half a record

    # -- verdicts -----------------------------------------------------------------------------
    def holder_is_alive(self, rec: Mapping[str, Any]) -> bool:
        """Whether the run that wrote `rec` still runs: its pid on this machine, else the age
        of its heartbeat."""
        if rec.get("host") == socket.gethostname() and rec.get("boot_id") == _boot_id():
            return _pid_alive(int(rec["pid"]), str(rec.get("process_start", "")))
        return time.time() - float(rec.get("heartbeat", 0)) <= self.stale_after

    def describe(self, rec: Mapping[str, Any]) -> str:
        age = time.time() - float(rec.get("heartbeat", 0))
        return (f"pid {rec.get('pid')} on host {rec.get('host')} (last heartbeat {age:.0f} s "
                "ago)")

    def acquire(self) -> Hold:
        """Take the hold, or raise WorkdirBusyError naming the live holder."""
        deadline = time.monotonic() + self.wait
        said_waiting = False
        unreadable_since = None
        while True:
            if self._create():
                break
            rec = self._read()
            if rec is None:  # just removed, or being written: look again shortly
                unreadable_since = unreadable_since or time.monotonic()
                if time.monotonic() - unreadable_since > max(5.0, 4 * self.poll):
                    logging.warning("taking over %s: it is unreadable (left by a run killed "
                                    "while writing it)", self.path)
                    self._remove_if(None)
                time.sleep(self.poll)
                continue
            unreadable_since = None
            if not self.holder_is_alive(rec):
                logging.warning("taking over %s from %s, which no longer runs",
                                self.workdir, self.describe(rec))
                self._remove_if(rec.get("token"))
                continue
            if rec.get("state") == "stopping" and time.monotonic() < deadline:
                if not said_waiting:
                    logging.warning("waiting up to %.0f s for the run of %s to finish saving "
                                    "and release %s", deadline - time.monotonic(),
                                    self.describe(rec), self.workdir)
                    said_waiting = True
                time.sleep(self.poll)
                continue
            raise WorkdirBusyError(
                f"{self.workdir} is in use by another run ({self.describe(rec)}"
                f"{', saving on its way out' if rec.get('state') == 'stopping' else ''}); "
                "wait for it to end or stop it, or pass another --workdir (if that run is "
                f"dead on another machine, delete {self.path})")
        self._thread = threading.Thread(target=self._beat, name="workdir-heartbeat",
                                        daemon=True)
        self._thread.start()
        return self

    def _remove_if(self, token: str | None) -> None:
        # Re-read first: another new run may have taken it over in the meantime.
        rec = self._read()
        if (rec.get("token") if rec else None) == token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_every):
            try:
                with self._write_lock:
                    if self._stop.is_set():
                        return
                    rec = self._read()
                    if not rec or rec.get("token") != self.token:
                        logging.error("another run took over %s (this run's heartbeat was "
                                      "late); this run stops before its next write",
                                      self.workdir)
                        self.lost.set()
                        return
                    self._write()
            except OSError as e:  # a transient storage error: the next beat tries again
                logging.warning("could not refresh %s: %s", self.path, e)

    def check(self) -> None:
        """Raise HoldLostError if another run took the workdir over."""
        if self.lost.is_set():
            raise HoldLostError(
                f"another run took over {self.workdir} because this run's heartbeat was more "
                f"than {self.stale_after:.0f} s late; this run stopped without writing more. "
                "Run one job per workdir")

    def stopping(self) -> None:
        """Mark the run as finishing (saving on its way out): a replacement waits for it."""
        with self._write_lock:
            self.state = "stopping"
            if not self.lost.is_set() and self._thread is not None:
                with contextlib.suppress(OSError):
                    self._write()

    def release(self) -> None:
        """Stop the heartbeat and remove the record (if it is still this run's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
            with self._write_lock, contextlib.suppress(OSError):
                self._remove_if(self.token)

    def __enter__(self) -> Hold:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class NoHold:
    """What processes other than 0 keep: process 0 holds the workdir for the whole run."""

    def check(self) -> None:
        pass

    def stopping(self) -> None:
        pass

    def release(self) -> None:
        pass


def hold(workdir: str, *, stale_after: float = 300.0, wait: float = 120.0) -> Hold | NoHold:
    """Take `workdir` for this run: process 0 takes the hold, and every process learns its
    verdict, so that all start or all stop with WorkdirBusyError."""
    if jax.process_count() == 1:
        return Hold(workdir, stale_after=stale_after, wait=wait).acquire()
    from jax.experimental import multihost_utils
    taken, error = None, None
    if jax.process_index() == 0:
        try:
            taken = Hold(workdir, stale_after=stale_after, wait=wait).acquire()
        except Exception as e:  # noqa: BLE001 (re-raised below, after the others know)
            error = e
    ok = int(multihost_utils.broadcast_one_to_all(np.int32(error is None)))
    if error is not None:
        raise error
    if not ok:
        raise WorkdirBusyError(f"{workdir} is in use by another run; process 0 says which")
    return taken or NoHold()


# ---------------------------------------------------------------------------------------------
# What a resume may change.

# Fields that change only how often something is logged, evaluated or saved, how long the run
# is, or where its inputs and caches are: a resume may change them. Every other field,
# including any added later, counts as changing what is trained, so a new field is refused
# unless it is listed here.
RESUMABLE_FIELDS = frozenset({
    "num_train_steps", "log_every_steps",
    "checkpoint_every_steps", "keep_checkpoints", "evals", "workdir", "data_dir", "source_dir",
    "compilation_cache_dir", "hold_wait_seconds", "hold_stale_seconds", "restore_fallback",
})
RESUMABLE_PREFIXES = ("eval.",)  # the evaluators' settings


def changes_training(field: str) -> bool:
    """Whether a config field (dotted name) changes what is trained (see RESUMABLE_FIELDS)."""
    return field not in RESUMABLE_FIELDS and not field.startswith(RESUMABLE_PREFIXES)


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


_MISSING = "(no such field)"


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any],
                   defaults: Mapping[str, Any] | None = None) -> dict[str, tuple[Any, Any]]:
    """{field: (old, new)} for the fields whose values differ between two JSON configs.

    A field the old config lacks compares by its value in `defaults` (the base config): a field
    added with a default that keeps the old behaviour is no change.
    """
    a, b = _flat(old), _flat(new)
    d = _flat(defaults or {})
    out = {}
    for k in sorted(set(a) | set(b)):
        va = a.get(k, d.get(k, _MISSING))
        vb = b.get(k, _MISSING)
        if va != vb:
            out[k] = (va, vb)
    return out


def _short(v: Any) -> str:
    s = json.dumps(v) if v is not _MISSING else v
    return s if len(s) <= 40 else s[:37] + "..."


def as_json(config) -> dict[str, Any]:
    """A ConfigDict as the JSON object config.json holds (tuples become lists)."""
    return json.loads(config.to_json_best_effort())


def check_resume(workdir: str, config, step: int) -> dict[str, tuple[Any, Any]]:
    """Compare `config` with the one in `workdir/config.json` before resuming from `step`.

    Raises ConfigMismatchError, in one line naming the fields (old -> new), if anything that
    changes what is trained differs; returns the other changes (to be recorded).
    """
    path = epath.Path(workdir) / "config.json"
    if not path.exists():
        logging.warning("%s has no config.json: resuming without comparing configs", workdir)
        return {}
    try:
        saved = json.loads(path.read_text())
    except ValueError as e:
        raise ConfigMismatchError(f"{path} is not valid JSON ({e}); restore it or start a "
                                  "fresh --workdir") from e
    from wgan_jax.config import base_config
    changes = config_changes(saved, as_json(config), as_json(base_config()))
    trained = {k: v for k, v in changes.items() if changes_training(k)}
    if trained:
        shown = [f"{k} {_short(a)} -> {_short(b)}" for k, (a, b) in list(trained.items())[:6]]
        more = f" and {len(trained) - 6} more" if len(trained) > 6 else ""
        raise ConfigMismatchError(
            f"{workdir} holds a run (checkpoint of step {step}) trained with a different "
            f"config: {', '.join(shown)}{more}. Resume it with its own config (only cadence "
            "and length fields such as num_train_steps, *_every_steps and eval.* may change), "
            "or pass another --workdir")
    return changes


def record_start(workdir: str, config, step: int,
                 changes: Mapping[str, tuple[Any, Any]] | None = None) -> None:
    """Write config.json (the config in effect) and append this start to config_history.jsonl:
    a fresh start (step 0) or a resume from `step` with the fields it changed (process 0)."""
    if jax.process_index() != 0:
        return
    root = epath.Path(workdir)
    (root / "config.json").write_text(config.to_json_best_effort(indent=2))
    entry = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
             "host": socket.gethostname(), "start_step": step,
             "changes": {k: [a, b] for k, (a, b) in (changes or {}).items()}}
    if step == 0:
        entry["config"] = as_json(config)
    history = root / HISTORY_NAME
    before = history.read_text() if history.exists() else ""
    history.write_text(before + json.dumps(entry) + "\n")


# ---------------------------------------------------------------------------------------------
# A finished run.

def finished_step(workdir: str, latest_step: int, num_train_steps: int) -> int | None:
    """The step a finished run ended at, when `workdir` holds one that reaches
    `num_train_steps` (its final_metrics.json written); else None."""
    if latest_step and latest_step >= num_train_steps and (
            epath.Path(workdir) / "final_metrics.json").exists():
        return latest_step
    return None


def read_final_metrics(workdir: str) -> dict[str, Any]:
    return json.loads((epath.Path(workdir) / "final_metrics.json").read_text())

