"""The independent critic (`w1_critic`) on distributions whose W1 is known, its estimate and
standard error, the toy floor, and the near-mode test shared with the experiments."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from wgan_jax import distances, evaluators
from wgan_jax.evaluators import toy as toy_eval
from wgan_jax.evaluators import w1_critic
from wgan_jax.method import Method, config_with
from wgan_jax.models import build_models

SHIFT = jnp.array([0.6, 0.8])  # |SHIFT| = 1: W1(N(0, I), N(SHIFT, I)) = 1 exactly
TRAINING = w1_critic.CriticTraining(steps=600, batch_size=256, learning_rate=1e-3)


@pytest.fixture(scope="module")
def fit():
    """One compiled fit of a small MLP critic on N(0, I) against N(m * SHIFT, I)."""
    models = build_models("toy", toy_hidden=64, toy_depth=3)
    return models, w1_critic.make_fit(
        models, TRAINING, lambda _, k, n: jax.random.normal(k, (n, 2)),
        lambda m, k, n: jax.random.normal(k, (n, 2)) + m * SHIFT)


def _heldout(models, params, variables, m: float, seed: int):
    k_r, k_f = jax.random.split(jax.random.PRNGKey(seed))
    real = np.asarray(jax.random.normal(k_r, (2000, 2)))
    fake = np.asarray(jax.random.normal(k_f, (2000, 2)) + m * SHIFT)
    est = w1_critic.heldout_estimate(w1_critic.critic_values(models, params, variables, real),
                                     w1_critic.critic_values(models, params, variables, fake))
    return est, distances.w1_points(real, fake)


def test_fresh_critic_recovers_a_known_w1(fit):
    models, f = fit
    params, variables, em = f(jax.random.PRNGKey(0), None, jnp.float32(1.0))
    (w1, se), exact_points = _heldout(models, params, variables, 1.0, seed=5)
    # Closed form 1; POT on the same held-out points (their own sampling noise included).
    assert abs(w1 - 1.0) < 0.1, (w1, se)
    assert abs(w1 - exact_points) < 0.1 + 3 * se
    assert 0 < se < 0.1
    assert abs(float(em[-100:].mean()) - 1.0) < 0.15  # the training-batch estimate agrees


def test_fresh_critic_on_identical_distributions_is_about_zero(fit):
    models, f = fit
    params, variables, _ = f(jax.random.PRNGKey(1), None, jnp.float32(0.0))
    (w1, se), _ = _heldout(models, params, variables, 0.0, seed=6)
    assert abs(w1) < 4 * se and abs(w1) < 0.1, (w1, se)


def test_heldout_estimate_and_its_standard_error_by_hand():
    w1, se = w1_critic.heldout_estimate([1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 1.0])
    assert w1 == pytest.approx(2.0 - 0.25)
    # sample variances 1 and 0.25 (ddof 1): sqrt(1/3 + 0.25/4)
    assert se == pytest.approx(np.sqrt(1 / 3 + 0.0625))


def test_toy_floor_is_the_exact_w1_of_two_real_draws():
    n = 300
    floor = toy_eval.real_w1_floor("25gaussians", n, seed=3)
    k0, k1 = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(3), toy_eval.FLOOR_KEY))
    from wgan_jax.data import toy
    a = np.asarray(toy.sample("25gaussians", k0, n), np.float64)
    b = np.asarray(toy.sample("25gaussians", k1, n), np.float64)
    cost = cdist(a, b)  # equal uniform weights: W1 is the optimal assignment's mean cost
    rows, cols = linear_sum_assignment(cost)
    assert floor == pytest.approx(cost[rows, cols].mean(), rel=1e-9)
    assert 0 < floor < 0.5  # sampling noise only: far below an untrained generator's W1
    assert toy_eval.real_w1_floor("25gaussians", n, seed=3) == floor  # fixed seeds


def test_near_mode_is_the_high_quality_test():
    centers, std = np.array([[0.0, 0.0], [2.0, 0.0]]), 0.1
    pts = np.array([[0.29, 0.0], [0.31, 0.0], [2.0, 0.3], [1.0, 1.0]])
    np.testing.assert_array_equal(toy_eval.near_mode(pts, centers, std), [True, False, True,
                                                                          False])
    cov = toy_eval.mode_coverage(pts, centers, std, min_fraction=0.25)
    assert cov == {"modes_covered": 2.0, "high_quality_fraction": 0.5}


@pytest.fixture(scope="module")
def toy_method():
    c = config_with({"model.toy_hidden": 16, "batch_size": 8,
                     "evals": ("toy", "w1_critic"), "eval.toy.num_samples": 50,
                     "eval.toy.w1_samples": 60, "eval.w1_critic.steps": 20,
                     "eval.w1_critic.batch_size": 16, "eval.w1_critic.num_samples": 40})
    return c, Method.from_config(c)


def test_toy_and_w1_critic_evaluators_in_the_registry(toy_method):
    c, method = toy_method
    toy_ev, w1_ev = evaluators.build(c, method)
    state = method.init_state()
    got = toy_ev.run(state)
    assert got["exact_w1_floor"] == pytest.approx(toy_eval.real_w1_floor("25gaussians", 60, 0))
    assert got["exact_w1"] > got["exact_w1_floor"]  # an untrained generator
    assert set(got) >= {"em_distance_heldout", "exact_w1", "modes_covered"}
    out = w1_ev.run(state)
    assert set(out) == {"w1_heldout", "w1_heldout_stderr"}
    assert np.isfinite(out["w1_heldout"]) and out["w1_heldout_stderr"] > 0
    assert w1_ev.run(state) == out  # fixed seeds: the same estimate for the same generator


def test_widened_mixture_w1_is_pinned_by_a_coupling_and_a_witness():
    from wgan_jax.experiments import fresh_critic_check as check
    for target in (0.05, 0.15):
        s2, lower, upper = check.widened_w1(target, n=50_000)
        assert upper == pytest.approx(target, rel=1e-12)
        assert lower <= upper * 1.01 and lower >= 0.98 * upper, (lower, upper)
    # Widened past half the modes' spacing the mode-by-mode coupling is no longer optimal.
    _, lower, upper = check.widened_w1(0.3, n=50_000)
    assert lower < 0.9 * upper


def test_fresh_critic_check_runs_and_prints_its_table(capsys):
    from wgan_jax.experiments import fresh_critic_check as check
    check.main(["--hidden", "16", "--steps", "30", "--learning_rate", "1e-3", "--batch_size",
                "32", "--one_sided", "--targets", "0.15", "--num_samples", "400"])
    out = capsys.readouterr().out
    assert "one-sided penalty" in out and "| W1 (bounds) |" in out
    row = out.strip().splitlines()[-1]
    assert row.startswith("| 0.14") and row.endswith("% |"), row
