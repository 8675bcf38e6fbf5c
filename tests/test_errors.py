"""Every failure class of README's "When things go wrong" table, as a real `run.py` process: its
exit status, exactly one `error:` line on stderr, no traceback, and an existing run directory
left as it was. Most rows fail before anything is compiled."""
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from test_preemption import (
    REPO,
    free_port,
    restored,
    run_py_cmd,
    subprocess_env,
    tiny,
    wait_for_line,
)

from wgan_jax import checkpoint, errors, train, workdir
from wgan_jax.method import Method

TIMEOUT = 180  # s, per subprocess; a row that hangs fails instead of blocking the suite


def snapshot(workdir) -> dict:
    """Every file under `workdir`: (size, mtime) by relative path."""
    out = {}
    for root, _, files in os.walk(workdir):
        for f in files:
            st = os.stat(os.path.join(root, f))
            out[os.path.relpath(os.path.join(root, f), workdir)] = (st.st_size, st.st_mtime_ns)
    return out


def run(args, timeout=TIMEOUT, **kwargs):
    return subprocess.run(args, cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def assert_one_error(r, status, *fragments):
    """`r` exited with `status`, with exactly one `error:` line containing `fragments`."""
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == status, r.stderr[-3000:]
    assert len(lines) == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny run finished at step 2 (checkpoint 2), shared by the rows; each row checks it is
    unchanged."""
    workdir = tmp_path_factory.mktemp("finished")
    train.train_and_evaluate(tiny(2, every=2), str(workdir))
    return workdir


def base_cmd(workdir, *extra):
    return run_py_cmd(workdir, steps=2, every=2) + list(extra)


# (row of the README table, extra arguments, status, fragments of the error line)
FLAG_ROWS = [
    ("config file missing", ["--config=configs/nope.py"], 2, ["configs/nope.py", "cannot read"]),
    ("config variant unknown", ["--config=configs/wgan_gp.py:nope"], 2,
     ["unknown variant 'nope'", "choose toy"]),
    ("config field typo", ["--config.batchsize=64"], 2,
     ["--config.batchsize", 'Did you mean "batch_size"']),
    ("flag type", ["--config.batch_size=abc"], 2, ["--config.batch_size=abc"]),
    ("unknown flag", ["--workdirr=x"], 2, ["workdirr", "Did you mean: workdir"]),
    ("invalid config value", ["--config.n_critic=-1"], 2, ["config.n_critic=-1 is invalid"]),
    ("another config's checkpoint", ["--config.model.toy_hidden=32"], 2, ["checkpoint"]),
]


@pytest.mark.parametrize("name,extra,status,fragments", FLAG_ROWS, ids=[r[0] for r in FLAG_ROWS])
def test_bad_input_one_line_and_the_run_directory_is_unchanged(finished, name, extra, status,
                                                              fragments):
    before = snapshot(finished)
    # The later --config flag wins, so the missing file / unknown variant replace the default.
    r = run(base_cmd(finished, *extra))
    assert_one_error(r, status, *fragments)
    assert snapshot(finished) == before, name


def test_a_live_run_holding_the_workdir_is_named(finished, tmp_path):
    held = tmp_path / "held"
    shutil.copytree(finished, held)
    hold = workdir.Hold(str(held), wait=0).acquire()  # this test process is the live run
    try:
        before = snapshot(held)
        r = run(base_cmd(held, "--config.hold_wait_seconds=0"))
        assert_one_error(r, 2, f"pid {os.getpid()} on host {socket.gethostname()}")
        after = snapshot(held)
    finally:
        hold.release()
    # (the hold's own file is refreshed by its heartbeat; nothing else may change)
    assert {k: v for k, v in after.items() if k != workdir.LOCK_NAME} == {
        k: v for k, v in before.items() if k != workdir.LOCK_NAME}


def test_a_damaged_newest_checkpoint_is_refused_in_one_line(finished, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(finished, damaged)
    largest = max((p for p in (damaged / "checkpoints" / "2").rglob("*") if p.is_file()),
                  key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    largest.write_bytes(bytes(data))
    before = snapshot(damaged)
    r = run(run_py_cmd(damaged, steps=4, every=2))
    assert_one_error(r, 2, "checkpoint of step 2", "damaged", "no older checkpoint")
    assert snapshot(damaged) == before


def test_rerun_of_a_finished_run_changes_nothing(finished):
    before = snapshot(finished)
    r = run(base_cmd(finished))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "complete at step 2" in r.stderr and "error:" not in r.stderr, r.stderr[-3000:]
    assert snapshot(finished) == before


def test_workdir_that_cannot_be_created(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep me")
    for wd, fragment in [(f, "is not a directory"), ("/proc/wgan_run", "/proc/wgan_run")]:
        assert_one_error(run(base_cmd(wd)), 2, fragment)
    assert f.read_text() == "keep me"


def test_missing_data_set_names_the_path_and_how_to_get_it(tmp_path):
    # MNIST's original files are not on the test machines (Fashion-MNIST's are, from Debian).
    r = run([sys.executable, "run.py", "--config=configs/wgan_gp.py:mnist",
             f"--workdir={tmp_path / 'w'}", f"--config.data_dir={tmp_path / 'no_data'}",
             "--config.num_train_steps=2", "--config.batch_size=8"])
    assert_one_error(r, 2, "mnist", str(tmp_path / "no_data"), "local_tfds")
    assert not (tmp_path / "w").exists()  # stopped before creating the run directory


def test_workdir_on_an_unreachable_object_store(tmp_path):
    # No network reaches Google Cloud Storage from the test machines (and without credentials
    # a reachable one refuses): either way one line, before anything is compiled.
    r = run(base_cmd("gs://wgan-jax-no-such-bucket/run"), timeout=120)
    assert_one_error(r, 2, "--workdir=gs://wgan-jax-no-such-bucket/run: cannot reach it",
                     "credentials")


def _mount_tmpfs(path, options):
    path.mkdir(exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def _umount(path):
    subprocess.run(["umount", str(path)], capture_output=True, timeout=30)


def test_workdir_on_a_read_only_filesystem(tmp_path):
    ro = tmp_path / "ro"
    _mount_tmpfs(ro, "ro,size=1m")
    try:
        assert_one_error(run(base_cmd(ro / "run")), 2, "read-only file system", str(ro))
    finally:
        _umount(ro)


def test_coordinator_that_never_comes_up_gives_up_in_time(tmp_path):
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    r = run(base_cmd(tmp_path / "w", f"--coordinator_address=localhost:{port}",
                     "--num_processes=2", "--process_id=1", "--distributed_timeout_s=2"))
    line = assert_one_error(r, 2, f"localhost:{port}", "process 0", "--distributed_timeout_s")
    assert "within 2 s" in line
    assert time.monotonic() - t0 < 60  # imports included; the wait itself is 2 s
    assert not (tmp_path / "w").exists()  # gave up before touching the workdir


def test_diverged_run_exits_3_with_one_line(tmp_path):
    r = run(run_py_cmd(tmp_path / "w", steps=3, every=1)
            + ["--config.optimizer.learning_rate=1e9", "--config.optimizer.name=sgd"])
    assert_one_error(r, errors.EXIT_DIVERGED, "non-finite", "step")


def test_score_images_folder_with_a_file_that_is_not_an_image(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a png")
    r = run([sys.executable, "-m", "wgan_jax.score", "--images", str(tmp_path), "--dataset",
             "fashion_mnist"])
    assert_one_error(r, 2, "a.png")


def _fill(path):
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC


def test_disk_full_keeps_the_last_checkpoint_and_a_rerun_resumes(finished, tmp_path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "size=20m")
    try:
        workdir = disk / "run"
        shutil.copytree(finished, workdir)
        os.remove(workdir / "final_metrics.json")
        _fill(disk / "filler")
        before = snapshot(workdir)
        r = run(run_py_cmd(workdir, steps=4, every=2))
        line = assert_one_error(r, 2, "no space left", str(workdir),
                                "the checkpoint of step 2 is complete and kept")
        after = snapshot(workdir)
        assert {k: v for k, v in after.items() if k in before} == before, line  # nothing deleted
        os.remove(disk / "filler")
        r = run(run_py_cmd(workdir, steps=4, every=2))
        assert r.returncode == 0, r.stderr[-3000:]
        assert "resuming from the checkpoint of step 2" in r.stderr
        assert checkpoint.manager(str(workdir / "checkpoints")).all_steps() == [2, 4]
    finally:
        _umount(disk)


def test_injected_write_error_names_the_path_and_keeps_the_checkpoint(finished, tmp_path,
                                                                      monkeypatch):
    workdir = tmp_path / "run"
    shutil.copytree(finished, workdir)
    os.remove(workdir / "final_metrics.json")
    ckpt_bytes = sum(v[0] for k, v in snapshot(workdir).items() if k.startswith("checkpoints/2/"))

    def full(mngr, step, state):
        raise ValueError(  # how Orbax/TensorStore report it
            f'RESOURCE_EXHAUSTED: Error writing local file "{mngr.directory}/{step}'
            '.orbax-checkpoint-tmp/default/_sharding": No space left on device '
            "[os_error_code='28']")

    monkeypatch.setattr(checkpoint, "save", full)
    with pytest.raises(ValueError) as info:
        train.train_and_evaluate(tiny(4, every=2), str(workdir))
    e = errors.write_failure(info.value, str(workdir))
    assert isinstance(e, errors.UserError) and errors.exit_status(e) == errors.EXIT_USER
    message = str(e)
    assert f"saving the checkpoint {workdir}/checkpoints/4" in message
    assert f"about {ckpt_bytes / 1024:.1f} KB" in message  # the size of checkpoint 2
    assert "the checkpoint of step 2 is complete and kept" in message
    monkeypatch.undo()
    _, step = restored(tiny(4, every=2), str(workdir))
    assert step == 2
    assert train.train_and_evaluate(tiny(4, every=2), str(workdir)).step == 4


def test_an_unrelated_error_is_not_a_write_failure():
    assert errors.write_failure(ValueError("shapes do not match"), "/nowhere") is None
    assert errors.exit_status(ZeroDivisionError()) is None  # a bug: traceback, status 1
    assert errors.exit_status(OSError(errno.ENOSPC, "No space left on device")) == 2


def _start(workdir):
    return subprocess.Popen(run_py_cmd(workdir, steps=100_000, every=100_000), cwd=REPO,
                            env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_ctrl_c_saves_like_sigterm_and_a_second_one_stops_at_once(tmp_path):
    once, twice = tmp_path / "once", tmp_path / "twice"
    proc = _start(once)
    try:
        wait_for_line(proc, "done in", TIMEOUT)  # the first step: compiled, training
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert "press Ctrl-C again to stop without saving" in out and "Traceback" not in out
    (step,) = checkpoint.manager(str(once / "checkpoints")).all_steps()
    assert step >= 1

    proc = _start(twice)
    try:
        wait_for_line(proc, "done in", TIMEOUT)
        proc.send_signal(signal.SIGINT)
        wait_for_line(proc, "press Ctrl-C again", 60)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == errors.EXIT_SECOND_INTERRUPT, out[-3000:]
    assert "Traceback" not in out
    # The stop may land before, during or after the save: only complete steps count as
    # checkpoints, and any temporary folder is removed by the next start.
    ckpts = twice / "checkpoints"
    for name in os.listdir(ckpts) if ckpts.exists() else []:
        assert name.isdigit() or ".orbax-checkpoint-tmp" in name, name
    steps = checkpoint.manager(str(ckpts)).all_steps()
    assert all(".orbax-checkpoint-tmp" not in n for n in os.listdir(ckpts))
    fresh = Method.from_config(tiny(100_000)).init_state()
    for s in steps:
        _, restored_step = checkpoint.restore_latest(checkpoint.manager(str(ckpts)), fresh,
                                                     step=s)
        assert restored_step == s


# The coordination service's fatal reports, as a survivor of a killed peer printed them
# (jax 0.10.2): process 1 killed (seen by process 0, which hosts the service), and process 0,
# the coordinator, killed (seen by process 1).
_REPORT_PEER_DIED = """\
E1203 16:59:12.551991   22635 coordination_service.cc:1549] [6787509037225299110] Use error \
polling to propagate the following error to all tasks: UNAVAILABLE: The following tasks are \
unhealthy (stopped sending heartbeats):
1
The tasks have crashed. Check the task logs for an earlier error, or scheduler events (e.g. \
preemption, eviction) to debug further. [type.googleapis.com/tensorflow.CoordinationServiceError='']
F1203 16:59:12.552994   22646 client.h:80] Terminating process because the JAX distributed \
service detected fatal errors.
*** Check failure stack trace: ***"""
_REPORT_COORDINATOR_DIED = """\
W1203 17:04:25.543869   23585 preemption_sync_manager.cc:147] Failed to retrieve preemption \
notice from coordination service: UNAVAILABLE: Socket closed
E1203 17:04:26.012345   23590 coordination_service_agent.cc:289] Polled an error from \
coordination service (this can be an error from this or another task).
F1203 17:04:26.012999   23590 client.h:80] Terminating process because the JAX distributed \
service detected fatal errors. absl::Status: UNAVAILABLE: Failed to send RPC to coordination \
service. Either the leader task was preempted/died/restarted unexpectedly or this task is \
experiencing network issues."""


def test_a_lost_peer_is_named_in_one_line():
    from wgan_jax import supervisor
    report = _REPORT_PEER_DIED.splitlines()
    assert supervisor._REPORT_START.match(report[0])
    line = supervisor.peer_lost_message(report, 0, "host:1234")
    assert line.startswith("process 0 stopped: process 1 of this multi-process run"), line
    assert "coordinator host:1234: UNAVAILABLE: The following tasks are unhealthy" in line
    report = _REPORT_COORDINATOR_DIED.splitlines()
    assert all(supervisor._REPORT_START.match(r) for r in report)
    line = supervisor.peer_lost_message(report, 1, "host:1234")
    assert line.startswith("process 1 stopped: process 0 (the coordinator) of"), line
    assert "UNAVAILABLE: Socket closed" in line and "\n" not in line
    # Ordinary lines are relayed, not taken for a report.
    assert not supervisor._REPORT_START.match("17:04:15 step 1/100 done in 7.8 s")
    assert not supervisor._REPORT_START.match("E1203 17:04:25.5 23585 train.py:12] other")

    gloo = RuntimeError("UNKNOWN: Gloo all-reduce failed: [external/gloo/gloo/transport/tcp/"
                        "pair.cc:547] Connection closed by peer [127.0.0.1]:1446")
    line = errors.lost_peer(gloo)
    assert line.startswith("process 0 stopped: another process of this 1-process run"), line
    assert "Gloo all-reduce failed" in line
    # A barrier a live process missed (jax 0.10's words; 0.12 names tasks /job:.../task:N),
    # wrapped as Orbax and checkpoint.py wrap it: the innermost message is read.
    for name in ("2", "/job:jax_worker/replica:0/task:2"):
        barrier = RuntimeError(
            "DEADLINE_EXCEEDED: Barrier timed out. Id: _async_write_complete.7::0. This usually "
            "happens because a task triggered the barrier too early or too slowly.\n# of tasks "
            "that reached the barrier: 2/3.\nThe first task at the barrier: 0. Some timed out "
            f"task names:\n{name}\n\n\nRPC: /xla.coordination.CoordinationService/Barrier")
        try:
            try:
                raise TimeoutError("Timed out while waiting for async_write_complete barrier.") \
                    from barrier
            except TimeoutError as e:
                raise checkpoint.CheckpointError("the save failed: JaxRuntimeError: "
                                                 "DEADLINE_EXCEEDED: Barrier timed out.") from e
        except checkpoint.CheckpointError as e:
            line = errors.lost_peer(e)
        assert line.startswith("process 0 stopped: process 2 of this 1-process run did not reach "
                               "the barrier _async_write_complete.7 in time (DEADLINE_EXCEEDED: "
                               "barrier timed out, 2/3 processes reached it); if it is still "
                               "running"), line
    assert errors.lost_peer(RuntimeError("shapes do not match")) is None
    assert errors.lost_peer(ValueError("Connection reset by peer")) is None  # not a runtime one


# Each row of README's "When things go wrong" table (by the start of its first cell) and the
# tests that run it as a subprocess: run.py processes, or 2 of them for the multi-process rows.
_FLAGS = "test_errors.py::test_bad_input_one_line_and_the_run_directory_is_unchanged"
_KILLED = ("test_multiprocess.py::"
           "test_ctrl_c_saves_together_and_a_killed_process_ends_the_other_in_one_line")
_CTRL_C = "test_errors.py::test_ctrl_c_saves_like_sigterm_and_a_second_one_stops_at_once"
README_ROWS = {
    "config file missing": [_FLAGS],
    "config field typo": [_FLAGS],
    "flag of the wrong type": [_FLAGS],
    "invalid config value": [_FLAGS],
    "`--workdir` that is a file": ["test_errors.py::test_workdir_that_cannot_be_created",
                                   "test_errors.py::test_workdir_on_a_read_only_filesystem",
                                   "test_errors.py::test_workdir_on_an_unreachable_object_store"],
    "another live run holds": ["test_errors.py::test_a_live_run_holding_the_workdir_is_named"],
    "data set, classifier": [
        "test_errors.py::test_missing_data_set_names_the_path_and_how_to_get_it"],
    "resume with a config": [_FLAGS],
    "newest checkpoint damaged": [
        "test_errors.py::test_a_damaged_newest_checkpoint_is_refused_in_one_line"],
    "disk full": [
        "test_errors.py::test_disk_full_keeps_the_last_checkpoint_and_a_rerun_resumes",
        "test_errors.py::test_injected_write_error_names_the_path_and_keeps_the_checkpoint"],
    "coordinator unreachable": [
        "test_errors.py::test_coordinator_that_never_comes_up_gives_up_in_time"],
    "a process of a multi-process run dies": [_KILLED],
    "a process of a multi-process run is alive": [
        "test_multiprocess.py::test_a_barrier_a_live_process_misses_names_it_and_the_coordinator"],
    "the run diverges": ["test_errors.py::test_diverged_run_exits_3_with_one_line"],
    "rerun of a finished run": ["test_errors.py::test_rerun_of_a_finished_run_changes_nothing"],
    "SIGTERM (preemption) or one Ctrl-C": [
        _CTRL_C, "test_preemption.py::test_sigterm_saves_exits_0_and_resume_is_bit_identical",
        _KILLED],
    "second Ctrl-C": [_CTRL_C],
    "`python -m wgan_jax.score": [
        "test_errors.py::test_score_images_folder_with_a_file_that_is_not_an_image"],
}


def test_every_row_of_the_readme_table_has_its_subprocess_test():
    with open(os.path.join(REPO, "README.md")) as f:
        section = f.read().split("## When things go wrong", 1)[1].split("\n## ", 1)[0]
    rows = [ln.split("|")[1].strip() for ln in section.splitlines()
            if ln.startswith("| ") and not ln.startswith("| failure") and "---" not in ln]
    assert len(rows) >= 15, rows
    for row in rows:
        keys = [k for k in README_ROWS if row.startswith(k)]
        assert keys, f"README row without a test here: {row!r}"
        for test in README_ROWS[keys[0]]:
            path, name = test.split("::")
            with open(os.path.join(REPO, "tests", path)) as f:
                assert f"\ndef {name}(" in f.read(), test
