"""Tests of the critic-surface and weight-clipping experiments: small functions on hand-made
inputs, and tiny end-to-end runs whose saved outputs are checked against recomputed values."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.experiments import clipping as clipping_config
from configs.experiments import critic_surfaces as surfaces_config
from wgan_jax import distances
from wgan_jax.config import ConfigError
from wgan_jax.data import toy
from wgan_jax.experiments import clipping, critic_surfaces, training
from wgan_jax.models import build_models

# ---------------------------------------------------------------- small functions, hand-made inputs


def test_fraction_at_bound_counts_weights_within_one_percent_of_c():
    c = 0.01
    # Within 1% of c: 0.01, -0.01, 0.00995, -0.01005. Outside: 0.0098, 0, -0.005, 0.0102.
    w = np.array([0.01, -0.01, 0.00995, -0.01005, 0.0098, 0.0, -0.005, 0.0102])
    assert clipping.fraction_at_bound(w, c) == pytest.approx(4 / 8)
    # A pytree of arrays is pooled: 4 of 8 plus 1 of 2.
    tree = {"a": w.reshape(2, 4), "b": np.array([0.01, 0.003])}
    assert clipping.fraction_at_bound(tree, c) == pytest.approx(5 / 10)
    assert clipping.fraction_at_bound(w, c, rel_tol=0.03) == pytest.approx(6 / 8)


def _two_layer_linear():
    """A 1-hidden-layer critic whose ReLU never switches off on positive inputs: D = x W1 W2."""
    w1 = np.array([[0.5, 1.0, 0.2], [0.3, 0.1, 0.7]], np.float32)
    w2 = np.array([[1.5], [-2.0], [0.5]], np.float32)
    params = {"hidden_0": {"kernel": jnp.asarray(w1), "bias": jnp.zeros(3)},
              "out": {"kernel": jnp.asarray(w2), "bias": jnp.zeros(1)}}
    real = np.array([[1.0, 2.0], [0.5, 0.5], [2.0, 1.0]], np.float32)
    fake = np.array([[3.0, 1.0], [1.0, 4.0], [0.2, 0.3]], np.float32)
    return params, w1, w2, real, fake


def test_kernel_grad_norms_match_hand_computed_linear_critic():
    params, w1, w2, real, fake = _two_layer_linear()
    assert clipping.layer_names(params) == ["hidden_0", "out"]
    # loss = (mean fake - mean real) W1 W2, so dL/dW1 = d^T W2^T and dL/dW2 = W1^T d^T.
    d = fake.mean(0) - real.mean(0)
    expected = [np.linalg.norm(d) * np.linalg.norm(w2), np.linalg.norm(w1.T @ d)]
    eps = jnp.full((3,), 0.5)
    got = clipping.kernel_grad_norms(params, jnp.asarray(real), jnp.asarray(fake), eps, 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # per_layer_grad_norms takes any gradient tree in the critic's layout.
    grads = {"hidden_0": {"kernel": np.outer(d, w2[:, 0])}, "out": {"kernel": w1.T @ d[:, None]}}
    np.testing.assert_allclose(clipping.per_layer_grad_norms(grads, ["hidden_0", "out"]),
                               expected, rtol=1e-6)


def test_critic_loss_with_penalty_on_linear_critic():
    params, w1, w2, real, fake = _two_layer_linear()
    # The input gradient is W1 W2 everywhere, so the penalty is lambda (||W1 W2|| - 1)^2.
    slope = np.linalg.norm(w1 @ w2)
    wgan = float((fake.mean(0) - real.mean(0)) @ (w1 @ w2)[:, 0])
    got = clipping.critic_loss(params, jnp.asarray(real), jnp.asarray(fake),
                               jnp.array([0.1, 0.5, 0.9]), 10.0)
    assert float(got) == pytest.approx(wgan + 10.0 * (slope - 1.0) ** 2, rel=1e-5)


def test_activation_grad_norms_match_hand_computed_linear_critic():
    params, _, w2, real, fake = _two_layer_linear()
    n = real.shape[0]
    # dL/dD is -1/n per real and +1/n per fake example; one layer back it is that times W2^T.
    out_norm = np.sqrt(2 * n) / n
    got = clipping.activation_grad_norms(params, jnp.asarray(real), jnp.asarray(fake))
    np.testing.assert_allclose(got, [out_norm * np.linalg.norm(w2), out_norm], rtol=1e-5)


def test_mlp_critic_apply_matches_flax_critic():
    models = build_models("toy", toy_hidden=8, toy_depth=3)
    params = models.critic.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))["params"]
    x = jax.random.normal(jax.random.PRNGKey(1), (10, 2))
    np.testing.assert_allclose(clipping.mlp_critic_apply(params, x),
                               models.critic.apply({"params": params}, x), rtol=1e-5, atol=1e-6)
    zeros = [jnp.zeros((10, 8))] * 3 + [jnp.zeros((10, 1))]
    np.testing.assert_allclose(clipping.mlp_critic_apply(params, x, zeros),
                               models.critic.apply({"params": params}, x), rtol=1e-5, atol=1e-6)


def test_init_inside_rescales_each_kernel_to_c():
    models = build_models("toy", toy_hidden=8, toy_depth=2)
    params = models.critic.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))["params"]
    inside = clipping._inside(params, 0.01)
    for k in clipping.kernels(inside):
        assert np.abs(k).max() == pytest.approx(0.01, rel=1e-6)


def test_fraction_moved():
    before = [np.array([0.1, 0.2, 0.3]), np.array([[1.0, 2.0]])]
    after = [np.array([0.1, 0.25, 0.3]), np.array([[1.0, -2.0]])]
    assert clipping.fraction_moved(before, after) == pytest.approx(2 / 5)
    # Float32 rounding of the clipping step (about one ulp) is not a move; 0.5% of c is.
    c = np.float32(0.01)
    ulp_off = np.nextafter(c, np.float32(0))
    assert clipping.fraction_moved([np.array([c, c])], [np.array([ulp_off, c * 0.995])]) == 0.5


def test_compare_to_w1():
    row = critic_surfaces.compare_to_w1(0.02, 0.8, 0.05)
    assert row["ratio"] == pytest.approx(0.025)
    assert row["ratio_over_lipschitz"] == pytest.approx(0.5)


def test_fixed_generator_batch_is_real_plus_noise():
    real, fake = training.fixed_generator_batch("8gaussians", jax.random.PRNGKey(0), 500,
                                                noise_std=1e-3)
    assert real.shape == fake.shape == (500, 2)
    centers = toy.mode_centers("8gaussians")
    # With tiny noise the fake points still sit on the 8 modes, but are a different draw.
    dist = np.linalg.norm(np.asarray(fake)[:, None] - centers[None], axis=-1).min(1)
    assert dist.max() < 6 * toy.mode_std("8gaussians") + 5e-3
    assert not np.allclose(real, fake, atol=1e-2)
    _, wide = training.fixed_generator_batch("8gaussians", jax.random.PRNGKey(1), 500)
    assert float(jnp.std(wide - jnp.mean(wide, 0))) > 1.0  # unit noise dominates the spread


def test_critic_trainer_follows_the_method():
    """The critic-only trainer applies the method's critic optimizer: clipping keeps every
    weight in [-c, c], and the batch EM estimate is recorded once per critic update."""
    config = surfaces_config.get_config("tiny")
    _, methods = critic_surfaces.validate_config(config)
    m = methods["clipping"]
    assert m.clip_value == 0.01 and m.optimizer.name == "rmsprop" and m.optimizer.eps == 1e-10
    assert training.critic_updates(m) == config.num_train_steps * config.n_critic
    params = m.models().critic.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))["params"]
    real, fake = training.fixed_generator_batches("8gaussians", jax.random.PRNGKey(1), 7, 16)
    params, _, em = training.make_critic_trainer(m)(params, {}, real, fake,
                                                    jax.random.PRNGKey(2))
    assert em.shape == (7,)
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(params)) <= 0.01 + 1e-7


def test_experiment_configs_are_checked():
    config = surfaces_config.get_config("tiny")
    config.method.spectral.model.toy_hidden = 32  # not the shared initial weights any more
    with pytest.raises(ConfigError, match=r"method\.spectral\.model\.toy_hidden"):
        critic_surfaces.validate_config(config)
    config = surfaces_config.get_config("tiny")
    config.method.clipping.optimizer.name = "adagrad"
    with pytest.raises(ConfigError, match=r"optimizer\.name.*method\.clipping"):
        critic_surfaces.validate_config(config)
    config = clipping_config.get_config("tiny")
    config.method.gp.gp_weight = 0.0
    with pytest.raises(ConfigError, match=r"method\.gp\.gp_weight"):
        clipping.validate_config(config)
    config = clipping_config.get_config("tiny")
    config.clip_values = (0.1, -0.01)
    with pytest.raises(ConfigError, match="clip_values"):
        clipping.validate_config(config)
    with pytest.raises(ConfigError, match="unknown config variant"):
        clipping_config.get_config("huge")


# ---------------------------------------------------------------- tiny end-to-end runs


def test_critic_surfaces_run_tiny(tmp_path):
    config = surfaces_config.get_config("tiny")
    config.datasets = ("25gaussians",)
    out = critic_surfaces.run(config, str(tmp_path))
    for name in ("critic_surfaces.png", "points.npz", "results.json"):
        assert os.path.getsize(tmp_path / name) > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["runs"] == out["runs"]
    assert set(saved["runs"]["25gaussians"]) == {"clipping", "gp", "spectral"}
    pts = np.load(tmp_path / "points.npz")
    real, fake = pts["25gaussians_real"], pts["25gaussians_fake"]
    assert real.shape == fake.shape == (config.eval_points, 2)
    w1 = distances.w1_points(real, fake)
    for row in saved["runs"]["25gaussians"].values():
        assert row["w1_exact"] == pytest.approx(w1, rel=1e-9)
        assert row["ratio"] == pytest.approx(row["em_estimate"] / w1)
        assert row["lipschitz_lower_bound"] > 0
    clip = saved["runs"]["25gaussians"]["clipping"]
    # Every weight in [-c, c] bounds each layer's operator norm by c * sqrt(fan_in * fan_out).
    c, h = config.method.clipping.clip_value, config.model.toy_hidden
    bound = c * np.sqrt(2 * h) * (c * h) ** (config.model.toy_depth - 1) * c * np.sqrt(h)
    assert 0 < clip["lipschitz_lower_bound"] <= bound * (1 + 1e-5)
    # Spectral norm divides every layer by (an estimate of) its largest singular value, and
    # ReLU is 1-Lipschitz, so the critic's slope is at most about 1 (the power iteration's
    # estimate may still undershoot sigma after a few steps: a little slack).
    sn = saved["runs"]["25gaussians"]["spectral"]
    assert 0 < sn["lipschitz_lower_bound"] <= 1.5
    assert 0 < sn["ratio"] <= 1.5  # duality: estimate <= L * W1 with L <= ~1
    with pytest.raises(ConfigError, match="datasets"):
        bad = surfaces_config.get_config("tiny")
        bad.datasets = ("moons",)
        critic_surfaces.run(bad, str(tmp_path))


def test_clipping_run_tiny(tmp_path):
    config = clipping_config.get_config("tiny")
    config.clip_values = (0.01,)
    config.diag_batches = 1
    out = clipping.run(config, str(tmp_path))
    for name in ("clipping_gradients.png", "clipping_weights.png", "results.json"):
        assert os.path.getsize(tmp_path / name) > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["runs"]) == {"clip_0.01", "clip_0.01_init_inside",
                                  "clip_0.01_init_inside_depth2", "gp"}
    assert set(out["runs"]) == set(saved["runs"])
    assert saved["runs"]["clip_0.01_init_inside_depth2"]["depth"] == 2
    for row in saved["runs"].values():
        assert len(row["log10_kernel_grad_norms"]) == row["depth"] + 1
        assert len(row["log10_activation_grad_norms"]) == row["depth"] + 1
        # The output layer's activation gradient is +-1/n per example: norm sqrt(2/n).
        assert float(row["log10_activation_grad_norms"][-1]) == pytest.approx(
            np.log10(np.sqrt(2 / config.batch_size)), abs=1e-6)
    for name in ("clip_0.01", "clip_0.01_init_inside", "clip_0.01_init_inside_depth2"):
        row = saved["runs"][name]
        assert row["weight_abs_max"] <= 0.01 * (1 + 1e-6)
        assert 0.0 <= row["fraction_at_bound_trained"] <= 1.0
        assert 0.0 <= row["fraction_moved"] <= 1.0
    # The default init is far wider than c: clipping it puts most weights at +-c at once.
    assert saved["runs"]["clip_0.01"]["fraction_at_bound_init"] > 0.8
    assert saved["runs"]["clip_0.01_init_inside"]["fraction_at_bound_init"] < 0.2
    assert "fraction_at_bound_trained" not in saved["runs"]["gp"]
    assert saved["runs"]["gp"]["fraction_moved"] > 0.5  # Adam moves every weight


def test_clipping_settings_share_the_batches():
    config = clipping_config.get_config("tiny")
    config.method.gp.batch_size = 8
    with pytest.raises(ConfigError, match=r"method\.gp\.batch_size.*top level"):
        clipping.validate_config(config)
    methods = clipping.validate_config(clipping_config.get_config("tiny"))
    assert sorted(methods, key=str) == sorted([(0.1, 4), (0.01, 4), (0.01, 2), (None, 4)],
                                              key=str)
    assert methods[0.01, 2].model.toy_depth == 2 and methods[0.1, 4].clip_value == 0.1
    assert methods[None, 4].clip_value == 0.0 and methods[None, 4].step.gp_weight == 10.0
