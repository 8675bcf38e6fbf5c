"""Tests of wgan_jax.distances and the distances experiment, against hand-computed values."""

import json
import math

import numpy as np
import pytest
import scipy.stats

from configs.experiments.distances import get_config
from wgan_jax import distances
from wgan_jax.config import ConfigError
from wgan_jax.experiments import distances_demo

# POT through wgan_jax.distances, which imports it without the slow TensorFlow backend.
ot = distances._ot()

LOG2 = math.log(2.0)

# Seed 002's dirt piles (boxes per position) and the plan tabulated there.
PG_POS, PG_BOXES = [1, 2, 3], [3, 1, 2]
PR_POS, PR_BOXES = [7, 8, 9, 10], [1, 1, 2, 2]
SEED_PLAN = np.array([[1, 1, 0, 1], [0, 0, 1, 0], [0, 0, 1, 1]], dtype=float)

# Two boxes at 0 and 4 go to 1 and 3: plan A moves each by 1, plan B each by 3.
AB_SRC, AB_DST, AB_MASS = [0, 4], [1, 3], [1, 1]
PLAN_A = np.array([[1, 0], [0, 1]], dtype=float)
PLAN_B = np.array([[0, 1], [1, 0]], dtype=float)


def _assert_feasible(plan, a_mass, b_mass):
    assert np.all(plan >= 0)
    np.testing.assert_allclose(plan.sum(axis=1), a_mass)
    np.testing.assert_allclose(plan.sum(axis=0), b_mass)


# ---------------------------------------------------------------- transport plans


def test_dirt_piles_optimal_plan_costs_42():
    plan, cost = distances.transport_plan(PG_POS, PG_BOXES, PR_POS, PR_BOXES)
    _assert_feasible(plan, PG_BOXES, PR_BOXES)
    assert cost == pytest.approx(42.0)
    assert distances.plan_cost(plan, PG_POS, PR_POS) == pytest.approx(42.0)


def test_dirt_piles_seed_plan_is_feasible_and_costs_42():
    _assert_feasible(SEED_PLAN, PG_BOXES, PR_BOXES)
    # 1->7, 1->8, 1->10, 2->9, 3->9, 3->10: 6 + 7 + 9 + 7 + 6 + 7.
    assert distances.plan_cost(SEED_PLAN, PG_POS, PR_POS) == pytest.approx(42.0)


def test_dirt_piles_w1_is_seven_per_box():
    assert distances.w1_1d(PG_POS, PR_POS, PG_BOXES, PR_BOXES) == pytest.approx(7.0)
    assert distances.w1_points(PG_POS, PR_POS, PG_BOXES, PR_BOXES) == pytest.approx(7.0)


def test_plans_a_and_b_cost_2_and_6_and_optimum_is_a():
    _assert_feasible(PLAN_A, AB_MASS, AB_MASS)
    _assert_feasible(PLAN_B, AB_MASS, AB_MASS)
    assert distances.plan_cost(PLAN_A, AB_SRC, AB_DST) == pytest.approx(2.0)
    assert distances.plan_cost(PLAN_B, AB_SRC, AB_DST) == pytest.approx(6.0)
    plan, cost = distances.transport_plan(AB_SRC, AB_MASS, AB_DST, AB_MASS)
    assert cost == pytest.approx(2.0)
    np.testing.assert_allclose(plan, PLAN_A)


def test_transport_plan_in_2d():
    # Unit masses at the corners of a unit square, each sent one step right: cost 4 * 1.
    a = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    plan, cost = distances.transport_plan(a, np.ones(4), a + [1.0, 0.0], np.ones(4))
    assert cost == pytest.approx(4.0)
    _assert_feasible(plan, np.ones(4), np.ones(4))


