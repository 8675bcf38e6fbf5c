"""Processes and preemption: start JAX's distributed runtime, and learn when to stop and save.

On a cluster (or with an explicit process layout) JAX's distributed runtime runs a preemption
sync service: XLA handles SIGTERM itself, the processes agree on one step (the largest step any
of them had reached, plus one) and `reached_preemption_sync_point(step)` is true at that step on
every process. A single process without a coordinator has no such service, and nothing to
agree with: a SIGTERM handler sets a flag that the next step reads instead.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading

import jax
from absl import logging
from jax.experimental import multihost_utils


class LayoutError(ValueError):
    """The process layout flags are incomplete or inconsistent."""


def cluster_detected() -> bool:
    """True on a multi-host Cloud TPU slice, a multi-task SLURM job, or with an explicit
    coordinator in the environment (JAX_COORDINATOR_ADDRESS)."""
    env = os.environ
    return ("," in env.get("TPU_WORKER_HOSTNAMES", "")
            or int(env.get("SLURM_NTASKS", "1")) > 1
            or bool(env.get("JAX_COORDINATOR_ADDRESS")))


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
    """Start JAX's distributed runtime when there is more than this process to talk to.

    With `coordinator_address` the layout is taken as given (all three arguments are needed);
    otherwise a detected cluster configures itself; otherwise nothing is started (one
    process). Returns whether the runtime was started.
    """
    given = (coordinator_address, num_processes, process_id)
    if any(v is not None for v in given):
        if any(v is None for v in given):
            raise LayoutError("--coordinator_address, --num_processes and --process_id go "
                             "together: pass all three, or none to detect the cluster")
        if not 0 <= process_id < num_processes:
            raise LayoutError(f"--process_id={process_id} must be in [0, --num_processes="
                             f"{num_processes})")
        jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                                   process_id=process_id)
        return True
    if cluster_detected():
        jax.distributed.initialize()  # every host runs this same command; JAX finds its peers
        return True
    return False


class Preemption:
    """`reached(step)`: whether to save at `step` and stop, asked once per step with
    consecutive step numbers (the sync protocol counts on it; nothing else may ask it, see
    `checkpoint.manager`). `sync_service`: use JAX's preemption sync service (default: when
    the distributed runtime is up)."""

    def __init__(self, sync_service: bool | None = None):
        self._signalled = threading.Event()
        self._uses_sync_service = (jax.distributed.is_initialized() if sync_service is None
                                   else sync_service)

    def reached(self, step: int) -> bool:
        """True at the step all processes save at after a preemption notice."""
        if self._uses_sync_service:
            return multihost_utils.reached_preemption_sync_point(step)
        return self._signalled.is_set()

    def _on_sigterm(self, signum, frame):  # noqa: ARG002 (signal handler signature)
        if not self._signalled.is_set():
            logging.warning("SIGTERM received: finishing this step, then saving a checkpoint "
                            "and exiting")
        self._signalled.set()

    @contextlib.contextmanager
    def watching(self):
        """While inside, SIGTERM asks for a save-and-stop instead of ending the process.

        With the distributed runtime, XLA's own handler does this (a Python handler would
        replace it), so nothing is installed; nor outside the main thread, where Python cannot
        install handlers.
        """
        if self._uses_sync_service or threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            yield self
        finally:
            signal.signal(signal.SIGTERM, previous)
