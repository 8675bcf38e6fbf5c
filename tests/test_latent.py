"""Great-circle and straight-line latent interpolation, and the interpolation experiment."""
import json

import jax
import numpy as np
import pytest

from configs.experiments import interpolation as interpolation_config
from wgan_jax import latent
from wgan_jax.config import ConfigError
from wgan_jax.experiments import interpolation
from wgan_jax.models import build_models


def _angle(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.arccos(np.clip(cos, -1, 1))


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    return rng.normal(size=16).astype(np.float32), rng.normal(size=16).astype(np.float32)


def test_endpoints(pair):
    z0, z1 = pair
    np.testing.assert_allclose(latent.slerp(z0, z1, 0.0), z0, atol=1e-5)
    np.testing.assert_allclose(latent.slerp(z0, z1, 1.0), z1, atol=1e-5)
    np.testing.assert_allclose(latent.lerp(z0, z1, 0.5), (z0 + z1) / 2, atol=1e-6)


def test_equal_norm_endpoints_keep_the_norm_and_match_the_classic_formula(pair):
    z0, z1 = pair
    z1 = z1 * np.linalg.norm(z0) / np.linalg.norm(z1)
    t = np.linspace(0, 1, 11)
    path = np.asarray(latent.slerp(z0, z1, t[:, None] * np.ones((1, 1)))).reshape(11, -1)
    np.testing.assert_allclose(np.linalg.norm(path, axis=-1), np.linalg.norm(z0), rtol=1e-5)
    w = _angle(z0, z1)
    classic = (np.sin((1 - t) * w)[:, None] * z0 + np.sin(t * w)[:, None] * z1) / np.sin(w)
    np.testing.assert_allclose(path, classic, atol=1e-5)
    # lerp's midpoint is shorter by the factor cos(w / 2).
    mid = np.linalg.norm(latent.lerp(z0, z1, 0.5))
    assert mid == pytest.approx(np.linalg.norm(z0) * np.cos(w / 2), rel=1e-5)


def test_angle_is_linear_in_t_and_norm_linear(pair):
    z0, z1 = pair  # unequal norms
    t = np.linspace(0, 1, 9)
    path = np.asarray(latent.interpolation_path(z0, z1, 9))
    assert path.shape == (9, 16)
    np.testing.assert_allclose(_angle(path, z0[None]), t * _angle(z0, z1), atol=1e-3)
    np.testing.assert_allclose(_angle(path, z1[None]), (1 - t) * _angle(z0, z1), atol=1e-3)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    np.testing.assert_allclose(np.linalg.norm(path, axis=-1), (1 - t) * n0 + t * n1, rtol=1e-5)


@pytest.mark.parametrize("scale", [2.5, -1.5, 0.0])
def test_parallel_opposite_or_zero_endpoints_fall_back_to_lerp(scale):
    z0 = np.array([1.0, -2.0, 0.5], np.float32)
    z1 = scale * z0
    t = np.array([0.0, 0.3, 0.7, 1.0], np.float32)
    out = np.asarray(latent.slerp(z0, z1, t))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, np.asarray(latent.lerp(z0, z1, t)), atol=1e-6)
    zero = np.zeros(3, np.float32)
    np.testing.assert_allclose(latent.slerp(zero, z0, 0.25), 0.25 * z0, atol=1e-6)


def test_batched_shapes():
    rng = np.random.default_rng(1)
    z0, z1 = rng.normal(size=(5, 4, 8)), rng.normal(size=(5, 4, 8))
    assert latent.slerp(z0, z1, 0.5).shape == (5, 4, 8)
    assert latent.slerp(z0, z1, rng.uniform(size=(5, 4))).shape == (5, 4, 8)
    assert latent.slerp(z0[0, 0], z1[0, 0], np.linspace(0, 1, 7)).shape == (7, 8)
    path = np.asarray(latent.interpolation_path(z0, z1, 6))
    assert path.shape == (6, 5, 4, 8)
    # Every pair of the batch is interpolated on its own.
    np.testing.assert_allclose(path[2, 3, 1], latent.slerp(z0[3, 1], z1[3, 1], 0.4), atol=1e-5)
    lin = np.asarray(latent.interpolation_path(z0, z1, 6, method="lerp"))
    np.testing.assert_allclose(lin[-1], z1, atol=1e-6)


def test_numpy_in_numpy_out_and_jax_under_jit(pair):
    z0, z1 = pair
    host = latent.slerp(z0, z1, 0.3)
    assert isinstance(host, np.ndarray)
    dev = jax.jit(latent.slerp)(jax.numpy.asarray(z0), jax.numpy.asarray(z1), 0.3)
    assert isinstance(dev, jax.Array)
    np.testing.assert_allclose(np.asarray(dev), host, rtol=1e-5, atol=1e-6)


