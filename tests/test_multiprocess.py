"""The real training loop as 2 processes x 2 CPU devices, against 1 process x 4 devices."""
import os
import subprocess

import jax
import numpy as np
from test_preemption import REPO, finish, free_port, restored, run_py_cmd, subprocess_env, tiny

from wgan_jax import train


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
