"""The GAN / WGAN / WGAN-GP comparison: helpers on hand-made numbers, a tiny end-to-end run."""
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.experiments import compare_losses as compare_config
from wgan_jax.config import ConfigError
from wgan_jax.experiments import common, compare_losses


def test_correlations_of_hand_made_sequences():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert common.correlations(x, [2 * v + 1 for v in x]) == pytest.approx(
        {"pearson": 1.0, "spearman": 1.0})
    assert common.correlations(x, [-v for v in x]) == pytest.approx(
        {"pearson": -1.0, "spearman": -1.0})
    # Monotone but not linear: Spearman sees a perfect ranking, Pearson does not.
    c = common.correlations(x, [v ** 4 for v in x])
    assert c["spearman"] == pytest.approx(1.0) and 0.8 < c["pearson"] < 1.0
    # By hand: x = (1, 2, 3), y = (1, 3, 2) -> cov 0.5 / (1 * 1) = 0.5 for values and ranks.
    assert common.correlations([1, 2, 3], [1, 3, 2]) == pytest.approx(
        {"pearson": 0.5, "spearman": 0.5})
    # Non-finite pairs are dropped; constant or too short sequences have no correlation.
    assert common.correlations([1, 2, np.nan, 3], [2, 4, 5, 6])["pearson"] == \
        pytest.approx(1.0)
    assert all(math.isnan(v) for v in common.correlations(x, [3.0] * 5).values())
    assert all(math.isnan(v) for v in common.correlations([1, 2], [2, 1]).values())
    with pytest.raises(ValueError, match="equal length"):
        common.correlations([1, 2, 3], [1, 2])


def test_aggregate_of_hand_made_numbers():
    assert compare_losses.aggregate([1.0, 2.0, 3.0]) == pytest.approx(
        {"mean": 2.0, "std": 1.0, "n": 3})  # sample std, ddof = 1
    assert compare_losses.aggregate([4.0]) == {"mean": 4.0, "std": 0.0, "n": 1}
    assert compare_losses.aggregate([2.0, np.nan, 4.0]) == pytest.approx(
        {"mean": 3.0, "std": math.sqrt(2.0), "n": 2})
    empty = compare_losses.aggregate([np.nan])
    assert empty["n"] == 0 and math.isnan(empty["mean"])
    runs = {"8gaussians": {"gan": [
        {k: v for k in compare_losses.SUMMARY_KEYS} for v in (1.0, 3.0)]}}
    summary = compare_losses.summarize(runs)
    assert summary["8gaussians"]["gan"]["modes_covered"] == pytest.approx(
        {"mean": 2.0, "std": math.sqrt(2.0), "n": 2})


def test_weight_clipping_method_keeps_the_critic_in_bounds():
    c = compare_config.get_config("tiny")
    _, d_tx = compare_losses.method(c, "wgan", "8gaussians").optimizers()
    params = {"w": jnp.array([0.5, -0.005, 0.0]), "b": jnp.array([0.009])}
    grads = jax.tree.map(lambda p: -jnp.ones_like(p), params)  # every step pushes up
    opt = d_tx.init(params)
    for _ in range(3):
        updates, opt = d_tx.update(grads, opt, params)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
    assert all(float(jnp.max(jnp.abs(x))) <= 0.01 + 1e-7 for x in jax.tree.leaves(params))
    assert float(params["w"][0]) == pytest.approx(0.01)


def test_seeds_are_stacked_and_methods_start_from_the_same_networks():
    c = compare_config.get_config("tiny")
    a = compare_losses.init_states(c, compare_losses.method(c, "gan", "8gaussians"))
    b = compare_losses.init_states(c, compare_losses.method(c, "wgan_gp", "8gaussians"))
    for x, y in zip(jax.tree.leaves(a.g_params) + jax.tree.leaves(a.d_params),
                    jax.tree.leaves(b.g_params) + jax.tree.leaves(b.d_params), strict=True):
        assert x.shape[0] == c.num_seeds
        np.testing.assert_array_equal(x, y)
    kernel = jax.tree.leaves(a.g_params)[-1]
    assert not np.array_equal(kernel[0], kernel[1])


