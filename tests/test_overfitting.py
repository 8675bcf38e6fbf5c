"""The overfitting report: the gap between the critic's estimate on training-subset and on
held-out reals, read back from a run's TensorBoard events."""
import json

import numpy as np
import pytest

from wgan_jax import writers
from wgan_jax.experiments import overfitting


def _fake_run(path, trainset, heldout):
    path.mkdir()
    w = writers.TensorBoardWriter(str(path))
    for step in range(25, 201, 25):
        w.write_scalars(step, {"em_distance": 1.0})  # a training metric, not read here
        w.write_scalars(step, {"em_distance_trainset": trainset(step),
                               "em_distance_heldout": heldout(step)})
    w.close()


def test_gap_and_where_it_stays_positive(tmp_path):
    # memorising: equal until step 75, then the training reals score ever higher
    _fake_run(tmp_path / "gp", lambda s: 2.0 + max(0, s - 75) / 100, lambda s: 2.0 - s / 1000)
    _fake_run(tmp_path / "clip", lambda s: 0.5, lambda s: 0.5 + (-1) ** (s // 25) * 0.01)
    out = overfitting.run({"gp": str(tmp_path / "gp"), "clip": str(tmp_path / "clip")},
                          str(tmp_path / "out"))
    gp, clip = out["runs"]
    steps = np.arange(25, 201, 25)
    assert gp["steps"] == steps.tolist()
    expected_gap = (2.0 + np.maximum(0, steps - 75) / 100) - (2.0 - steps / 1000)
    # (event files store float32)
    np.testing.assert_allclose(gp["gap"], expected_gap, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gp["relative_gap"],
                               expected_gap / (2.0 + np.maximum(0, steps - 75) / 100), rtol=1e-5)
    assert gp["gap_positive_from_step"] == 25  # heldout drops from the start here
    assert gp["final"] == pytest.approx({"step": 200, "trainset": 3.25, "heldout": 1.8,
                                         "gap": 1.45, "relative_gap": 1.45 / 3.25})
    # a gap of alternating sign, negative at the end, never stays positive
    np.testing.assert_allclose(clip["gap"], [-(-1) ** (s // 25) * 0.01 for s in steps],
                               rtol=1e-4)
    assert clip["gap_positive_from_step"] is None
    assert (tmp_path / "out" / "overfitting.png").stat().st_size > 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())["runs"][1]["name"] == "clip"


def test_a_run_without_the_heldout_evaluator_is_named(tmp_path):
    path = tmp_path / "plain"
    path.mkdir()
    w = writers.TensorBoardWriter(str(path))
    w.write_scalars(1, {"em_distance": 1.0})
    w.close()
    with pytest.raises(ValueError, match="em_distance_trainset"):
        overfitting.run({"plain": str(path)}, str(tmp_path / "out"))
    with pytest.raises(SystemExit, match="NAME=WORKDIR"):
        overfitting.main(["--out", str(tmp_path), "--run", "nodir"])
