"""Errors a user can fix, and the exit status `run.py` gives each kind of failure."""
from __future__ import annotations

import errno
import os
import re

EXIT_USER = 2  # the command, its inputs or its environment need fixing: one `error:` line
EXIT_DIVERGED = 3  # a non-finite value stopped the run: one `error:` line
EXIT_SECOND_INTERRUPT = 130  # a second Ctrl-C stopped the run without saving

# OSErrors that come from the machine or the paths given, not from the code.
ENVIRONMENT_ERRNOS = frozenset({
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOENT,
    errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EIO, errno.EFBIG,
    errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT})


class UserError(Exception):
    """The command, its inputs or its environment need fixing, not the code. Subclass it (with
    any other base) to have run.py print the message as one `error:` line and exit 2."""


class WriteError(UserError, OSError):
    """Writing into the run directory failed (disk full, read-only, no permission)."""

    def __str__(self):
        return str(self.strerror)


def _known_user_errors() -> tuple[type[BaseException], ...]:
    # Classes that predate UserError; imported here, lazily, to keep this module dependency-free.
    from wgan_jax.checkpoint import CheckpointError
    from wgan_jax.config import ConfigError
    from wgan_jax.data.images import DatasetNotFoundError
    from wgan_jax.distributed import LayoutError
    from wgan_jax.quality.classifier import ClassifierWeightsError
    from wgan_jax.quality.inception import InceptionWeightsError
    from wgan_jax.quality.reference import ReferenceCacheError
    return (ConfigError, DatasetNotFoundError, CheckpointError, LayoutError,
            ClassifierWeightsError, InceptionWeightsError, ReferenceCacheError)


def exit_status(exc: BaseException) -> int | None:
    """The status for `exc` (the one table of it), or None for a bug (keep the traceback)."""
    from wgan_jax.metrics import NonFiniteError
    if isinstance(exc, NonFiniteError):
        return EXIT_DIVERGED
    if isinstance(exc, (UserError, NotADirectoryError, *_known_user_errors())):
        return EXIT_USER
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        return EXIT_USER
    return None


