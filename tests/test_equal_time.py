"""The equal-wall-time comparison: minutes from the logged wall times, the critic's estimate per
loss (EM, or the GAN's Jensen-Shannon estimate), correlations, and flat curves."""
import json
import math

import numpy as np
import pytest

from wgan_jax import writers
from wgan_jax.experiments import equal_time


def _fake_run(path, loss, seconds_per_step, distance, critic_loss, monkeypatch):
    """A workdir with `critic_loss`/`em_distance` at steps 1..300 and the distance every 50."""
    clock = {"t": 1000.0}
    monkeypatch.setattr(writers.time, "time", lambda: clock["t"])
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"loss": loss}))
    w = writers.TensorBoardWriter(str(path))
    for step in range(1, 301):
        clock["t"] = 1000.0 + 30.0 + step * seconds_per_step  # 30 s of compilation first
        w.write_scalars(step, {"critic_loss": critic_loss(step),
                               "em_distance": -critic_loss(step)})
        if step % 50 == 0:
            w.write_scalars(step, {"frechet_classifier_distance": distance(step)})
    w.close()


def test_curves_minutes_and_correlations(tmp_path, monkeypatch):
    _fake_run(tmp_path / "w", "wasserstein", 2.0, lambda s: 500.0 - s,
              lambda s: -(5.0 - s / 100.0), monkeypatch)
    _fake_run(tmp_path / "g", "gan_nonsaturating", 0.5, lambda s: 654.0,
              lambda s: 1e-5, monkeypatch)
    out = equal_time.run({"wgan": str(tmp_path / "w"), "gan": str(tmp_path / "g")},
                         str(tmp_path / "out"), window=1)
    w, g = out["runs"]
    assert w["steps"] == [50, 100, 150, 200, 250, 300]
    # minutes since the first logged step (step 1), not since the file was opened
    np.testing.assert_allclose(w["minutes"], [(s - 1) * 2.0 / 60 for s in w["steps"]])
    np.testing.assert_allclose(w["estimate_at_eval"], [5.0 - s / 100.0 for s in w["steps"]])
    assert w["estimate"] == "em_distance" and g["estimate"] == "js_estimate"
    assert w["correlation_estimate_vs_distance"]["pearson"] == pytest.approx(1.0)
    assert w["correlation_estimate_vs_distance"]["spearman"] == pytest.approx(1.0)
    np.testing.assert_allclose(g["estimate_at_eval"], math.log(2.0) - 0.5e-5)
    assert "correlation_estimate_vs_distance" not in g and "constant" in g["correlation_note"]
    # the GAN ran 4x faster: the common time is its 299 * 0.5 s; the WGAN's best distance
    # within it is at step 50 (its step 100 came at 3.3 min)
    assert out["common_minutes"] == pytest.approx(299 * 0.5 / 60)
    assert w["best_distance_within_common_minutes"] == 450.0
    assert (tmp_path / "out" / "equal_time.png").stat().st_size > 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())["runs"][0]["name"] == "wgan"


def test_cli_refuses_bad_runs(tmp_path):
    with pytest.raises(SystemExit, match="NAME=WORKDIR"):
        equal_time.main(["--out", str(tmp_path), "--run", "nodir"])
    with pytest.raises(SystemExit, match="not a directory"):
        equal_time.main(["--out", str(tmp_path), "--run", f"a={tmp_path / 'missing'}"])