def test_path_arguments_are_checked():
    with pytest.raises(ValueError, match="at least 2"):
        latent.interpolation_path(np.ones(2), np.ones(2), 1)
    with pytest.raises(ValueError, match="method"):
        latent.interpolation_path(np.ones(2), np.ones(2), 3, method="cubic")
    with pytest.raises(ValueError, match="same shape"):
        latent.interpolation_path(np.ones(2), np.ones(3), 3)


def test_lerp_midpoints_leave_the_prior_shell_in_high_dimensions():
    rng = np.random.default_rng(0)
    rec = interpolation.norm_along_paths(128, 200, 9, rng)
    assert rec["lerp"]["midpoint_mean_norm"] == pytest.approx(np.sqrt(64), rel=0.03)
    assert rec["slerp"]["midpoint_mean_norm"] == pytest.approx(rec["prior_norm_mean"], rel=0.03)
    assert rec["lerp"]["midpoint_below_p01"] > 0.95
    assert rec["slerp"]["midpoint_below_p01"] < 0.05
    for m in ("lerp", "slerp"):
        assert len(rec[m]["mean_norm_along_t"]) == 9


def test_interpolation_experiment_on_a_small_toy_generator(tmp_path):
    config = interpolation_config.get_config("tiny")
    models = build_models("toy", toy_hidden=8)
    params = models.generator.init(jax.random.PRNGKey(0), np.zeros((1, 2)))["params"]
    gen = interpolation.Generator(models, params, {}, "toy", "8gaussians")
    out = interpolation.run(config, str(tmp_path), generator=gen)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "interpolation_norms.png", "interpolation_toy_paths.png", "results.json"]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["generator"]["source"] == "given"
    assert [r["dim"] for r in res["norms"]] == [2, 16, 128]
    for m in ("lerp", "slerp"):
        rec = res["toy_paths"][m]
        assert len(rec["near_mode_along_t"]) == config.path_points
        assert 0 <= rec["near_mode_fraction"] <= 1 and rec["data_path_length_mean"] > 0
    assert out["toy_paths"]["slerp"]["near_mode_fraction"] == pytest.approx(
        res["toy_paths"]["slerp"]["near_mode_fraction"])


def test_interpolation_config_is_checked_and_trains_the_main_config_method():
    config = interpolation_config.get_config("tiny")
    m = interpolation.validate_config(config)
    assert (m.dataset, m.num_train_steps, m.batch_size, m.n_critic) == ("8gaussians", 10, 32, 5)
    assert (m.model.toy_hidden, m.optimizer.learning_rate, m.optimizer.lr_schedule) == (
        16, 1e-3, "linear")
    assert m.step.gp_weight == 0.1
    config.optimizer.lr_schedule = "cosine"
    with pytest.raises(ConfigError, match=r"optimizer\.lr_schedule"):
        interpolation.validate_config(config)
    config = interpolation_config.get_config("tiny")
    config.dataset = "mnist"
    with pytest.raises(ConfigError, match="dataset"):
        interpolation.validate_config(config)
    config.workdir_to_load = "/some/run"  # the loaded run's own config decides then
    assert interpolation.validate_config(config) is None
    config.path_points = 1
    with pytest.raises(ConfigError, match="path_points"):
        interpolation.validate_config(config)
    with pytest.raises(ConfigError, match="unknown config variant"):
        interpolation_config.get_config("huge")


def test_untrained_image_generator_is_the_mnist_dcgan():
    gen = interpolation.untrained_image_generator(0)
    assert (gen.arch, gen.latent_dim, gen.dataset) == ("mnist", 128, None)
    assert type(gen.models.generator).__name__ == "DCGANGenerator"
    assert gen.models.data_shape == (28, 28, 1)


def test_load_generator_restores_a_run_py_checkpoint(tmp_path):
    from wgan_jax import checkpoint
    from wgan_jax.method import Method, config_with

    config = config_with({"dataset": "8gaussians", "model": {"toy_hidden": 8}})
    state = Method.from_config(config).init_state()
    state = state.replace(g_ema=jax.tree.map(lambda x: x + 0.5, state.g_ema))  # EMA != params
    (tmp_path / "config.json").write_text(config.to_json_best_effort(indent=2))
    mngr = checkpoint.manager(str(tmp_path / "checkpoints"))
    checkpoint.save(mngr, 3, state)
    mngr.wait_until_finished()
    gen = interpolation.load_generator(str(tmp_path))
    assert (gen.arch, gen.dataset, gen.latent_dim) == ("toy", "8gaussians", 2)
    z = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    expect = state.models.generator.apply({"params": state.g_ema}, z)
    np.testing.assert_allclose(gen(z), expect, rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text(config.to_json_best_effort())
        interpolation.load_generator(str(tmp_path / "empty"))
