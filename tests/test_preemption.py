"""Preemption (SIGTERM) of real run.py processes, exact resume, user errors and crashed saves."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest
from jax.experimental import multihost_utils

from wgan_jax import checkpoint, distributed, train
from wgan_jax.method import Method

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"batch_size": 16, "model.toy_hidden": 16, "optimizer.lr_schedule": "constant",
        "log_every_steps": 1, "eval.toy.every_steps": 1000, "eval.samples.every_steps": 1000,
        "eval.toy.num_samples": 200, "eval.toy.w1_samples": 100}


def tiny(steps, every=3):
    from configs import wgan_gp
    c = wgan_gp.get_config()
    for k, v in dict(TINY, num_train_steps=steps, checkpoint_every_steps=every).items():
        *path, last = k.split(".")
        node = c
        for p in path:
            node = node[p]
        node[last] = v
    return c


def run_py_cmd(workdir, steps, every=3, extra=()):
    overrides = dict(TINY, num_train_steps=steps, checkpoint_every_steps=every)
    return ([sys.executable, "run.py", "--config=configs/wgan_gp.py", f"--workdir={workdir}"]
            + [f"--config.{k}={v}" for k, v in overrides.items()] + list(extra))


def subprocess_env(devices=4):
    # The same devices and compiler settings as this pytest process (conftest.py), so that a
    # subprocess's steps are bit-identical to in-process ones.
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1")
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def finish(proc, timeout):
    """(returncode, output) of `proc` within `timeout` s; SIGKILLed (and failed) after that."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"{proc.args[:3]} did not end within {timeout} s:\n{out[-3000:]}")
    return proc.returncode, out


def wait_for_line(proc, text, timeout):
    """Lines of `proc`'s output up to the first containing `text`; `proc` is killed and the
    test fails if none comes within `timeout` s."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    proc.kill()
    pytest.fail(f"no {text!r} within {timeout} s:\n{''.join(seen)[-3000:]}")


def restored(config, workdir):
    mngr = checkpoint.manager(os.path.join(workdir, "checkpoints"))
    return checkpoint.restore_latest(mngr, Method.from_config(config).init_state())


@pytest.mark.parametrize("layout", ["single", "coordinator"])
def test_sigterm_saves_exits_0_and_resume_is_bit_identical(tmp_path, layout):
    # "single": no distributed runtime, run.py's own SIGTERM flag. "coordinator": a 1-process
    # distributed runtime, where XLA's preemption sync service handles the signal.
    run = tmp_path / "run"
    extra = ([f"--coordinator_address=localhost:{free_port()}", "--num_processes=1",
              "--process_id=0"] if layout == "coordinator" else [])
    proc = subprocess.Popen(run_py_cmd(run, steps=100_000, extra=extra), cwd=REPO,
                            env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (run / "checkpoints" / "3").is_dir():  # mid-run: step 3 is done
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
    finally:
        rc, out = finish(proc, timeout=120)
    assert rc == 0, out[-3000:]
    assert "preempted: saved the checkpoint of step" in out
    assert not (run / "final_metrics.json").exists()
    stopped = checkpoint.manager(str(run / "checkpoints")).latest_step()
    assert 3 <= stopped < 1000, stopped
    end = stopped + 2
    # Resume to `end` and compare with a run that never stopped: bit for bit.
    train.train_and_evaluate(tiny(end), str(run))
    train.train_and_evaluate(tiny(end), str(tmp_path / "straight"))
    a, step_a = restored(tiny(end), str(run))
    b, step_b = restored(tiny(end), str(tmp_path / "straight"))
    assert step_a == step_b == end
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if layout == "single":
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        else:  # the distributed runtime's CPU all-reduce (gloo) sums in another order
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-7)


def test_only_the_loop_asks_the_sync_service_once_per_step_in_order(tmp_path, monkeypatch):
    # JAX's preemption sync service sets the stop step from the last step it was asked about.
    # Orbax's own asks (at save, and from its finalize thread with an older step) once set it
    # behind the loop in a real run, which then trained on after SIGTERM. Here the service is
    # a recorder that announces the stop at step 5.
    asked = []

    def sync_point(step):
        asked.append((threading.current_thread() is threading.main_thread(), step))
        return step == 5

    monkeypatch.setattr(multihost_utils, "reached_preemption_sync_point", sync_point)
    monkeypatch.setattr(train, "Preemption", lambda: distributed.Preemption(sync_service=True))
    result = train.train_and_evaluate(tiny(100, every=2), str(tmp_path))
    assert result.preempted and result.step == 5
    assert asked == [(True, s) for s in range(1, 6)]
    assert checkpoint.manager(str(tmp_path / "checkpoints")).all_steps() == [2, 4, 5]


def test_user_errors_exit_2_with_one_message(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep me")
    for cmd, message in [
            (run_py_cmd(f, steps=2), "is not a directory"),
            (run_py_cmd(tmp_path / "w", steps=2) + ["--config.n_critic=-1"],
             "config.n_critic=-1 is invalid")]:
        r = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2, r.stderr[-3000:]
        assert "error: " in r.stderr and message in r.stderr
        assert "Traceback" not in r.stderr
    assert f.read_text() == "keep me"


def test_leftover_of_a_crashed_save_is_cleaned_and_the_run_resumes(tmp_path):
    train.train_and_evaluate(tiny(2, every=2), str(tmp_path))
    # What a process killed while writing step 4 leaves: a partial temporary folder.
    tmp = tmp_path / "checkpoints" / "4.orbax-checkpoint-tmp-1234"
    (tmp / "default").mkdir(parents=True)
    (tmp / "default" / "partial").write_bytes(b"half a file")
    _, step = restored(tiny(4, every=2), str(tmp_path))
    assert step == 2  # the leftover is not a checkpoint
    train.train_and_evaluate(tiny(4, every=2), str(tmp_path))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "4"]
    _, step = restored(tiny(4, every=2), str(tmp_path))
    assert step == 4
