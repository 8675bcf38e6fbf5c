"""Config validation (the one boundary), the Method factory and the registry's consistency."""
import pytest

from configs import wgan_gp
from wgan_jax import registry
from wgan_jax.config import ConfigError, validate
from wgan_jax.method import Method, config_with


def tiny_toy(**overrides):
    c = wgan_gp.get_config()
    c.num_train_steps, c.batch_size, c.model.toy_hidden = 4, 16, 16
    return config_with(overrides, base=c)


@pytest.mark.parametrize("field,value,message", [
    ("n_critic", 0, "n_critic"),
    ("batch_size", 10, "divide evenly"),
    ("dataset", "imagenet", "dataset"),
    ("model.arch", "mnist", "needs model.arch in \\('toy',\\)"),
    ("model.critic_norm", "batch", "per example"),
    ("optimizer.name", "adagrad", "optimizer.name"),
    ("optimizer.learning_rate", -1.0, "learning_rate"),
    ("gp_weight", -1.0, "gp_weight"),
    ("log_every_steps", 0, "log_every_steps"),
])
def test_bad_config_values_are_refused_before_compiling(field, value, message):
    c = tiny_toy(**{field: value})
    with pytest.raises(ConfigError, match=message):
        validate(c, num_devices=4)


def test_compilation_cache_dir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "cache"
    f.write_text("keep me")
    with pytest.raises(ConfigError, match="config.compilation_cache_dir=.*not a directory"):
        validate(tiny_toy(compilation_cache_dir=str(f)))
    assert f.read_text() == "keep me"
    validate(tiny_toy(compilation_cache_dir=str(tmp_path / "new")))  # created later: fine




@pytest.mark.parametrize("field,value", [
    ("eval.toy.num_samples", 0), ("eval.toy.w1_samples", -5), ("eval.samples.every_steps", 0),
    ("eval.w1_critic.steps", 0), ("eval.heldout.num_samples", -1), ("train_subset", -1),
    ("shuffle_buffer", 0),
    ("ema_decay", 1.0), ("clip_value", -0.01), ("optimizer.lr_schedule", "cosine"),
    ("model.conv_impl", "cudnn"), ("model.toy_depth", 0), ("label_flip_prob", 0.6),
    ("gp_weight", float("inf")), ("clip_value", float("nan")),
    ("optimizer.learning_rate", float("inf")),
])
def test_more_bad_config_values_name_their_field(field, value):
    with pytest.raises(ConfigError, match=f"config.{field}="):
        validate(tiny_toy(**{field: value}), num_devices=4)


@pytest.mark.parametrize("field,value", [
    # The step's settings (once checked again by StepConfig itself).
    ("loss", "hinge"), ("gp_weight", -1.0), ("ema_decay", 1.0), ("ema_decay", -0.1),
    ("label_flip_prob", 0.5), ("real_label_smoothing", 1.0),
    # The model's options (once checked again by build_models and the modules).
    ("model.arch", "svhn"), ("model.critic_norm", "instance"),
    ("model.generator_norm", "layer"), ("model.conv_impl", "cudnn"),
])
def test_step_and_model_settings_are_checked_at_the_config(field, value):
    with pytest.raises(ConfigError, match=f"config.{field}="):
        Method.from_config(tiny_toy(**{field: value}))


def test_gradient_penalty_with_batch_norm_critic_is_refused_once():
    with pytest.raises(ConfigError, match="per example"):
        Method.from_config(tiny_toy(**{"model.critic_norm": "batch", "gp_weight": 10.0}))
    Method.from_config(tiny_toy(**{"model.critic_norm": "batch", "gp_weight": 0.0}))


def test_evaluators_must_exist_and_fit_the_data():
    with pytest.raises(ConfigError, match="unknown evaluator 'fid'"):
        validate(tiny_toy(evals=("samples", "fid")))
    c = wgan_gp.get_config("mnist")
    assert tuple(c.evals) == ("samples",)
    validate(c)
    c.evals = ("samples", "toy")
    with pytest.raises(ConfigError, match="needs a toy dataset"):
        validate(c)
    with pytest.raises(ConfigError, match="twice"):
        validate(tiny_toy(evals=("toy", "toy")))


