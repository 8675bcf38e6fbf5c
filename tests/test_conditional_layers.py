"""Conditioning layers against independent float64 numpy computations: conditional batch norm
(one device and the 4-device global batch), the projection and ACGAN critic heads, and the
conditional DCGAN/MLP networks' use of the labels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from wgan_jax.models import build_models
from wgan_jax.models.conditional import ConditionalBatchNorm
from wgan_jax.state import param_count

K = 5  # classes


def _np_cond_bn(x, y, scale, offset, eps=1e-5):
    x = np.asarray(x, np.float64)
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axes)
    var = ((x - mean) ** 2).mean(axes)  # biased, as tf.nn.moments
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
    g = np.asarray(scale, np.float64)[y].reshape(shape)
    b = np.asarray(offset, np.float64)[y].reshape(shape)
    return (x - mean) / np.sqrt(var + eps) * g + b


def _cbn_case(shape, seed):
    rng = np.random.default_rng(seed)
    x = (3.0 + 2.0 * rng.normal(size=shape)).astype(np.float32)
    y = rng.integers(0, K, shape[0]).astype(np.int32)
    c = shape[-1]
    scale = (1.0 + 0.5 * rng.normal(size=(K, c))).astype(np.float32)
    offset = rng.normal(size=(K, c)).astype(np.float32)
    return x, y, {"params": {"scale": scale, "offset": offset}}


@pytest.mark.parametrize("shape", [(6, 4, 4, 3), (7, 5)])
def test_conditional_batch_norm_equals_numpy(shape):
    x, y, v = _cbn_case(shape, 0)
    out = jax.jit(ConditionalBatchNorm(K).apply)(v, x, y)
    want = _np_cond_bn(x, y, v["params"]["scale"], v["params"]["offset"])
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5, atol=1e-5)
    # the labels really pick rows: other labels give other outputs
    other = jax.jit(ConditionalBatchNorm(K).apply)(v, x, (y + 1) % K)
    assert np.abs(np.asarray(other) - want).max() > 0.1


def test_conditional_batch_norm_init_is_one_and_zero():
    x = jnp.zeros((2, 3, 3, 4))
    p = ConditionalBatchNorm(K).init(jax.random.key(0), x, jnp.zeros(2, jnp.int32))["params"]
    np.testing.assert_array_equal(np.asarray(p["scale"]), np.ones((K, 4)))
    np.testing.assert_array_equal(np.asarray(p["offset"]), np.zeros((K, 4)))


def test_conditional_batch_norm_statistics_are_global_across_4_devices():
    x, y, v = _cbn_case((8, 3, 3, 2), 1)
    # per-device shards differ in mean, so local statistics would give other numbers
    x[:2] += 5.0
    mesh = Mesh(np.asarray(jax.devices()[:4]), ("data",))
    module = ConditionalBatchNorm(K, axis_name="data")
    run = jax.jit(jax.shard_map(lambda x, y: module.apply(v, x, y), mesh=mesh,
                                in_specs=(P("data"), P("data")), out_specs=P("data")))
    out = np.asarray(run(x, y))
    want = _np_cond_bn(x, y, v["params"]["scale"], v["params"]["offset"])
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    local = np.concatenate([_np_cond_bn(x[i:i + 2], y[i:i + 2], v["params"]["scale"],
                                        v["params"]["offset"]) for i in range(0, 8, 2)])
    assert np.abs(out - local).max() > 0.1


# ---------------------------------------------------------------- critic heads


def _mlp(conditioning, norm="none"):
    return build_models("mlp", conditioning=conditioning, num_classes=K, generator_norm=norm)


def _fill(shapes, seed):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(0.3 * rng.normal(size=s.shape), s.dtype), shapes)


def _mlp_critic_case(conditioning, seed=0):
    m = _mlp(conditioning)
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(4, 28, 28, 1)).astype(np.float32)
    y = np.array([0, 3, 4, 3], np.int32)
    shapes = jax.eval_shape(m.critic.init, jax.random.key(0), x, y)
    params = _fill(shapes["params"], seed + 1)
    out = jax.jit(m.critic.apply)({"params": params}, x, y)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    h = np.maximum(x.reshape(4, -1) @ p["hidden_0"]["kernel"] + p["hidden_0"]["bias"], 0)
    values = h @ p["out"]["kernel"][:, 0] + p["out"]["bias"][0]
    return out, p, h, values, y


def test_projection_head_equals_numpy():
    out, p, h, values, y = _mlp_critic_case("projection")
    want = values + np.sum(p["projection"]["embedding"][y] * h, axis=-1)
    assert out.shape == (4,)
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5, atol=1e-5)
    assert np.abs(want - values).max() > 0.05  # the projection term is not negligible


def test_acgan_head_equals_numpy():
    (out, logits), p, h, values, _ = _mlp_critic_case("acgan")
    assert out.shape == (4,) and logits.shape == (4, K)
    np.testing.assert_allclose(np.asarray(out), values, rtol=1e-5, atol=1e-5)
    want = h @ p["acgan_output"]["kernel"] + p["acgan_output"]["bias"]
    np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-5, atol=1e-5)


def test_head_parameter_counts_and_init():
    # mlp critic 784-128-1 (100,609); projection adds an embedding K x 128, acgan a Linear
    # 128 -> K with bias.
    x, y = jnp.zeros((2, 28, 28, 1)), jnp.zeros(2, jnp.int32)
    for cond, extra in (("none", 0), ("projection", K * 128), ("acgan", 128 * K + K)):
        m = _mlp(cond)
        params = jax.eval_shape(m.critic.init, jax.random.key(0), x, y)["params"]
        assert param_count(params) == 100_609 + extra, cond
    emb = np.asarray(jax.jit(_mlp("projection").critic.init)(jax.random.key(1), x, y)
                     ["params"]["projection"]["embedding"])
    bound = np.sqrt(3.0) * np.sqrt(2.0 / (K + 128))  # Glorot uniform, fan K + 128
    assert np.abs(emb).max() <= bound and np.abs(emb).max() > 0.9 * bound


# ---------------------------------------------------------------- conditional networks


def test_labels_are_required_by_conditional_models():
    z = jnp.zeros((2, 10))
    x = jnp.zeros((2, 28, 28, 1))
    for cond in ("acgan", "projection"):
        m = _mlp(cond)
        with pytest.raises(ValueError, match="conditional.*labels y"):
            m.critic.init(jax.random.key(0), x)
        with pytest.raises(ValueError, match="conditional.*labels y"):
            m.generator.init(jax.random.key(0), z)
        with pytest.raises(ValueError, match=r"integers of shape \[2\]"):
            m.critic.init(jax.random.key(0), x, jnp.zeros(3, jnp.int32))
    with pytest.raises(ValueError, match="no labels"):
        build_models("toy", conditioning="acgan", num_classes=10)
    with pytest.raises(ValueError, match="num_classes >= 2"):
        build_models("mnist", conditioning="projection")
    with pytest.raises(ValueError, match="conditioning must be one of"):
        build_models("mnist", conditioning="cgan", num_classes=10)


def test_generator_without_batch_norm_concatenates_a_label_embedding():
    m = _mlp("acgan")
    z = np.random.default_rng(0).normal(size=(3, 10)).astype(np.float32)
    y = np.array([1, 1, 4], np.int32)
    shapes = jax.eval_shape(m.generator.init, jax.random.key(0), z, y)
    params = _fill(shapes["params"], 3)
    out = np.asarray(jax.jit(m.generator.apply)({"params": params}, z, y))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    zy = np.concatenate([z, p["label_embedding"]["embedding"][y]], axis=1)
    h = np.maximum(zy @ p["hidden_0"]["kernel"] + p["hidden_0"]["bias"], 0)
    want = 1 / (1 + np.exp(-(h @ p["out"]["kernel"] + p["out"]["bias"])))
    np.testing.assert_allclose(out, want.reshape(3, 28, 28, 1), rtol=1e-5, atol=1e-6)
    assert p["label_embedding"]["embedding"].shape == (K, 10)
    assert p["hidden_0"]["kernel"].shape == (20, 128)


def test_generator_with_batch_norm_uses_conditional_batch_norm():
    # the seed MLP generator with batch norm: Linear, conditional BN, ReLU, Linear, sigmoid
    m = _mlp("projection", norm="batch")
    z = np.random.default_rng(1).normal(size=(4, 10)).astype(np.float32)
    y = np.array([0, 2, 2, 1], np.int32)
    shapes = jax.eval_shape(m.generator.init, jax.random.key(0), z, y)
    assert "label_embedding" not in shapes["params"]
    assert shapes["params"]["norm_0"]["scale"].shape == (K, 128)
    params = _fill(shapes["params"], 4)
    out = np.asarray(jax.jit(m.generator.apply)({"params": params}, z, y))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    h = z @ p["hidden_0"]["kernel"] + p["hidden_0"]["bias"]
    h = np.maximum(_np_cond_bn(h, y, p["norm_0"]["scale"], p["norm_0"]["offset"]), 0)
    want = 1 / (1 + np.exp(-(h @ p["out"]["kernel"] + p["out"]["bias"])))
    np.testing.assert_allclose(out, want.reshape(4, 28, 28, 1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch,kw", [("cifar", {}), ("dcgan64", {})])
def test_conditional_dcgans_parameter_trees(arch, kw):
    # Conditioning adds exactly: conditional BN's K x C scale/offset in place of BN's C
    # (generator), and the head on the critic's flattened features.
    def shapes(cond):
        m = build_models(arch, generator_norm="batch", conv_impl="lax", conditioning=cond,
                         num_classes=K, **kw)
        z = jnp.zeros((2, m.latent_dim))
        x = jnp.zeros((2,) + m.data_shape)
        y = jnp.zeros(2, jnp.int32)
        g = jax.eval_shape(m.generator.init, jax.random.key(0), z, y)["params"]
        d = jax.eval_shape(m.critic.init, jax.random.key(0), x, y)["params"]
        return g, d
    g0, d0 = shapes("none")
    g1, d1 = shapes("acgan")
    _, d2 = shapes("projection")
    norms = [k for k in g0 if k.endswith("norm")]
    bn = sum(2 * g0[k]["scale"].shape[0] for k in norms)
    assert param_count(g1) == param_count(g0) + (K - 1) * bn
    for k in norms:
        assert g1[k]["scale"].shape == (K,) + g0[k]["scale"].shape
    feats = {"cifar": 4 * 4 * 512, "dcgan64": 4 * 4 * 512}[arch]
    assert param_count(d1) == param_count(d0) + feats * K + K
    assert param_count(d2) == param_count(d0) + feats * K
