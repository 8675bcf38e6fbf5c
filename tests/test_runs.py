"""One run per workdir, and nothing a run wrote lost or mixed: the hold, reruns of finished
runs, config changes on resume, events after a hard kill, checkpoint checksums, non-finite
values wherever first seen."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import jax
import numpy as np
import pytest
from etils import epath

from configs import wgan_gp
from wgan_jax import checkpoint, train, workdir
from wgan_jax.method import Method, config_with
from wgan_jax.metrics import NonFiniteError, check_finite_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(steps=2, **overrides):
    c = wgan_gp.get_config()
    c.num_train_steps, c.batch_size, c.model.toy_hidden = steps, 8, 8
    c.optimizer.lr_schedule = "constant"
    c.log_every_steps, c.checkpoint_every_steps = 1, 2
    c.eval.toy.every_steps = c.eval.samples.every_steps = 2
    c.eval.toy.num_samples = c.eval.toy.w1_samples = 100
    return config_with(overrides, base=c)


def snapshot(root):
    """{relative path: bytes} of every file under `root`."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def restored(config, wd):
    mngr = checkpoint.manager(os.path.join(wd, "checkpoints"))
    return checkpoint.restore_latest(mngr, Method.from_config(config).init_state())


# --- the hold -----------------------------------------------------------------------------------

def test_hold_refuses_a_live_holder_and_takes_over_dead_ones(tmp_path, caplog):
    a = workdir.Hold(str(tmp_path), wait=0).acquire()
    with pytest.raises(workdir.WorkdirBusyError) as e:
        workdir.Hold(str(tmp_path), wait=0).acquire()
    msg = str(e.value)
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in msg and "\n" not in msg
    a.release()
    assert not (tmp_path / workdir.LOCK_NAME).exists()
    lock = tmp_path / workdir.LOCK_NAME
    # Another host: judged by its heartbeat's age.
    rec = {"token": "x", "host": "elsewhere", "boot_id": "b", "pid": 1, "state": "running"}
    lock.write_text(json.dumps(dict(rec, heartbeat=time.time())))
    with pytest.raises(workdir.WorkdirBusyError, match="pid 1 on host elsewhere"):
        workdir.Hold(str(tmp_path), wait=0, stale_after=60).acquire()
    lock.write_text(json.dumps(dict(rec, heartbeat=time.time() - 61)))
    with caplog.at_level("WARNING"):
        b = workdir.Hold(str(tmp_path), wait=0, stale_after=60).acquire()
    assert any("taking over" in r.getMessage() for r in caplog.records)
    assert json.loads(lock.read_text())["token"] == b.token
    b.release()


def test_object_store_hold_written_then_read_back(tmp_path, monkeypatch):
    # gs:// has no exclusive create: the record is written, read back after a pause, and the run
    # holds the workdir only if its own token survived. The same code on a local folder.
    def remote(**kw):
        h = workdir.Hold(str(tmp_path), wait=0, poll=0.05, heartbeat_every=0.05, **kw)
        h.remote = True
        return h

    lock = tmp_path / workdir.LOCK_NAME
    a = remote().acquire()
    assert json.loads(lock.read_text())["token"] == a.token
    beat = json.loads(lock.read_text())["heartbeat"]
    time.sleep(0.3)
    assert json.loads(lock.read_text())["heartbeat"] > beat  # the heartbeat rewrites it
    with pytest.raises(workdir.WorkdirBusyError, match=f"pid {os.getpid()}"):
        remote().acquire()
    a.release()
    assert not lock.exists()
    # Two runs writing at once: the one whose record is replaced during the pause refuses.
    other = {"token": "other", "host": "elsewhere", "boot_id": "b", "pid": 7,
             "state": "running", "heartbeat": time.time()}
    real_sleep = time.sleep

    def a_concurrent_write_lands(seconds):
        if not lock.read_text().count('"other"'):
            lock.write_text(json.dumps(other))
        real_sleep(seconds)

    monkeypatch.setattr(workdir.time, "sleep", a_concurrent_write_lands)
    with pytest.raises(workdir.WorkdirBusyError, match="pid 7 on host elsewhere"):
        remote().acquire()
    assert json.loads(lock.read_text())["token"] == "other"


