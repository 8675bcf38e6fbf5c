"""The EM-vs-quality analysis: its median filter, its reading of a run's logged curve."""
import numpy as np
import pytest

from configs import wgan_gp
from wgan_jax import train
from wgan_jax.experiments import em_vs_quality


def test_median_filter_against_brute_force():
    rng = np.random.default_rng(0)
    steps = np.arange(10, 1010, 10)
    values = rng.normal(size=len(steps))
    got = em_vs_quality.median_filter(steps, values, 101)
    for i, s in enumerate(steps):
        window = [v for t, v in zip(steps, values, strict=True) if s - 50.5 <= t <= s + 50.5]
        assert got[i] == pytest.approx(np.median(window))
    # A window of one point leaves the curve as it is; a huge one flattens it to the median.
    np.testing.assert_array_equal(em_vs_quality.median_filter(steps, values, 1), values)
    assert np.all(em_vs_quality.median_filter(steps, values, 10**6) == np.median(values))


def test_reads_the_logged_em_curve_of_a_run(tmp_path):
    c = wgan_gp.get_config()
    c.num_train_steps, c.batch_size, c.model.toy_hidden = 3, 16, 8
    c.eval.toy.num_samples = c.eval.toy.w1_samples = 100
    c.log_every_steps = 1
    out = train.train_and_evaluate(c, str(tmp_path))
    steps, em = em_vs_quality.read_scalar(str(tmp_path), "em_distance")
    assert steps.tolist() == [1, 2, 3]
    assert em[-1] == pytest.approx(out.train["em_distance"], rel=1e-6)
    with pytest.raises(ValueError, match="no 'nothing' values"):
        em_vs_quality.read_scalar(str(tmp_path), "nothing")
    with pytest.raises(FileNotFoundError):
        em_vs_quality.read_scalar(str(tmp_path / "none"), "em_distance")
