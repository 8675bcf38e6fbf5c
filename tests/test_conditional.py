"""Class-conditional training: the ACGAN and projection terms of the step against a float64 numpy
computation on the same parameters, device-count invariance of a conditional step, and the
config checks of the conditioning settings.

Tiny MLPs (hidden 8, 4x4 images, 3 classes) keep the compiled steps small."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wgan_jax import config as config_lib
from wgan_jax import losses
from wgan_jax import step as step_mod
from wgan_jax.method import Method, config_with
from wgan_jax.models import Models
from wgan_jax.models.mlp import MLPCritic, MLPGenerator
from wgan_jax.parallel import batch_sharding, make_mesh, replicated
from wgan_jax.state import create_train_state
from wgan_jax.step import StepConfig, critic_update, generator_update, make_train_step

SHAPE, LATENT, HIDDEN, K = (4, 4, 1), 5, 8, 3


def _models(conditioning, generator_norm="none"):
    gen = MLPGenerator(hidden=HIDDEN, depth=1, out_shape=SHAPE, latent_dim=LATENT,
                       norm=generator_norm, output="linear", conditioning=conditioning,
                       num_classes=K)
    critic = MLPCritic(hidden=HIDDEN, depth=1, conditioning=conditioning, num_classes=K)
    return Models(gen, critic, LATENT, SHAPE, "none", conditioning, K)


def _state(models, seed=0, tx=None):
    tx = optax.adam(1e-3, b1=0.0, b2=0.9) if tx is None else tx
    return jax.jit(lambda k: create_train_state(models, tx, tx, k))(jax.random.PRNGKey(seed))


def _np(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def _critic_np(p, x, y, conditioning):
    """The MLP critic in float64: values, ACGAN logits (or None) and d value / d x."""
    x = x.reshape(len(x), -1)
    pre = x @ p["hidden_0"]["kernel"] + p["hidden_0"]["bias"]
    h = np.maximum(pre, 0.0)
    w_out = p["out"]["kernel"][:, 0]
    values = h @ w_out + p["out"]["bias"][0]
    head = np.broadcast_to(w_out, h.shape)
    logits = None
    if conditioning == "projection":
        emb = p["projection"]["embedding"][y]
        values = values + np.sum(emb * h, -1)
        head = head + emb
    elif conditioning == "acgan":
        logits = h @ p["acgan_output"]["kernel"] + p["acgan_output"]["bias"]
    grad_x = ((pre > 0) * head) @ p["hidden_0"]["kernel"].T
    return values, logits, grad_x


def _generator_np(p, z, y):
    """The MLP generator without batch norm in float64 (label embedding concatenated to z)."""
    x = np.concatenate([z, p["label_embedding"]["embedding"][y]], -1)
    h = np.maximum(x @ p["hidden_0"]["kernel"] + p["hidden_0"]["bias"], 0.0)
    return (h @ p["out"]["kernel"] + p["out"]["bias"]).reshape((len(z),) + SHAPE)


def _ce_np(logits, y):
    m = logits.max(-1, keepdims=True)
    logp = logits - m - np.log(np.sum(np.exp(logits - m), -1, keepdims=True))
    return -np.mean(logp[np.arange(len(y)), y])


def _acc_np(logits, y):
    return np.mean(np.argmax(logits, -1) == y)


@pytest.mark.parametrize("conditioning", ["acgan", "projection"])
def test_conditional_critic_loss_matches_numpy(conditioning):
    models = _models(conditioning)
    state = _state(models)
    cfg = StepConfig(conditioning=conditioning, gp_weight=10.0, acgan_critic_weight=0.7)
    n = 6
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    real = jax.random.normal(keys[0], (n,) + SHAPE)
    fake = jax.random.normal(keys[1], (n,) + SHAPE)
    y_real = jax.random.randint(keys[2], (n,), 0, K)
    y_fake = (y_real + 1) % K
    _, m = jax.jit(lambda s: critic_update(s, cfg, real, fake, keys[3], real_labels=y_real,
                                           fake_labels=y_fake, axis_name=None))(state)
    # The draw of the interpolation weights (not the formula) is taken from the step's keys.
    eps = np.asarray(jax.random.uniform(jax.random.split(keys[3])[0], (n,)), np.float64)

    p = _np(state.d_params)
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    yr, yf = np.asarray(y_real), np.asarray(y_fake)
    d_real, logits_real, _ = _critic_np(p, r, yr, conditioning)
    d_fake, logits_fake, _ = _critic_np(p, f, yf, conditioning)
    e = eps[:, None, None, None]
    _, _, g = _critic_np(p, e * r + (1 - e) * f, yr, conditioning)  # the real example's label
    penalty = 10.0 * np.mean((np.linalg.norm(g, axis=1) - 1.0) ** 2)
    loss = d_fake.mean() - d_real.mean() + penalty
    np.testing.assert_allclose(m["gradient_penalty"], penalty, rtol=2e-5)
    np.testing.assert_allclose(m["em_distance"], d_real.mean() - d_fake.mean(), rtol=2e-5,
                               atol=1e-6)
    if conditioning == "acgan":
        ce = _ce_np(logits_real, yr)
        loss += 0.7 * ce
        np.testing.assert_allclose(m["acgan_critic_loss"], ce, rtol=2e-5)
        assert float(m["acgan_accuracy_real"]) == pytest.approx(_acc_np(logits_real, yr))
        assert float(m["acgan_accuracy_fake"]) == pytest.approx(_acc_np(logits_fake, yf))
    else:
        assert "acgan_critic_loss" not in m
    np.testing.assert_allclose(m["critic_loss"], loss, rtol=2e-5)


@pytest.mark.parametrize("conditioning", ["acgan", "projection"])
def test_conditional_generator_loss_matches_numpy(conditioning):
    models = _models(conditioning)
    state = _state(models, seed=1)
    cfg = StepConfig(conditioning=conditioning, acgan_generator_weight=0.3)
    n, key = 7, jax.random.PRNGKey(5)
    *_, m = jax.jit(lambda s: generator_update(s, cfg, key, n, axis_name=None))(state)
    # The step's draws: z from the key, labels uniform in [0, K) from fold_in(key, 1).
    z = np.asarray(jax.random.normal(key, (n, LATENT)), np.float64)
    y = np.asarray(step_mod.draw_labels(jax.random.fold_in(key, 1), n, K))
    assert set(y) <= set(range(K))
    fake = _generator_np(_np(state.g_params), z, y)
    values, logits, _ = _critic_np(_np(state.d_params), fake, y, conditioning)
    loss = -values.mean()
    if conditioning == "acgan":
        ce = _ce_np(logits, y)
        loss += 0.3 * ce
        np.testing.assert_allclose(m["acgan_generator_loss"], ce, rtol=2e-5)
    np.testing.assert_allclose(m["generator_loss"], loss, rtol=2e-5, atol=1e-6)


def test_generator_labels_are_uniform():
    y = np.asarray(step_mod.draw_labels(jax.random.PRNGKey(0), 30_000, 10))
    counts = np.bincount(y, minlength=10)
    assert counts.shape == (10,)
    # 3 standard deviations of a binomial(30000, 0.1) count: 3 * sqrt(2700) = 156.
    assert np.all(np.abs(counts - 3000) < 156)


def _run(conditioning, n_devices, batches):
    models = _models(conditioning, generator_norm="batch")
    # SGD: Adam would blow the round-off gradient of the bias before batch norm (0 in exact
    # arithmetic) up to a full step whose sign differs between device counts.
    init = jax.device_get(_state(models, tx=optax.sgd(0.05)))
    cfg = StepConfig(conditioning=conditioning, gp_weight=10.0, generator_batch_size=16)
    mesh = make_mesh(jax.devices()[:n_devices])
    train_step = make_train_step(cfg, mesh)
    state = jax.device_put(init, replicated(mesh))
    out = []
    for images, labels in batches:
        batch = jax.device_put((images, labels), batch_sharding(mesh))
        state, metrics = train_step(state, batch)
        jax.block_until_ready((state, metrics))
        out.append({k: float(v) for k, v in metrics.items()})
    return out, jax.device_get(state)


@pytest.mark.parametrize("conditioning", ["acgan", "projection"])
def test_conditional_step_one_device_equals_four(conditioning):
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(2, 8) + SHAPE).astype(np.float32),
                rng.integers(0, K, size=(2, 8)).astype(np.int32)) for _ in range(2)]
    one, s1 = _run(conditioning, 1, batches)
    four, s4 = _run(conditioning, 4, batches)
    names = step_mod.metric_names(StepConfig(conditioning=conditioning, gp_weight=10.0))
    for a, b in zip(one, four, strict=True):
        assert set(a) == set(b) == set(names)
        for k in names:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=k)
    for x, y in zip(jax.tree.leaves(s1.d_params), jax.tree.leaves(s4.d_params), strict=True):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-5)
    for x, y in zip(jax.tree.leaves(s1.g_params), jax.tree.leaves(s4.g_params), strict=True):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-5)


def test_metric_names_declare_the_acgan_metrics():
    acgan = set(step_mod.metric_names(StepConfig(conditioning="acgan")))
    plain = set(step_mod.metric_names(StepConfig()))
    assert acgan - plain == {"acgan_critic_loss", "acgan_generator_loss",
                             "acgan_accuracy_real", "acgan_accuracy_fake"}
    assert set(step_mod.metric_names(StepConfig(conditioning="projection"))) == plain


def test_every_loss_name_is_in_the_table_and_unknown_ones_are_refused():
    assert set(losses.LOSSES) == {"wasserstein", "gan_minimax", "gan_nonsaturating"}
    d_real, d_fake = jnp.array([1.0, 2.0]), jnp.array([-1.0, 0.5])
    assert float(losses.LOSSES["wasserstein"].critic(d_real, d_fake)) == pytest.approx(-1.75)
    with pytest.raises(config_lib.ConfigError, match=r"config\.loss='hinge'") as info:
        config_lib.validate(config_with(loss="hinge"))
    assert str(info.value).endswith("('wasserstein', 'gan_minimax', 'gan_nonsaturating')")


def _image_config(**fields):
    return config_with({"dataset": "fashion_mnist", "model.arch": "mnist", "gp_weight": 10.0,
                        "evals": ("samples",), **fields})


@pytest.mark.parametrize("fields, field", [
    ({"conditioning": "acgan"}, "conditioning"),  # the toy default: no labels
    ({"conditioning": "projection", "dataset": "8gaussians"}, "conditioning"),
    ({"conditioning": "acgan", "dataset": "celeba64", "model.arch": "celeba64"},
     "conditioning"),
    ({"conditioning": "classes"}, "conditioning"),
    ({"dequantize": 1 / 128}, "dequantize"),  # toy points are not 8-bit images
    ({"dequantize": -0.1}, "dequantize"),
    ({"acgan_critic_weight": -1.0}, "acgan_critic_weight"),
    ({"acgan_generator_weight": float("nan")}, "acgan_generator_weight"),
    ({"generator_batch_size": -2}, "generator_batch_size"),
    ({"generator_batch_size": 6}, "generator_batch_size"),  # 6 over 4 devices
])
def test_bad_conditioning_settings_name_their_field(fields, field):
    with pytest.raises(config_lib.ConfigError) as info:
        config_lib.validate(config_with(fields), num_devices=4)
    message = str(info.value)
    assert message.startswith(f"config.{field}=")
    assert "\n" not in message


def test_conditional_image_configs_validate_and_describe_their_method():
    method = Method.from_config(_image_config(conditioning="acgan", generator_batch_size=100,
                                              acgan_generator_weight=0.2))
    assert method.conditional and method.model.num_classes == 10
    assert method.step.conditioning == "acgan"
    assert method.step.generator_batch_size == 100
    assert method.step.acgan_generator_weight == 0.2
    models = method.models()
    assert (models.conditioning, models.num_classes) == ("acgan", 10)
    assert not Method.from_config(_image_config()).conditional


def _variant(name, **fields):
    import importlib.util
    spec = importlib.util.spec_from_file_location("wgan_gp_config", "configs/wgan_gp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return config_with(fields, base=module.get_config(name))


def test_resnet_and_conditional_variants_hold_their_documented_settings():
    m = Method.from_config(_variant("cifar10_resnet"))
    assert (m.dataset, m.model.arch, m.model.generator_norm, m.model.critic_norm) == (
        "cifar10", "resnet32", "batch", "none")
    assert (m.optimizer.learning_rate, m.optimizer.b1, m.optimizer.b2) == (2e-4, 0.0, 0.9)
    assert (m.optimizer.lr_schedule, m.num_train_steps, m.n_critic) == ("linear", 100_000, 5)
    assert (m.batch_size, m.step.generator_batch_size, m.step.gp_weight) == (64, 128, 10.0)
    assert m.dequantize == 1 / 128 and not m.conditional
    assert Method.from_config(_variant("cifar10_resnet", conditioning="acgan")).conditional
    m = Method.from_config(_variant("celeba64_resnet"))
    assert (m.model.arch, m.model.critic_norm, m.optimizer.learning_rate, m.optimizer.b1,
            m.optimizer.lr_schedule, m.num_train_steps) == (
        "resnet64", "layer", 1e-4, 0.0, "constant", 200_000)
    for mode in ("acgan", "projection"):
        m = Method.from_config(_variant(f"fashion_mnist_fast_{mode}"))
        fast = Method.from_config(_variant("fashion_mnist_fast"))
        assert m.step.conditioning == mode and m.model.num_classes == 10
        assert m.optimizer == fast.optimizer and m.num_train_steps == fast.num_train_steps


def test_fashion_mnist32_resnet_builds_a_narrow_one_channel_conditional_resnet():
    config = _variant("fashion_mnist32_resnet", conditioning="acgan")
    config.model.width = 8  # the test's size; the variant's is 32
    assert _variant("fashion_mnist32_resnet").model.width == 32
    models = Method.from_config(config).models()
    assert models.data_shape == (32, 32, 1) and models.num_classes == 10
    z = jnp.zeros((2, models.latent_dim))
    y = jnp.array([0, 9])
    variables = models.generator.init(jax.random.PRNGKey(0), z, y)
    x, _ = models.generator.apply(variables, z, y, mutable=["batch_stats"])
    assert x.shape == (2, 32, 32, 1)
    values, logits = models.critic.apply(
        models.critic.init(jax.random.PRNGKey(1), x, y), x, y)
    assert values.shape == (2,) and logits.shape == (2, 10)
    with pytest.raises(config_lib.ConfigError, match=r"^config\.model\.width=8"):
        config_lib.validate(config_with({"model.width": 8}))
