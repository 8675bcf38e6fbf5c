"""The real training loop as 2 processes x 2 CPU devices: against 1 process x 4 devices, Ctrl-C,
and a process killed mid-run."""
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
from test_preemption import (
    REPO,
    finish,
    free_port,
    restored,
    run_py_cmd,
    subprocess_env,
    tiny,
    wait_for_line,
)

from wgan_jax import checkpoint, errors, train


def test_two_processes_match_one_and_share_checkpoints(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    # Steps 1-2 by one process; 3-4 by two, resuming its checkpoint (restore in the 2-process
    # layout) and saving step 4 together; then one process restores that.
    train.train_and_evaluate(tiny(2, every=2), str(two))
    os.remove(two / "final_metrics.json")
    port = free_port()
    cmd = run_py_cmd(two, steps=4, every=2)
    procs = [subprocess.Popen(cmd + [f"--coordinator_address=localhost:{port}",
                                     "--num_processes=2", f"--process_id={i}"],
                              cwd=REPO, env=subprocess_env(devices=2), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        results = [finish(p, timeout=150) for p in procs]
    finally:
        for p in procs:  # one failed: do not leave the other waiting for its peer
            if p.poll() is None:
                p.kill()
                p.communicate()
    for i, (rc, out) in enumerate(results):
        assert rc == 0, f"process {i}:\n{out[-3000:]}"
        assert f"JAX process {i} of 2" in out and "all devices: 4" in out
    assert "resuming from the checkpoint of step 2" in results[1][1]

    train.train_and_evaluate(tiny(4, every=2), str(one))
    a, step_a = restored(tiny(4), str(two))
    b, step_b = restored(tiny(4), str(one))
    assert step_a == step_b == 4
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        # gloo's all-reduce across processes sums in another order than one process does
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-7)
    # Only process 0 writes metrics: one event file per run (this process's, then process 0's).
    events = [n for n in os.listdir(two) if n.startswith("events.out.tfevents")]
    assert len(events) == 2, events
    assert (two / "final_metrics.json").exists()
    assert sorted(os.listdir(two / "samples")) == ["step_0000002.png", "step_0000004.png"]
    assert sorted(os.listdir(two / "checkpoints")) == ["2", "4"]


def _start_two(workdir, port):
    cmd = run_py_cmd(workdir, steps=100_000, every=100_000)
    return [subprocess.Popen(cmd + [f"--coordinator_address=localhost:{port}", "--num_processes=2",
                                    f"--process_id={i}", "--distributed_timeout_s=10"],
                             cwd=REPO, env=subprocess_env(devices=2), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for i in range(2)]


def test_ctrl_c_saves_together_and_a_killed_process_ends_the_other_in_one_line(tmp_path):
    run = tmp_path / "run"
    procs = _start_two(run, free_port())
    try:
        for p in procs:
            wait_for_line(p, "done in", 180)  # the first step: compiled and training together
        for p in procs:  # Ctrl-C reaches run.py, which passes it to its training process
            p.send_signal(signal.SIGINT)
        results = [finish(p, timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for i, (rc, out) in enumerate(results):
        assert rc == 0, f"process {i}:\n{out[-3000:]}"
        assert "press Ctrl-C again to stop without saving" in out and "Traceback" not in out
    (saved,) = checkpoint.manager(str(run / "checkpoints")).all_steps()
    assert saved >= 1 and f"exiting after the checkpoint of step {saved}" in results[1][1]

    # Resume together, then kill -9 process 1 (run.py; its training process dies with it).
    procs = _start_two(run, free_port())
    try:
        for p in procs:
            wait_for_line(p, "done in", 180)
        t0 = time.monotonic()
        procs[1].kill()
        procs[1].communicate()
        rc, out = finish(procs[0], timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert rc == errors.EXIT_USER, out[-3000:]
    assert time.monotonic() - t0 < 60  # missed heartbeats for --distributed_timeout_s=10
    lines = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, out[-3000:]
    # Said by the survivor's training process (its all-reduce with the dead peer failed) or,
    # when the coordination service's missed heartbeats come first, by its run.py.
    assert "process 0 stopped" in lines[0] and "died or stopped answering" in lines[0], lines[0]
    assert "resume from the last complete checkpoint" in lines[0]
    assert "Traceback" not in out and "Check failure" not in out and "Fatal" not in out
    assert checkpoint.manager(str(run / "checkpoints")).all_steps() == [saved]


# Process 1 stays alive (its heartbeats go on) but its storage is slow: it reaches the barrier
# after writing its part of the checkpoint too late.
_SLOW_PEER = """
import sys, time
import jax, numpy as np
from wgan_jax import checkpoint, distributed, errors
me, port, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
distributed.initialize(f"localhost:{port}", 2, me, timeout_s=2)
checkpoint.SAVE_TIMEOUT_S = 1.0  # the save's barriers then give up after 1 + 2 s
if me == 1:
    record = jax.monitoring.record_scalar
    def slow_storage(key, *args, **kwargs):  # Orbax's save thread, just before its barrier
        if key.endswith("commit_future_count"):
            time.sleep(30)
        return record(key, *args, **kwargs)
    jax.monitoring.record_scalar = slow_storage
mngr = checkpoint.manager(workdir)
try:
    checkpoint.save(mngr, 1, {"w": np.zeros(3, np.float32)})
    checkpoint.wait(mngr)
except Exception as e:
    print("error:", errors.lost_peer(e), flush=True)
    import os; os._exit(errors.EXIT_USER)
"""


def test_a_barrier_a_live_process_misses_names_it_and_the_coordinator(tmp_path):
    script = tmp_path / "slow_peer.py"
    script.write_text(_SLOW_PEER)
    port = free_port()
    procs = [subprocess.Popen([sys.executable, str(script), str(i), str(port),
                               str(tmp_path / "ckpt")], cwd=REPO,
                              env=dict(subprocess_env(devices=1), PYTHONPATH=REPO),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    try:
        rc, out = finish(procs[0], timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert rc == errors.EXIT_USER, out[-3000:]
    (line,) = [ln for ln in out.splitlines() if ln.startswith("error:")]
    # (which of the save's barriers it is depends on timing)
    assert re.match(r"error: process 0 stopped: process 1 of this 2-process run did not reach "
                    r"the barrier \S+ in time \(", line), line
    assert f"coordinator localhost:{port}: DEADLINE_EXCEEDED" in line, line
    assert "1/2 processes reached it" in line and "--distributed_timeout_s" in line, line
    assert not os.path.exists(tmp_path / "ckpt" / "1")