def test_transport_plan_rejects_bad_masses():
    with pytest.raises(ValueError, match="total masses"):
        distances.transport_plan([0, 1], [1, 1], [0, 1], [1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        distances.transport_plan([0, 1], [2, -1], [0], [1])
    with pytest.raises(ValueError, match="shape"):
        distances.transport_plan([0, 1], [1], [0], [1])
    with pytest.raises(ValueError, match="plan must have shape"):
        distances.plan_cost(np.ones((2, 2)), [0, 1, 2], [0, 1])


# ---------------------------------------------------------------- KL and JS


def test_kl_and_js_hand_values():
    p, q = [0.5, 0.5], [0.9, 0.1]
    # KL = .5 ln(.5/.9) + .5 ln(.5/.1) = .5 ln(25/9) = ln(5/3).
    assert distances.kl(p, q) == pytest.approx(math.log(5 / 3))
    # M = (.7, .3); KL(p||M) = .5 ln(25/21); KL(q||M) = .9 ln(9/7) + .1 ln(1/3).
    expected_js = 0.5 * (0.5 * math.log(25 / 21)) + 0.5 * (
        0.9 * math.log(9 / 7) + 0.1 * math.log(1 / 3)
    )
    assert distances.js(p, q) == pytest.approx(expected_js)
    assert distances.js(p, q) == pytest.approx(distances.js(q, p))


def test_kl_js_normalise_counts():
    assert distances.kl([1, 1], [9, 1]) == pytest.approx(math.log(5 / 3))
    assert distances.js([2, 2], [9, 1]) == pytest.approx(distances.js([0.5, 0.5], [0.9, 0.1]))


def test_js_symmetric_and_bounded_on_random_histograms():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.random(8), rng.random(8)
        p[rng.random(8) < 0.3] = 0.0
        p[0] = max(p[0], 1e-3)  # keep a positive sum
        value = distances.js(p, q)
        assert value == pytest.approx(distances.js(q, p))
        assert 0.0 <= value <= LOG2


def test_disjoint_supports():
    p, q = [0.3, 0.7, 0.0, 0.0], [0.0, 0.0, 0.4, 0.6]
    assert distances.js(p, q) == pytest.approx(LOG2)
    assert distances.kl(p, q) == math.inf
    assert distances.kl(q, p) == math.inf


def test_kl_inf_only_where_p_has_mass_q_lacks():
    assert distances.kl([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == 0.0
    assert distances.kl([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(math.log(2))
    assert distances.kl([0.25, 0.25, 0.5], [0.5, 0.5, 0.0]) == math.inf
    assert distances.js([0.2, 0.8], [0.2, 0.8]) == 0.0


@pytest.mark.parametrize(
    "p, q, match",
    [
        ([0.5, 0.5], [1.0], "same shape"),
        ([-0.1, 1.1], [0.5, 0.5], "non-negative"),
        ([0.0, 0.0], [0.5, 0.5], "positive sum"),
        ([np.nan, 1.0], [0.5, 0.5], "finite"),
        ([], [], "non-empty"),
    ],
)
def test_kl_js_reject_bad_input(p, q, match):
    for fn in (distances.kl, distances.js):
        with pytest.raises(ValueError, match=match):
            fn(p, q)


# ---------------------------------------------------------------- W1


def test_w1_1d_matches_scipy_and_pot():
    rng = np.random.default_rng(1)
    for n, m in ((5, 5), (13, 7), (40, 90)):
        u, v = rng.normal(size=n), rng.normal(1.0, 2.0, size=m)
        uw, vw = rng.random(n), rng.random(m)
        ours = distances.w1_1d(u, v, uw, vw)
        assert ours == pytest.approx(scipy.stats.wasserstein_distance(u, v, uw, vw), rel=1e-10)
        pot = ot.emd2(uw / uw.sum(), vw / vw.sum(), np.abs(u[:, None] - v[None, :]))
        assert ours == pytest.approx(pot, rel=1e-8)
        assert distances.w1_1d(u, v) == pytest.approx(scipy.stats.wasserstein_distance(u, v))


def test_w1_1d_simple_values():
    assert distances.w1_1d([0.0], [3.0]) == pytest.approx(3.0)
    assert distances.w1_1d([0.0, 1.0], [0.0, 1.0]) == 0.0
    # Half the mass moves by 1: W1 = 0.5.
    assert distances.w1_1d([0.0, 1.0], [1.0]) == pytest.approx(0.5)


def test_w1_1d_rejects_bad_input():
    with pytest.raises(ValueError, match="u_weights"):
        distances.w1_1d([0.0, 1.0], [1.0], u_weights=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        distances.w1_1d([0.0, 1.0], [1.0], u_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="1-D"):
        distances.w1_1d(np.zeros((2, 2)), [1.0])
    with pytest.raises(ValueError, match="finite"):
        distances.w1_1d([np.inf], [1.0])


def test_w1_points_translated_cloud_is_exactly_the_shift():
    # For y = x + t, sum ||x_s(i) + t - x_i|| >= ||sum (x_s(i) - x_i + t)|| = n ||t|| for any
    # matching s, so the identity matching is optimal and W1 = ||t||.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 2))
    t = np.array([0.3, -0.4])
    assert distances.w1_points(x, x + t) == pytest.approx(0.5, rel=1e-9)
    y = rng.permutation(x + t)
    assert distances.w1_points(x, y) == pytest.approx(0.5, rel=1e-9)


def test_w1_points_agrees_with_w1_1d_on_the_line():
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=30), rng.uniform(size=20)
    assert distances.w1_points(u[:, None], v[:, None]) == pytest.approx(distances.w1_1d(u, v))


def test_w1_points_raises_when_solver_stops_early(monkeypatch):
    monkeypatch.setattr(distances, "_EMD_MAX_ITER", 5)
    rng = np.random.default_rng(4)
    with pytest.raises(RuntimeError, match="did not converge"):
        distances.w1_points(rng.normal(size=(60, 2)), rng.normal(size=(60, 2)))


def test_w1_points_rejects_mismatched_dimensions():
    with pytest.raises(ValueError, match="dimensions"):
        distances.w1_points(np.zeros((3, 2)), np.zeros((3, 3)))


# ---------------------------------------------------------------- parallel lines


def test_parallel_lines_closed_form():
    assert distances.parallel_lines(0.0) == {"w1": 0.0, "js": 0.0, "kl": 0.0}
    for theta in (-0.7, 1e-6, 2.0):
        d = distances.parallel_lines(theta)
        assert d["w1"] == pytest.approx(abs(theta))
        assert d["js"] == pytest.approx(LOG2)
        assert d["kl"] == math.inf


@pytest.mark.parametrize("theta", [-0.7, -0.1, 0.3, 1.0])
def test_parallel_lines_empirical_matches_closed_form_off_zero(theta):
    est = distances.parallel_lines_empirical(theta, 400, np.random.default_rng(5))
    exact = distances.parallel_lines(theta)
    # Sampled vertical positions only add to the cost, by O(n^-1/2) in quadrature.
    assert exact["w1"] <= est["w1"] <= exact["w1"] + 0.01
    assert est["js"] == pytest.approx(LOG2)
    assert est["kl"] == math.inf


def test_parallel_lines_empirical_at_zero_is_near_zero():
    est = distances.parallel_lines_empirical(0.0, 400, np.random.default_rng(6))
    assert est["w1"] < 0.05
    assert est["js"] < 0.02
    assert 0.0 <= est["kl"] < 0.1


# ---------------------------------------------------------------- the experiment


def test_distances_demo_tiny_run(tmp_path):
    config = get_config("tiny")
    distances_demo.run(config, str(tmp_path))
    for name in ("distances_parallel_lines.png", "distances_dirt_piles.png",
                 "distances_plans_ab.png"):
        assert (tmp_path / name).stat().st_size > 1000
    results = json.loads((tmp_path / "results.json").read_text())

    dirt = results["dirt_piles"]
    assert dirt["optimal_cost_boxes"] == pytest.approx(42.0)
    assert dirt["seed_plan_cost_boxes"] == pytest.approx(42.0)
    assert dirt["w1_normalised"] == pytest.approx(7.0)
    assert dirt["w1_1d"] == pytest.approx(7.0)
    ab = results["plans_ab"]
    assert (ab["plan_a_cost"], ab["plan_b_cost"], ab["optimal_cost"]) == pytest.approx((2, 6, 2))

    rows = results["parallel_lines"]
    assert [r["theta"] for r in rows] == list(config.empirical_thetas)
    for r in rows:
        if r["theta"] == 0.0:
            assert r["closed_form"] == {"w1": 0.0, "js": 0.0, "kl": 0.0}
        else:
            assert r["closed_form"]["kl"] == "inf" and r["empirical"]["kl"] == "inf"
            assert r["empirical"]["js"] == pytest.approx(LOG2)
            assert r["empirical"]["w1"] == pytest.approx(abs(r["theta"]), abs=0.02)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("theta_max", -2.0, "theta_min"),
        ("num_thetas", 2, "num_thetas"),
        ("empirical_thetas", (), "empirical_thetas"),
        ("empirical_n", 1, "empirical_n"),
        ("bin_width", 0.0, "bin_width"),
        ("y_bins", 0, "y_bins"),
    ],
)
def test_distances_demo_rejects_bad_config(tmp_path, field, value, match):
    config = get_config("tiny")
    config[field] = value
    with pytest.raises(ConfigError, match=match):
        distances_demo.run(config, str(tmp_path))


def test_config_rejects_unknown_variant():
    with pytest.raises(ConfigError, match="unknown config variant"):
        get_config("huge")