def test_a_replacement_waits_for_a_run_saving_on_its_way_out(tmp_path):
    old = workdir.Hold(str(tmp_path), wait=0).acquire()
    old.stopping()
    with pytest.raises(workdir.WorkdirBusyError, match="saving on its way out"):
        workdir.Hold(str(tmp_path), wait=0.3, poll=0.05).acquire()
    released = threading.Event()

    def finish_saving():
        time.sleep(0.5)
        released.set()
        old.release()

    threading.Thread(target=finish_saving).start()
    new = workdir.Hold(str(tmp_path), wait=30, poll=0.05).acquire()
    assert released.is_set()  # it waited for the old run, it did not take over
    new.release()


def test_a_run_whose_hold_was_taken_over_stops_before_writing(tmp_path):
    h = workdir.Hold(str(tmp_path), wait=0, heartbeat_every=0.05).acquire()
    h.check()
    (tmp_path / workdir.LOCK_NAME).write_text(json.dumps({"token": "other", "pid": 1}))
    assert h.lost.wait(10)
    with pytest.raises(workdir.HoldLostError, match="took over"):
        h.check()
    h.release()  # leaves the other run's record alone
    assert json.loads((tmp_path / workdir.LOCK_NAME).read_text())["token"] == "other"


def test_preemption_marks_the_hold_stopping_before_its_save(tmp_path, monkeypatch):
    from wgan_jax import distributed
    states = {}
    save = checkpoint.save

    def spy(mngr, step, state):
        states[step] = json.loads((tmp_path / workdir.LOCK_NAME).read_text())["state"]
        save(mngr, step, state)

    class StopAt3(distributed.Preemption):
        def reached(self, step):
            return step == 3

    monkeypatch.setattr(checkpoint, "save", spy)
    monkeypatch.setattr(train, "Preemption", StopAt3)
    result = train.train_and_evaluate(tiny(10), str(tmp_path))
    assert result.preempted and states == {2: "running", 3: "stopping"}
    assert not (tmp_path / workdir.LOCK_NAME).exists()  # released


# --- reruns and resumes -------------------------------------------------------------------------

def test_rerun_of_a_finished_run_changes_nothing_and_resume_records_changes(tmp_path, caplog):
    first = train.train_and_evaluate(tiny(2), str(tmp_path))
    before = snapshot(tmp_path)
    assert json.loads(before["final_metrics.json"])["train"] == first.train != {}
    for steps in (2, 1):  # the same command, and a shorter one
        with caplog.at_level("WARNING"):
            again = train.train_and_evaluate(tiny(steps), str(tmp_path))
        assert again.complete and again.step == 2 and again.train == first.train
        assert snapshot(tmp_path) == before
    assert any("complete at step 2" in r.getMessage() and "num_train_steps above 2"
               in r.getMessage() for r in caplog.records)
    # Longer, with other cadences: resumes, and the history says what changed.
    train.train_and_evaluate(tiny(4, log_every_steps=2, **{"eval.toy.num_samples": 50}),
                             str(tmp_path))
    history = [json.loads(line) for line in
               (tmp_path / workdir.HISTORY_NAME).read_text().splitlines()]
    assert [h["start_step"] for h in history] == [0, 2]
    assert history[1]["changes"] == {"num_train_steps": [2, 4], "log_every_steps": [1, 2],
                                     "eval.toy.num_samples": [100, 50]}
    assert json.loads((tmp_path / "config.json").read_text())["num_train_steps"] == 4
    assert json.loads((tmp_path / "final_metrics.json").read_text())["step"] == 4


def test_resume_with_a_config_that_changes_training_is_refused_in_one_line(tmp_path):
    train.train_and_evaluate(tiny(2), str(tmp_path))
    before = snapshot(tmp_path)
    for overrides, expected in [
            ({"dataset": "8gaussians"}, 'dataset "25gaussians" -> "8gaussians"'),
            ({"model.toy_depth": 4, "optimizer.name": "rmsprop"},
             'model.toy_depth 3 -> 4, optimizer.name "adam" -> "rmsprop"')]:
        with pytest.raises(workdir.ConfigMismatchError) as e:
            train.train_and_evaluate(tiny(4, **overrides), str(tmp_path))
        assert expected in str(e.value) and "\n" not in str(e.value)
        assert snapshot(tmp_path) == before
    # Another config file altogether: still one short line.
    c = wgan_gp.get_config("mnist")
    with pytest.raises(workdir.ConfigMismatchError) as e:
        workdir.check_resume(str(tmp_path), c, 2)
    assert "\n" not in str(e.value) and len(str(e.value)) < 700 and "more" in str(e.value)