def test_config_with_refuses_unknown_fields_and_applies_nested_ones():
    with pytest.raises(ConfigError, match="no field 'model.toy_width'"):
        config_with({"model.toy_width": 3})
    with pytest.raises(ConfigError, match="no field 'stepz'"):
        config_with(stepz=3)
    c = config_with({"model": {"toy_hidden": 7}, "optimizer.name": "rmsprop"}, seed=3)
    assert (c.model.toy_hidden, c.optimizer.name, c.seed) == (7, "rmsprop", 3)


def test_method_describes_the_config():
    c = tiny_toy(**{"gp_weight": 0.0, "clip_value": 0.01, "optimizer.name": "rmsprop",
                    "n_critic": 3, "ema_decay": 0.5, "optimizer.lr_schedule": "linear"})
    m = Method.from_config(c)
    assert m.step.gp_weight == 0.0 and m.step.ema_decay == 0.5 and m.clip_value == 0.01
    assert m.model.toy_hidden == 16 and m.optimizer.name == "rmsprop" and m.n_critic == 3
    assert m.data.is_toy and m.arch.latent_dim == 2
    state = m.init_state()
    # The critic's optimizer ends in clipping: one update keeps every weight within c.
    import jax
    import numpy as np
    grads = jax.tree.map(lambda p: np.ones_like(p) * 1e3, state.d_params)
    updates, _ = state.d_tx.update(grads, state.d_opt_state, state.d_params)
    new = jax.tree.map(lambda p, u: p + u, state.d_params, updates)
    assert max(float(np.abs(x).max()) for x in jax.tree.leaves(new)) <= 0.01 + 1e-8


def test_registry_is_consistent():
    from wgan_jax.config import base_config
    from wgan_jax.evaluators import REGISTRY
    c = base_config()
    for name in REGISTRY:  # every evaluator has its block, with a cadence
        assert c.eval[name].every_steps > 0, name
    used = {a for d in registry.DATASETS.values() for a in d.archs}
    assert used == set(registry.ARCHS)
    for d in registry.DATASETS.values():
        for a in d.archs:
            arch = registry.ARCHS[a]
            assert arch.data_shape[:-1] == d.shape[:-1], (d.name, a)
            assert d.shape[-1] in (arch.data_shape[-1],) + arch.other_channels, (d.name, a)
            assert registry.ARCHS[a].output_range == d.value_range, (d.name, a)
    assert registry.mixture("25gaussians").mode_centers().shape == (25, 2)
    assert registry.mixture("8gaussians").mode_std() == pytest.approx(0.02 / 1.414)
    with pytest.raises(ValueError, match="no modes"):
        registry.mixture("swissroll")


def test_source_dir_must_be_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="config.source_dir=.*not a directory"):
        validate(tiny_toy(source_dir=str(tmp_path / "missing")))


def test_seed_mlp_and_fast_fashion_variants():
    from configs import wgan
    c = wgan.get_config("fashion_mnist_mlp")
    m = Method.from_config(c)
    assert (m.model.arch, m.batch_size, m.n_critic, m.clip_value) == ("mlp", 32, 5, 0.01)
    assert (m.optimizer.name, m.optimizer.learning_rate) == ("rmsprop", 5e-5)
    assert m.model.critic_norm == m.model.generator_norm == "none" and m.step.gp_weight == 0
    assert wgan.get_config("mnist_mlp").dataset == "mnist"
    f = Method.from_config(wgan_gp.get_config("fashion_mnist_fast"))
    assert (f.dataset, f.model.arch, f.step.gp_weight, f.batch_size) == (
        "fashion_mnist", "mnist", 10.0, 50)
    assert f.step.ema_decay == 0.99 and f.optimizer.lr_schedule == "linear"


def test_gan_configs_follow_the_official_dcgan_mode():
    from configs import gan
    for variant, critic_norm in (("mnist", "none"), ("fashion_mnist", "none"),
                                 ("cifar10", "batch"), ("celeba64", "batch")):
        m = Method.from_config(gan.get_config(variant))
        assert (m.step.loss, m.n_critic, m.step.gp_weight, m.clip_value) == (
            "gan_nonsaturating", 1, 0.0, 0.0), variant
        assert (m.optimizer.name, m.optimizer.learning_rate, m.optimizer.b1,
                m.optimizer.b2) == ("adam", 2e-4, 0.5, 0.999), variant
        assert m.model.critic_norm == critic_norm, variant
    toy = Method.from_config(gan.get_config())
    assert (toy.dataset, toy.n_critic, toy.step.loss) == ("25gaussians", 1, "gan_nonsaturating")
    assert toy.optimizer.learning_rate == wgan_gp.get_config().optimizer.learning_rate
