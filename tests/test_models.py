"""Tests of wgan_jax.models against the official architectures: parameter counts, shapes, output
nonlinearities, initialisation scales, and the spectral-norm critic."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import layers, registry
from wgan_jax.models import ARCHS, build_models
from wgan_jax.models.common import flatten_nchw, unflatten_nchw
from wgan_jax.state import param_count


def _inputs(models, batch=2):
    return (jnp.zeros((batch, models.latent_dim), jnp.float32),
            jnp.zeros((batch,) + tuple(models.data_shape), jnp.float32))


def _shapes(models, batch=2):
    z, x = _inputs(models, batch)
    key = jax.random.key(0)
    return (jax.eval_shape(models.generator.init, key, z),
            jax.eval_shape(models.critic.init, key, x))


def _np_params(tree_shapes, seed, gain=1.0):
    """numpy-valued parameters: kernels U(+-gain*sqrt(3/fan_in)), BN scales near 1, the rest
    small (no per-shape PRNG compiles)."""
    rng = np.random.default_rng(seed)

    def fill(path, s):
        name = jax.tree_util.keystr(path)
        if "kernel" in name:
            b = gain * math.sqrt(3.0 / int(np.prod(s.shape[:-1])))
            v = rng.uniform(-b, b, s.shape)
        elif "scale" in name:
            v = 1.0 + 0.2 * rng.normal(size=s.shape)
        else:
            v = 0.1 * rng.normal(size=s.shape)
        return jnp.asarray(v, s.dtype)

    return jax.tree_util.tree_map_with_path(fill, tree_shapes)


# ---------------------------------------------------------------- counts and shapes

OFFICIAL_COUNTS = [
    ("toy", {}, 527_874, 527_361),
    ("mnist", {}, 1_554_177, 1_030_145),
    ("mnist", {"generator_norm": "batch", "critic_norm": "batch"}, 1_562_753, 1_030_913),
    ("cifar", {"generator_norm": "batch"}, 5_179_907, 4_114_689),
    ("cifar", {"generator_norm": "batch", "critic_norm": "batch"}, 5_179_907, 4_116_225),
    # gan_64x64.py's DCGAN: G 128*8192+8192 + 5x5 deconvs 512->256->128->64->3 with biases;
    # D 5x5 convs 3->64->128->256->512 with biases + 8192+1.
    ("celeba64", {}, 5_362_819, 4_314_753),
    # The seed WGAN's MLPs: G 10*128+128 + 128*784+784, D 784*128+128 + 128+1.
    ("mlp", {}, 102_544, 100_609),
]


@pytest.mark.parametrize("arch,kw,n_g,n_d", OFFICIAL_COUNTS)
def test_official_parameter_counts(arch, kw, n_g, n_d):
    g, d = _shapes(build_models(arch, conv_impl="lax", **kw))
    assert param_count(g["params"]) == n_g
    assert param_count(d["params"]) == n_d


@pytest.mark.parametrize("arch", ARCHS)
def test_output_shapes(arch):
    models = build_models(arch, conv_impl="lax", generator_norm="batch")
    z, x = _inputs(models, 3)
    g_vars, d_vars = _shapes(models, 3)
    out = jax.eval_shape(lambda v, z: models.generator.apply(v, z, mutable=["batch_stats"])[0],
                         g_vars, z)
    assert out.shape == (3,) + tuple(models.data_shape)
    assert jax.eval_shape(models.critic.apply, d_vars, x).shape == (3,)
    want = {"toy": (2,), "mnist": (28, 28, 1), "cifar": (32, 32, 3), "celeba64": (64, 64, 3),
            "dcgan64": (64, 64, 3), "mlp": (28, 28, 1), "resnet32": (32, 32, 3),
            "resnet64": (64, 64, 3)}
    assert models.data_shape == want[arch]
    assert models.latent_dim == {"toy": 2, "dcgan64": 100, "mlp": 10}.get(arch, 128)


def test_toy_hidden_and_depth_are_used():
    g, d = _shapes(build_models("toy", toy_hidden=16, toy_depth=2))
    # G: 2*16+16 + 16*16+16 + 16*2+2 ; D: 2*16+16 + 16*16+16 + 16+1
    assert param_count(g["params"]) == 48 + 272 + 34
    assert param_count(d["params"]) == 48 + 272 + 17


# ---------------------------------------------------------------- output nonlinearity


@pytest.mark.parametrize("arch,act,lo,hi", [("mnist", jax.nn.sigmoid, 0.0, 1.0),
                                            ("cifar", jnp.tanh, -1.0, 1.0)])
def test_generator_output_nonlinearity(arch, act, lo, hi):
    # The architecture's generator with fewer channels (its output layer, crop and nonlinearity
    # are kept), to keep the test light.
    full = build_models(arch, conv_impl="lax", generator_norm="batch").generator
    gen = full.clone(base_channels=16, channels=(8, 4), latent_dim=8)
    z = jnp.asarray(np.random.default_rng(1).normal(size=(2, 8)), jnp.float32)
    shapes = jax.eval_shape(gen.init, jax.random.key(0), z)
    variables = {"params": _np_params(shapes["params"], 0, gain=2.0),
                 "batch_stats": jax.tree.map(jnp.zeros_like, shapes["batch_stats"])}

    @jax.jit
    def run(v, z):
        out, state = gen.apply(v, z, capture_intermediates=True,
                               mutable=["batch_stats", "intermediates"])
        return out, state["intermediates"]["output"]["__call__"][0]

    out, pre = run(variables, z)
    out, pre = np.asarray(out), np.asarray(pre)
    assert out.shape == (2,) + registry.ARCHS[arch].data_shape
    np.testing.assert_allclose(out, np.asarray(act(pre)), rtol=1e-6, atol=1e-7)
    assert np.all(out >= lo) and np.all(out <= hi)
    assert np.mean((out > lo) & (out < hi)) > 0.99  # saturated only where float32 rounds
    assert pre.std() > 0.5  # the nonlinearity really acts on a spread of values
    if lo < 0:
        assert out.min() < 0 < out.max()


# ---------------------------------------------------------------- initialisation


def _expected_scale(path: str, shape) -> float:
    """The official init std of the kernel at `path` with `shape` (see the reference table)."""
    if len(shape) == 4:
        k = shape[0]
        if "conv_" in path and "deconv" not in path:  # Conv2D: (k, k, cin, cout)
            cin, cout = shape[2], shape[3]
            fan_in, fan_out = cin * k * k, cout * k * k / 4.0
        else:  # Deconv2D: (k, k, cout, cin)
            cout, cin = shape[2], shape[3]
            fan_in, fan_out = cin * k * k / 4.0, cout * k * k
        return math.sqrt(4.0 / (fan_in + fan_out))
    n_in, n_out = shape
    if "hidden" in path:  # the toy MLPs' ReLU layers use 'he'
        return math.sqrt(2.0 / n_in)
    return math.sqrt(2.0 / (n_in + n_out))


# dcgan64's N(0, 0.02) init: tests/test_paper_dcgan.py; the ResNets' stride-1 convs:
# tests/test_resnet.py
@pytest.mark.parametrize("arch", [a for a in ARCHS if a not in ("dcgan64", "resnet32",
                                                                  "resnet64")])
def test_every_kernel_gets_the_official_scale(arch, monkeypatch):
    # Replace the sampler by one that writes its scale into the kernel, so a plain init shows
    # which scale each layer asked for (no random draws needed).
    monkeypatch.setattr(layers, "uniform_init",
                        lambda scale: lambda key, shape, dtype=jnp.float32:
                        jnp.full(shape, scale, dtype))
    models = build_models(arch, conv_impl="lax")
    z, x = _inputs(models)
    for net, inp in ((models.generator, z), (models.critic, x)):
        params = jax.jit(net.init)(jax.random.key(0), inp)["params"]
        n_kernels = 0
        for path, leaf in jax.tree_util.tree_leaves_with_path(params):
            name = jax.tree_util.keystr(path)
            leaf = np.asarray(leaf)
            if name.endswith("['bias']"):
                np.testing.assert_array_equal(leaf, 0.0)
                continue
            n_kernels += 1
            want = _expected_scale(name, leaf.shape)
            np.testing.assert_allclose(leaf, want, rtol=1e-6, err_msg=name)
        assert n_kernels >= (2 if arch == "mlp" else 4)


def test_seed_mlp_equals_a_numpy_forward():
    # The seed WGAN's networks: G z -> relu(z W1 + b1) -> sigmoid(h W2 + b2) as 28x28x1 images,
    # D x -> relu(flat(x) W1 + b1) W2 + b2, computed independently in float64 numpy.
    models = build_models("mlp")
    g_shapes, d_shapes = _shapes(models)
    g = _np_params(g_shapes["params"], 0, gain=2.0)
    d = _np_params(d_shapes["params"], 1, gain=2.0)
    rng = np.random.default_rng(2)
    z = rng.normal(size=(3, 10)).astype(np.float32)
    x = rng.uniform(size=(3, 28, 28, 1)).astype(np.float32)
    out = np.asarray(jax.jit(models.generator.apply)({"params": g}, z))
    crit = np.asarray(jax.jit(models.critic.apply)({"params": d}, x))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), (g, d))
    h = np.maximum(z @ p[0]["hidden_0"]["kernel"] + p[0]["hidden_0"]["bias"], 0)
    want = 1 / (1 + np.exp(-(h @ p[0]["out"]["kernel"] + p[0]["out"]["bias"])))
    np.testing.assert_allclose(out, want.reshape(3, 28, 28, 1), rtol=1e-5, atol=1e-6)
    h = np.maximum(x.reshape(3, -1) @ p[1]["hidden_0"]["kernel"] + p[1]["hidden_0"]["bias"], 0)
    want = (h @ p[1]["out"]["kernel"] + p[1]["out"]["bias"]).reshape(-1)
    np.testing.assert_allclose(crit, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0.05


def test_uniform_init_distribution():
    s = 0.05
    w = np.asarray(jax.jit(lambda k: layers.uniform_init(s)(k, (200_000,)))(jax.random.key(3)))
    bound = s * math.sqrt(3.0)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.999 * bound  # the full range is used
    assert w.std() == pytest.approx(s, rel=0.01)
    assert abs(w.mean()) < 0.01 * s


def _check_init(params, arch_name):
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = jax.tree_util.keystr(path)
        leaf = np.asarray(leaf)
        if name.endswith("['bias']"):
            np.testing.assert_array_equal(leaf, 0.0, err_msg=name)
            continue
        s = _expected_scale(name, leaf.shape)
        assert np.abs(leaf).max() <= s * math.sqrt(3.0) * (1 + 1e-6), (arch_name, name)
        # std of a uniform sample of n values: relative standard error ~ sqrt(0.2 / n)
        tol = max(5 * math.sqrt(0.2 / leaf.size), 0.01)
        assert leaf.std() == pytest.approx(s, rel=tol), (arch_name, name, leaf.std(), s)


def test_real_init_conv_linear_distributions():
    # The mnist critic (Conv + glorot Linear) with fewer channels, and the toy generator (he and
    # glorot Linear) with 64 units: enough weights per kernel for a 2-4% check of the std.
    # The distribution does not depend on the PRNG; the 'rbg' generator compiles fastest.
    critic = build_models("mnist", conv_impl="lax").critic.clone(channels=(16, 32, 64))
    x = jnp.zeros((2, 28, 28, 1))
    _check_init(jax.jit(critic.init)(jax.random.key(2, impl="rbg"), x)["params"], "mnist")
    gen = build_models("toy", toy_hidden=64).generator
    z = jnp.zeros((2, 2))
    _check_init(jax.jit(gen.init)(jax.random.key(1, impl="rbg"), z)["params"], "toy")


# ---------------------------------------------------------------- errors and layout


def test_build_models_rejects_an_unknown_arch():
    # The other options are checked where configs are validated (tests/test_config.py).
    with pytest.raises(ValueError, match="arch"):
        build_models("svhn")


def test_flatten_is_channel_major():
    x = np.arange(2 * 3 * 3 * 4, dtype=np.float32).reshape(2, 3, 3, 4)  # NHWC
    flat = np.asarray(flatten_nchw(jnp.asarray(x)))
    np.testing.assert_array_equal(flat, x.transpose(0, 3, 1, 2).reshape(2, -1))
    back = np.asarray(unflatten_nchw(jnp.asarray(flat), 4, 3))
    np.testing.assert_array_equal(back, x)


# ---------------------------------------------------------------- spectral norm


def test_spectral_norm_critic_power_iteration_converges():
    models = build_models("toy", critic_norm="spectral", toy_hidden=16)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 2)), jnp.float32)
    shapes = jax.eval_shape(models.critic.init, jax.random.key(0), x)
    rng = np.random.default_rng(1)
    params = _np_params(shapes["params"], 2)
    spectral = jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), s.dtype),
                            shapes["spectral"])

    @jax.jit
    def update(spectral):
        _, new = models.critic.apply({"params": params, "spectral": spectral}, x,
                                     update_stats=True, mutable=["spectral"])
        return new["spectral"]

    for _ in range(50):
        spectral = update(spectral)
    stats = spectral["sn"]
    kernels = {k: np.asarray(v["kernel"], np.float64) for k, v in params["critic"].items()}
    assert len(kernels) == 4
    for name, w in kernels.items():
        mat = w.reshape(-1, w.shape[-1])
        top = np.linalg.svd(mat, compute_uv=False)[0]
        sigma = float(stats[f"critic/{name}/kernel/sigma"])
        assert sigma == pytest.approx(top, rel=1e-3), name
        assert np.linalg.svd(mat / sigma, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-3)

    # The forward pass uses the normalized kernels: recompute it by hand with W / sigma.
    out = models.critic.apply({"params": params, "spectral": spectral}, x)
    h = np.asarray(x, np.float64)
    for name in ("hidden_0", "hidden_1", "hidden_2", "out"):
        w = kernels[name] / np.linalg.svd(kernels[name], compute_uv=False)[0]
        h = h @ w + np.asarray(params["critic"][name]["bias"], np.float64)
        if name != "out":
            h = np.maximum(h, 0.0)
    np.testing.assert_allclose(np.asarray(out), h.reshape(-1), rtol=1e-4, atol=1e-5)
    # ... which differs from the unnormalized network, so the comparison has teeth
    assert max(np.linalg.svd(w, compute_uv=False)[0] for w in kernels.values()) > 1.2