def test_which_fields_change_what_is_trained():
    assert not workdir.changes_training("num_train_steps")
    assert not workdir.changes_training("eval.inception.every_steps")
    assert workdir.changes_training("optimizer.learning_rate")
    assert workdir.changes_training("a_field_added_later")  # unknown: refused to be safe
    old = {"a": 1, "m": {"x": 2}}
    new = {"a": 1, "m": {"x": 3}, "added": "none", "other": 5}
    # A field the old config lacks compares by its default.
    assert workdir.config_changes(old, new, {"added": "none", "other": 4}) == {
        "m.x": (2, 3), "other": (4, 5)}


# --- events, checksums, non-finite ----------------------------------------------------------

def test_checksums_find_a_changed_missing_or_extra_file(tmp_path):
    d = epath.Path(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a").write_bytes(b"x" * 10000)
    (tmp_path / "b").write_bytes(b"y")
    assert checkpoint.verify_checksums(d) is None  # no checksum file yet
    checkpoint.write_checksums(d)
    assert checkpoint.verify_checksums(d) == []
    data = bytearray((tmp_path / "sub" / "a").read_bytes())
    data[5000] ^= 1  # one bit, same size
    (tmp_path / "sub" / "a").write_bytes(bytes(data))
    (tmp_path / "b").unlink()
    (tmp_path / "c").write_bytes(b"")
    assert checkpoint.verify_checksums(d) == ["b", "c", "sub/a"]


def test_a_damaged_newest_checkpoint_is_refused_and_fallback_is_opt_in(tmp_path, caplog):
    train.train_and_evaluate(tiny(4), str(tmp_path))  # steps 2 and 4
    step4 = tmp_path / "checkpoints" / "4"
    largest = max((p for p in step4.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    n = min(4096, len(data) // 2)
    start = len(data) // 2 - n // 2
    data[start:start + n] = bytes(n)  # 4 KB overwritten inside it
    data[start] ^= 0xFF  # (in case those bytes were zeros already)
    largest.write_bytes(bytes(data))
    before = snapshot(tmp_path)
    with pytest.raises(checkpoint.CheckpointCorruptError) as e:
        train.train_and_evaluate(tiny(6), str(tmp_path))
    msg = str(e.value)
    assert "checkpoint of step 4" in msg and "damaged" in msg and "\n" not in msg
    assert f"mv {step4} " in msg and "restore_fallback=True" in msg and "step 2" in msg
    assert snapshot(tmp_path) == before
    with caplog.at_level("INFO"):
        out = train.train_and_evaluate(tiny(6, restore_fallback=True), str(tmp_path))
    assert out.step == 6
    assert any("resuming from the checkpoint of step 2" in r.getMessage()
               for r in caplog.records)
    kept = tmp_path / "corrupt_checkpoint_4"
    assert snapshot(kept) == {k[len("checkpoints/4/"):]: v for k, v in before.items()
                              if k.startswith("checkpoints/4/")}


def test_non_finite_first_seen_before_an_evaluator_writes_no_picture(tmp_path, monkeypatch):
    # The generator's parameters turn NaN in step 3, while the step's metrics stay finite (and
    # are logged only at step 100): the samples evaluator, due every step, is the first to see.
    make = train.make_train_step

    def poisoned(*args, **kwargs):
        step_fn = make(*args, **kwargs)

        def run(state, batch):
            state, metrics = step_fn(state, batch)
            if int(state.step) == 3:
                state = state.replace(g_params=jax.tree.map(lambda x: x * np.nan,
                                                            state.g_params))
            return state, metrics
        return run

    monkeypatch.setattr(train, "make_train_step", poisoned)
    c = tiny(6, log_every_steps=100, **{"eval.samples.every_steps": 1, "eval.toy.every_steps": 100})
    with pytest.raises(NonFiniteError) as e:
        train.train_and_evaluate(c, str(tmp_path))
    assert str(e.value).startswith("non-finite generator parameters in the train state before "
                                   "evaluating at step 3 ")
    assert "\n" not in str(e.value)
    assert sorted(os.listdir(tmp_path / "samples")) == ["step_0000001.png", "step_0000002.png"]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2"]  # the last good one
    with pytest.raises(NonFiniteError, match=r"exact_w1 in the 'toy' evaluator's results at "
                                             r"step 7 \(exact_w1=nan\)"):
        check_finite_results({"exact_w1": np.float32("nan"), "modes_covered": 3.0}, 7,
                             "the 'toy' evaluator's results")
    with pytest.raises(NonFiniteError, match="samples in the 's' evaluator"):
        check_finite_results({"samples": np.array([[[np.inf]]])}, 7, "the 's' evaluator")
    check_finite_results({"samples": np.zeros((2, 2, 3), np.uint8)}, 7, "the 's' evaluator")


def test_bounded_waits_and_failed_saves_end_in_one_line():
    stuck = threading.Event()
    with pytest.raises(checkpoint.CheckpointError, match="did not finish within 0 s"):
        checkpoint._bounded(stuck.wait, 0.2, "the save in D")

    class Failing:
        directory = "D"

        def wait_until_finished(self):
            raise OSError("No space left on device\nmore detail")

    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.wait(Failing())
    assert "OSError: No space left on device" in str(e.value) and "\n" not in str(e.value)
    stuck.set()


def test_orbax_save_barriers_are_bounded_by_the_distributed_timeout(tmp_path, monkeypatch):
    from wgan_jax import distributed
    monkeypatch.setattr(distributed, "_timeout_s", 42.0)
    mngr = checkpoint.manager(str(tmp_path / "ckpt"))
    assert mngr._options.async_options.timeout_secs == int(checkpoint.SAVE_TIMEOUT_S + 42)
    mngr.close()


def _event_steps(wd):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    steps = []
    for name in sorted(os.listdir(wd)):
        if name.startswith("events.out.tfevents"):
            for ev in EventFileLoader(os.path.join(wd, name)).Load():
                if any(v.tag == "em_distance" for v in ev.summary.value):
                    steps.append(ev.step)
    return steps


def test_two_runs_one_workdir_kill_9_events_and_takeover(tmp_path, caplog):
    """A live run refuses a second one and can be read (as score does); SIGKILLed, its events
    hold every step up to its last checkpoint; the next run takes over and finishes."""
    from test_preemption import run_py_cmd, subprocess_env
    from test_preemption import tiny as preemption_tiny
    wd = tmp_path / "run"
    env = subprocess_env(devices=1)
    first = subprocess.Popen(run_py_cmd(wd, steps=100_000, every=1), cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (wd / "checkpoints" / "3").is_dir():
            assert first.poll() is None and time.monotonic() < deadline, "no step 3"
            time.sleep(0.1)
        first.send_signal(signal.SIGSTOP)  # frozen, alive: a live holder that writes nothing
        second = subprocess.run(run_py_cmd(wd, steps=5, every=1), cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=240)
        assert second.returncode == 2, second.stderr[-3000:]
        errors = [ln for ln in second.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and f"pid {first.pid} " in errors[0]
        assert "Traceback" not in second.stderr
        lock = (wd / workdir.LOCK_NAME).read_text()
        # Read-only use of a live run (wgan_jax.score's restore): no hold needed, nothing moved.
        _, seen = restored(preemption_tiny(5), str(wd))
        assert seen >= 3 and (wd / workdir.LOCK_NAME).read_text() == lock
        first.send_signal(signal.SIGKILL)
        first.send_signal(signal.SIGCONT)
    finally:
        first.kill()
        first.wait(timeout=60)
    last = checkpoint.manager(str(wd / "checkpoints")).latest_step()
    steps = _event_steps(wd)
    assert set(range(1, last + 1)) <= set(steps), (last, steps)
    end = last + 2
    with caplog.at_level("WARNING"):  # in-process: one interpreter start less
        out = train.train_and_evaluate(preemption_tiny(end, every=1), str(wd))
    assert out.step == end and not out.complete
    assert any(f"taking over {wd} from pid {first.pid} " in r.getMessage()
               for r in caplog.records)
    assert json.loads((wd / "final_metrics.json").read_text())["step"] == end
    _, step = restored(preemption_tiny(end), str(wd))
    assert step == end
