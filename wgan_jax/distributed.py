"""Processes and preemption: start JAX's distributed runtime, and learn when to stop and save.

On a cluster (or with an explicit process layout) JAX's distributed runtime runs a preemption
sync service: XLA handles SIGTERM itself, the processes agree on one step (the largest step any
of them had reached, plus one) and `reached_preemption_sync_point(step)` is true at that step on
every process. A single process without a coordinator has no such service, and nothing to
agree with: a SIGTERM handler sets a flag that the next step reads instead.

Ctrl-C is a preemption notice too: the first SIGINT saves and stops like SIGTERM (with the
runtime, by passing a SIGTERM to XLA's handler, so that the service agrees on the step), a
second one ends the process at once with status 130. An interrupted save leaves only Orbax's
temporary folder, which the next start removes.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time

import jax
from absl import logging
from jax.experimental import multihost_utils

from wgan_jax.errors import EXIT_SECOND_INTERRUPT, EXIT_USER, UserError
from wgan_jax.supervisor import cluster_detected

_timeout_s = 300.0  # run.py's --distributed_timeout_s, once `initialize` has it


def timeout_s() -> float:
    """Seconds a process waits for the others (connecting, heartbeats, checkpoint barriers)."""
    return _timeout_s


def coordinator_address() -> str | None:
    """host:port of the running distributed runtime's coordinator; None without one."""
    from jax._src import distributed as jax_distributed  # jax keeps it nowhere public
    return getattr(jax_distributed.global_state, "coordinator_address", None)


def process_index_and_count() -> tuple[int, int]:
    """(this process's index, the number of processes)."""
    return jax.process_index(), jax.process_count()


class LayoutError(ValueError):
    """The process layout flags are incomplete or inconsistent."""


class DistributedTimeoutError(UserError, TimeoutError):
    """The coordinator or the other processes did not answer within the timeout."""


def _wait_for_coordinator(address: str, process_id: int, timeout_s: float) -> None:
    # JAX's own connect ends the process from C++ (abort, stack trace) when it times out; a
    # plain TCP probe first gives a non-zero process one line naming what it waited for.
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise DistributedTimeoutError(
                    f"process {process_id} could not reach the coordinator (process 0) at "
                    f"{address} within {timeout_s:g} s ({e.strerror or e}); start process 0 "
                    "with the same --coordinator_address, check the host and port, or raise "
                    "--distributed_timeout_s") from e
            time.sleep(0.5)


def _connect_watchdog(address: str, num_processes: int, process_id: int, timeout_s: float):
    """A timer that ends the process with one line if connecting takes longer than
    `timeout_s` (JAX's own deadline, set later, would abort with a C++ stack trace)."""
    def give_up():
        others = ("the other processes " + ", ".join(
            str(i) for i in range(num_processes) if i != process_id)
            if process_id == 0 else "process 0 and the others")
        sys.stderr.write(
            f"error: process {process_id} waited {timeout_s:g} s at the coordinator {address} "
            f"for {others} of {num_processes} to connect; start every process with the same "
            "--coordinator_address and --num_processes, or raise --distributed_timeout_s\n")
        sys.stderr.flush()
        os._exit(EXIT_USER)
    timer = threading.Timer(timeout_s, give_up)
    timer.daemon = True
    return timer


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout_s: float = 300) -> bool:
    """Start JAX's distributed runtime when there is more than this process to talk to.

    With `coordinator_address` the layout is taken as given (all three arguments are needed);
    otherwise a detected cluster configures itself; otherwise nothing is started (one
    process). Returns whether the runtime was started. Connecting, and a process that stops
    answering (missed heartbeats), give up after `timeout_s`.
    """
    global _timeout_s
    _timeout_s = float(timeout_s)
    given = (coordinator_address, num_processes, process_id)
    if any(v is not None for v in given):
        if any(v is None for v in given):
            raise LayoutError("--coordinator_address, --num_processes and --process_id go "
                             "together: pass all three, or none to detect the cluster")
        if not 0 <= process_id < num_processes:
            raise LayoutError(f"--process_id={process_id} must be in [0, --num_processes="
                             f"{num_processes})")
        if process_id != 0:
            _wait_for_coordinator(coordinator_address, process_id, timeout_s)
        watchdog = _connect_watchdog(coordinator_address, num_processes, process_id, timeout_s)
        watchdog.start()
        try:
            jax.distributed.initialize(
                coordinator_address, num_processes=num_processes, process_id=process_id,
                initialization_timeout=int(timeout_s) + 30,
                heartbeat_timeout_seconds=max(int(timeout_s), 2),
                shutdown_timeout_seconds=max(int(timeout_s), 2))
        finally:
            watchdog.cancel()
        return True
    if cluster_detected():
        # every host runs this same command; JAX finds its peers
        jax.distributed.initialize(initialization_timeout=int(timeout_s),
                                   heartbeat_timeout_seconds=max(int(timeout_s), 2))
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
        self._interrupts = 0

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

    def _on_sigint(self) -> None:
        """Called from the watcher thread for each SIGINT (see `watching`)."""
        self._interrupts += 1
        if self._interrupts >= 2:
            sys.stderr.write("stopped at once on a second Ctrl-C, without saving; the same "
                             "command resumes from the last complete checkpoint\n")
            sys.stderr.flush()
            os._exit(EXIT_SECOND_INTERRUPT)
        logging.warning("Ctrl-C: finishing this step, then saving a checkpoint and exiting; "
                        "press Ctrl-C again to stop without saving")
        if self._uses_sync_service:
            os.kill(os.getpid(), signal.SIGTERM)  # XLA's handler tells the sync service
        else:
            self._signalled.set()

    def _watch_wakeup_fd(self, sock: socket.socket) -> None:
        # The C-level handler writes each signal's number to the wakeup fd at once, even while
        # the main thread is inside a compile or a device wait, where the Python-level handler
        # would only run afterwards: this thread acts on it.
        while True:
            try:
                data = sock.recv(64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum == signal.SIGINT:
                    self._on_sigint()

    @contextlib.contextmanager
    def watching(self):
        """While inside, SIGTERM and a first Ctrl-C ask for a save-and-stop instead of ending the
        process; a second Ctrl-C exits at once (status 130).

        With the distributed runtime, XLA's own SIGTERM handler does this (a Python handler
        would replace it), so only SIGINT's is installed; outside the main thread, where Python
        cannot install handlers, nothing is.
        """
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        receiver, sender = socket.socketpair()
        sender.setblocking(False)
        previous_fd = signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
        previous_int = signal.signal(signal.SIGINT, lambda signum, frame: None)
        previous_term = (None if self._uses_sync_service
                         else signal.signal(signal.SIGTERM, self._on_sigterm))
        threading.Thread(target=self._watch_wakeup_fd, args=(receiver,), daemon=True,
                         name="sigint-watcher").start()
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous_int)
            if previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)
            signal.set_wakeup_fd(previous_fd)
            sender.close()
            receiver.shutdown(socket.SHUT_RDWR)
            receiver.close()
