"""Multi-process runs train in a child process, so that a lost peer ends in one line.

When one process of a multi-process run dies (kill -9, out of memory, a lost machine), JAX's
coordination service ends the others from C++ once the missed heartbeats pass
`--distributed_timeout_s`: an abort (status 134) with a fatal log and a stack trace, raised in a
thread Python cannot reach. So `run.py` trains in a child process and watches it: the child's
stderr is relayed line by line until the coordination service's fatal report starts, and then
the parent prints one `error:` line and exits 2. (When a collective with the dead peer fails
first, the child says it in one line itself: `errors.lost_peer`.)

Signals sent to the parent (SIGTERM from a scheduler, Ctrl-C) are passed on to the child, which
saves and stops as usual. The child has its own process group, so that a terminal's Ctrl-C
reaches it once (through the parent), and it is killed if the parent is.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys

from wgan_jax.errors import EXIT_USER, TASK_NAME

CHILD_ENV = "WGAN_JAX_TRAINING_CHILD"
PARENT_ENV = "WGAN_JAX_TRAINING_PARENT"  # the watching parent's pid

# The coordination service's fatal report, as jax 0.10-0.12 print it: glog lines (W/E/F, date,
# time, thread, file:line]) from its service, its agent or jax's client, e.g.
#   E1203 16:59:12.551991 22635 coordination_service.cc:1549] ... UNAVAILABLE: The following
#   tasks are unhealthy (stopped sending heartbeats):\n1\n...
#   F1203 16:59:12.552994 22646 client.h:80] Terminating process because the JAX distributed
#   service detected fatal errors. ...
_REPORT_START = re.compile(r"^[WEF]\d{4} [\d:.]+ +\d+ "
                           r"(coordination\w*|client|preemption_sync_manager)\.(cc|h):\d+\] ")
_STATUS = re.compile(r"\b(UNAVAILABLE|DEADLINE_EXCEEDED|INTERNAL|ABORTED|CANCELLED|NOT_FOUND|"
                     r"FAILED_PRECONDITION): ([^\[]*)")


def cluster_detected() -> bool:
    """True on a multi-host Cloud TPU slice, a multi-task SLURM job, or with an explicit
    coordinator in the environment (JAX_COORDINATOR_ADDRESS)."""
    env = os.environ
    return ("," in env.get("TPU_WORKER_HOSTNAMES", "")
            or int(env.get("SLURM_NTASKS", "1")) > 1
            or bool(env.get("JAX_COORDINATOR_ADDRESS")))


def wanted(coordinator_address: str | None) -> bool:
    """Whether this `run.py` should supervise a training child: a run with JAX's distributed
    runtime (given a coordinator, or on a detected cluster), when it is not the child itself."""
    if os.environ.get(CHILD_ENV) == "1":
        return False
    return coordinator_address is not None or cluster_detected()


def die_with_parent() -> None:
    """In the training child: be killed (SIGKILL) when the watching parent dies (Linux), so that
    killing the process a user or scheduler knows ends the training too, as it did without a
    parent. Set here rather than between fork and exec, where threads make it unsafe."""
    parent = os.environ.get(PARENT_ENV)
    if os.environ.get(CHILD_ENV) != "1" or not parent:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # the parent died before the line above
        os._exit(128 + signal.SIGKILL)


def peer_lost_message(report: list[str], process_id: int | None, address: str | None) -> str:
    """The one line for a child the coordination service ended; `report`: its fatal log."""
    tasks = sorted({int(m.group(1)) for ln in report if (m := TASK_NAME.match(ln.strip()))}
                   - {process_id})
    text = " ".join(report)
    who = (f"process {', '.join(map(str, tasks))}" if tasks
           else "process 0 (the coordinator)" if "leader task" in text and process_id != 0
           else "another process")
    status = next((m for ln in report if (m := _STATUS.search(ln))), None)
    reason = (f"{status.group(1)}: {status.group(2).split('. ')[0].strip().rstrip(':.')}"
              if status else "fatal errors")
    this = f"process {process_id}" if process_id is not None else "this process"
    where = f", coordinator {address}" if address else ""
    return (f"{this} stopped: {who} of this multi-process run died or stopped answering "
            f"(JAX's coordination service{where}: {reason}); start every process again with "
            "the same command: they resume from the last complete checkpoint")


def run(argv: list[str], process_id: int | None = None,
        coordinator_address: str | None = None) -> int:
    """Run `argv` (this `run.py` command) as the training child; return the exit status."""
    env = dict(os.environ, **{CHILD_ENV: "1", PARENT_ENV: str(os.getpid())})
    proc = subprocess.Popen([sys.executable, *argv], env=env, stderr=subprocess.PIPE,
                            process_group=0)

    def forward(signum, frame):  # noqa: ARG001 (signal handler signature)
        if proc.poll() is None:
            proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    report: list[str] = []
    said_error = False
    out = sys.stderr.buffer
    for raw in iter(proc.stderr.readline, b""):
        line = raw.decode(errors="replace")
        if report or _REPORT_START.match(line):
            report.append(line.rstrip("\n"))
            continue
        said_error = said_error or line.startswith("error: ")
        out.write(raw)
        out.flush()
    status = proc.wait()
    if report and status != 0:
        if not said_error:  # the child may have said it first (a collective that failed)
            print(f"error: {peer_lost_message(report, process_id, coordinator_address)}",
                  file=sys.stderr, flush=True)
        return EXIT_USER
    if report:  # a fatal-looking line that did not end the child: show it after all
        out.write(("\n".join(report) + "\n").encode())
        out.flush()
    if status == -signal.SIGKILL:
        print(f"error: the training process (pid {proc.pid}) was killed (SIGKILL: out of memory, "
              "or kill -9); the same command resumes from the last complete checkpoint",
              file=sys.stderr, flush=True)
        return EXIT_USER
    return 128 - status if status < 0 else status