def test_config_is_checked():
    c = compare_config.get_config("tiny")
    c.num_train_steps = 21
    with pytest.raises(ConfigError, match="multiple of eval_every"):
        compare_losses.validate_config(c)
    c = compare_config.get_config("tiny")
    c.datasets = ("swissroll",)
    with pytest.raises(ConfigError, match="no modes"):
        compare_losses.validate_config(c)
    with pytest.raises(ConfigError, match="unknown config variant"):
        compare_config.get_config("huge")


def test_method_settings_are_main_config_fields_checked_by_the_factory():
    c = compare_config.get_config("tiny")
    m = compare_losses.method(c, "wgan", "25gaussians")
    # Shared fields from the top level, the method's own on top of them.
    assert (m.dataset, m.num_train_steps, m.batch_size, m.seed) == ("25gaussians", 20, 32, 0)
    assert (m.model.toy_hidden, m.model.toy_depth, m.n_critic, m.clip_value) == (16, 3, 5, 0.01)
    assert (m.optimizer.name, m.optimizer.learning_rate, m.optimizer.eps) == (
        "rmsprop", 5e-4, 1e-10)
    assert m.step.loss == "wasserstein" and m.step.gp_weight == 0.0
    c.method.wgan.optimizer.learning_rate = -1.0
    with pytest.raises(ConfigError, match=r"optimizer\.learning_rate.*method\.wgan"):
        compare_losses.validate_config(c)
    c = compare_config.get_config("tiny")
    c.model.toy_depth = 0
    with pytest.raises(ConfigError, match=r"model\.toy_depth"):
        compare_losses.validate_config(c)
    c = compare_config.get_config("tiny")
    c.methods = ("gan", "wgan_gpp")
    with pytest.raises(ConfigError, match="wgan_gpp"):
        compare_losses.validate_config(c)


def test_tiny_run_writes_figures_table_and_json(tmp_path):
    c = compare_config.get_config("tiny")
    # Two methods cover both loss families (BCE with the label hacks, Wasserstein with GP).
    c.methods = ("gan_hacks", "wgan_gp")
    out = compare_losses.run(c, str(tmp_path))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["compare_curves_8gaussians.png", "compare_samples.png", "results.json",
                     "table.md"]
    for n in names:
        if n.endswith(".png"):
            assert (tmp_path / n).stat().st_size > 1000
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["summary"]["8gaussians"]) == {"gan_hacks", "wgan_gp"}
    assert res["w1_real_vs_real"]["8gaussians"] > 0 and res["total_cpu_s"] > 0
    for method, recs in res["runs"]["8gaussians"].items():
        assert [r["seed"] for r in recs] == [0, 1]
        for r in recs:
            cv = r["curve"]
            assert cv["step"] == [5, 10, 15, 20]
            assert len(cv["em_estimate"]) == len(cv["exact_w1"]) == 4
            assert all(w > 0 for w in cv["exact_w1"])
            assert 0 <= r["modes_covered"] <= 8 and 0 <= r["high_quality_fraction"] <= 1
            assert r["final_w1"] == cv["exact_w1"][-1]
            expect = common.correlations(cv["em_estimate"], cv["exact_w1"])
            assert r["spearman"] == pytest.approx(expect["spearman"], nan_ok=True)
        s = res["summary"]["8gaussians"][method]["final_w1"]
        assert s["mean"] == pytest.approx(np.mean([r["final_w1"] for r in recs]))
    # Same seed, same initial generator: both methods' first curve points differ only by
    # training, and seeds differ from each other.
    w = [r["curve"]["exact_w1"][0] for r in res["runs"]["8gaussians"]["wgan_gp"]]
    assert w[0] != w[1]
    table = (tmp_path / "table.md").read_text()
    assert "| 8gaussians | GAN + hacks |" in table and "| 8gaussians | WGAN-GP |" in table
    assert out["table"] == table