def one_line(exc: BaseException) -> str:
    """`exc`'s message as one line (a multi-line message's lines joined by '; ')."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror and exc.filename and not isinstance(
            exc, UserError):
        text = f"{exc.strerror}: {exc.filename}"
        hint = _OS_HINTS.get(exc.errno)
        if hint:
            text += f"; {hint}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(lines)


_OS_HINTS = {
    errno.EROFS: "pass a --workdir on a writable filesystem",
    errno.EACCES: "pass a --workdir you can write to, or fix its permissions",
    errno.EPERM: "pass a --workdir you can write to, or fix its permissions",
    errno.ENOSPC: "free space on that disk (or pass another --workdir) and run the same command "
                  "again: it resumes from the last complete checkpoint",
    errno.EDQUOT: "free space within your quota and run the same command again",
    errno.ENOENT: "check the path; a --workdir must be creatable on a writable filesystem",
}


_WRITE_ERRNOS = {errno.ENOSPC: "no space left on the device",
                 errno.EDQUOT: "disk quota exceeded",
                 errno.EROFS: "read-only file system",
                 errno.EACCES: "permission denied",
                 errno.EFBIG: "file too large",
                 errno.EIO: "input/output error"}
# Orbax/TensorStore report a failed write as a ValueError with the status and the OS error code.
_TENSORSTORE_CODE = re.compile(r"os_error_code='(\d+)'")
_TENSORSTORE_PATH = re.compile(r'local file "([^"]+)"')


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def write_failure(exc: BaseException, workdir: str) -> WriteError | None:
    """A WriteError for `exc` if it (or its cause) is a failed write into the run directory
    (disk full, quota, read-only, permission), naming the path and the size a checkpoint needs;
    None otherwise."""
    for e in _chain(exc):
        code, path = None, None
        if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS:
            code, path = e.errno, e.filename
        elif isinstance(e, ValueError):
            m = _TENSORSTORE_CODE.search(str(e))
            if m and int(m.group(1)) in _WRITE_ERRNOS:
                code = int(m.group(1))
                p = _TENSORSTORE_PATH.search(str(e))
                path = p.group(1) if p else None
        if code is None:
            continue
        ckpt_dir = os.path.join(workdir, "checkpoints")
        last, size = _last_complete_checkpoint(ckpt_dir)
        where = path or workdir
        if ".orbax-checkpoint-tmp" in str(where):
            where = str(where).split(".orbax-checkpoint-tmp")[0]
            what = f"saving the checkpoint {where}"
        else:
            what = f"writing {where}"
        kept = (f"the checkpoint of step {last} is complete and kept" if last is not None
                else "no complete checkpoint yet")
        need = f"; a checkpoint needs about {_human(size)}" if size else ""
        fix = ("free space (or pass another --workdir) and run the same command again to "
               "resume" if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else
               "make the run directory writable (or pass another --workdir) and run the same "
               "command again to resume")
        return WriteError(code, f"{_WRITE_ERRNOS[code]} while {what}{need}; {kept}: {fix}")
    return None


def _last_complete_checkpoint(directory: str) -> tuple[int | None, int]:
    """(step, bytes) of the newest complete local checkpoint in `directory`; (None, 0)."""
    if "://" in directory or not os.path.isdir(directory):
        return None, 0
    steps = sorted((int(n) for n in os.listdir(directory) if n.isdigit()), reverse=True)
    if not steps:
        return None, 0
    total = 0
    for root, _, files in os.walk(os.path.join(directory, str(steps[0]))):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return steps[0], total


def _human(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


# What a collective or a barrier raises in Python when a peer process died or stopped answering
# (gloo on CPU; the coordination service's barriers and heartbeats everywhere).
_PEER_FAILURE = re.compile(
    r"Gloo .*(failed|error)|Connection (reset|closed) by peer|heartbeat timeout|"
    r"stopped sending heartbeats|Barrier timed out|DEADLINE_EXCEEDED: Barrier|"
    r"leader task was preempted", re.IGNORECASE)


def lost_peer(exc: BaseException) -> str | None:
    """The one line for `exc` if it is a multi-process run's collective or barrier failing
    because another process died, stopped answering or did not arrive in time; None otherwise.
    It names the processes the coordination service reports missing and the coordinator."""
    # The innermost match: wrappers (CheckpointError, TimeoutError) keep only its first line.
    found = [e for e in _chain(exc)
             if isinstance(e, RuntimeError) and _PEER_FAILURE.search(str(e))]
    if not found:
        return None
    text = str(found[-1])
    from wgan_jax import distributed  # jax is imported by the run that raised it
    me, count = distributed.process_index_and_count()
    address = distributed.coordinator_address()
    where = f"coordinator {address}: " if address else ""
    missing = sorted(set(_missing_tasks(text)) - {me})
    again = ("start every process again with the same command: they resume from the last "
             "complete checkpoint")
    barrier = _BARRIER_ID.search(text)
    if barrier and missing:
        reached = _BARRIER_REACHED.search(text)
        reached = f", {reached.group(1)} processes reached it" if reached else ""
        return (f"process {me} stopped: {_names(missing)} of this {count}-process run did not "
                f"reach the barrier {barrier.group(1)} in time ({where}DEADLINE_EXCEEDED: "
                f"barrier timed out{reached}); if it is still running it is slower than "
                f"--distributed_timeout_s allows (raise the flag), otherwise {again}")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    who = _names(missing) if missing else "another process"
    return (f"process {me} stopped: {who} of this {count}-process run died or stopped "
            f"answering ({where}{first[:200]}); {again}")


# The coordination service's words for the tasks it gave up on, as jax 0.10-0.12 write them:
# "Some timed out task names:\n1" or "...:\n/job:jax_worker/replica:0/task:1", "The following
# tasks are unhealthy (stopped sending heartbeats):\n1".
_MISSING_LIST = re.compile(r"(?:timed out task names|tasks are unhealthy[^:]*):(.*?)(?:\n\s*\n|$)",
                           re.IGNORECASE | re.DOTALL)
TASK_NAME = re.compile(r"^(?:/job:\w+/replica:\d+/task:)?(\d+),?$")
_BARRIER_ID = re.compile(r"Barrier timed out\. Id: (\S+?)(?:::\d+)?\.\s")
_BARRIER_REACHED = re.compile(r"tasks that reached the barrier: (\d+/\d+)")


def _missing_tasks(text: str) -> list[int]:
    m = _MISSING_LIST.search(text)
    if not m:
        return []
    return [int(t.group(1)) for tok in m.group(1).split() if (t := TASK_NAME.match(tok))]


def _names(ids: list[int]) -> str:
    return ("process " if len(ids) == 1 else "processes ") + ", ".join(map(str, ids))
