"""Tests of the WGAN paper's DCGAN (arch 'dcgan64'): parameter counts, init, and the forward pass
against a float64 numpy implementation of the PyTorch layers (NCHW, PyTorch weight layouts)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import wgan, wgan_gp
from wgan_jax import config as config_lib
from wgan_jax import penalties
from wgan_jax.models import build_models
from wgan_jax.models.paper_dcgan import PaperDCGANCritic, PaperDCGANGenerator
from wgan_jax.state import param_count

# ---------------------------------------------------------------- counts


def _count(module, shape):
    shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros(shape, jnp.float32))
    return param_count(shapes["params"])


# By hand from models/dcgan.py (isize 64, nz 100, ngf = ndf = 64, no biases):
# G convT 100*512*16 + 512*256*16 + 256*128*16 + 128*64*16 + 64*3*16 = 3,574,784;
#   BN (scale + offset) 2*(512 + 256 + 128 + 64) = 1,920.
# D conv 3*64*16 + 64*128*16 + 128*256*16 + 256*512*16 + 512*16 = 2,763,776; BN 2*(128+256+512).
@pytest.mark.parametrize("g_norm,d_norm,extra,n_g,n_d", [
    ("batch", "batch", 0, 3_576_704, 2_765_568),
    ("none", "none", 0, 3_574_784, 2_763_776),
    ("batch", "layer", 0, 3_576_704, 2_765_568),
    # one extra layer: a 3x3 64->64 conv + BN on each side
    ("batch", "batch", 1, 3_576_704 + 36_864 + 128, 2_765_568 + 36_864 + 128),
])
def test_parameter_counts(g_norm, d_norm, extra, n_g, n_d):
    m = build_models("dcgan64", generator_norm=g_norm, critic_norm=d_norm, conv_impl="lax",
                     extra_layers=extra)
    assert m.latent_dim == 100 and m.data_shape == (64, 64, 3)
    assert _count(m.generator, (2, 100)) == n_g
    assert _count(m.critic, (2, 64, 64, 3)) == n_d


def test_rejects_bad_sizes_and_options():
    with pytest.raises(ValueError, match="power of two"):
        _count(PaperDCGANCritic(image_size=48), (2, 48, 48, 3))
    with pytest.raises(ValueError, match="64x64"):
        _count(PaperDCGANCritic(), (2, 32, 32, 3))


# ---------------------------------------------------------------- init


def test_init_is_the_papers():
    m = build_models("dcgan64", generator_norm="batch", critic_norm="batch", conv_impl="lax")
    for net, shape in ((m.generator, (2, 100)), (m.critic, (2, 64, 64, 3))):
        params = jax.jit(net.init)(jax.random.key(1, impl="rbg"),
                                   jnp.zeros(shape))["params"]
        kernels = 0
        for path, leaf in jax.tree_util.tree_leaves_with_path(params):
            name, leaf = jax.tree_util.keystr(path), np.asarray(leaf, np.float64)
            if name.endswith("['scale']"):  # BN weight ~ N(1, 0.02)
                assert leaf.mean() == pytest.approx(1.0, abs=5 * 0.02 / math.sqrt(leaf.size))
                assert leaf.std() == pytest.approx(0.02, rel=6 / math.sqrt(2 * leaf.size))
            elif name.endswith("['bias']"):  # only batch-norm offsets: no conv has a bias
                assert "norm" in name, name
                np.testing.assert_array_equal(leaf, 0.0)
            else:  # every conv / transposed conv ~ N(0, 0.02)
                kernels += 1
                assert abs(leaf.mean()) < 5 * 0.02 / math.sqrt(leaf.size), name
                tol = max(0.02, 6 / math.sqrt(2 * leaf.size))
                assert leaf.std() == pytest.approx(0.02, rel=tol), name
                assert np.abs(leaf).max() > 3 * 0.02  # a normal, not a narrow uniform
        assert kernels == 5


# ---------------------------------------------------------------- forward vs PyTorch semantics


def _conv2d(x, w, stride, pad):
    """torch.nn.functional.conv2d: x (N, C, H, W), w (Cout, Cin, k, k)."""
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (xp.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], oh, oh))
    for i in range(k):
        for j in range(k):
            patch = xp[:, :, i:i + stride * oh:stride, j:j + stride * oh:stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out


def _conv_transpose2d(x, w, stride, pad):
    """torch.nn.functional.conv_transpose2d: x (N, Cin, H, W), w (Cin, Cout, k, k);
    input pixel i and tap t add into output pixel stride*i + t - pad."""
    k, h = w.shape[2], x.shape[2]
    full = np.zeros((x.shape[0], w.shape[1], (h - 1) * stride + k, (h - 1) * stride + k))
    for i in range(k):
        for j in range(k):
            full[:, :, i:i + stride * (h - 1) + 1:stride, j:j + stride * (h - 1) + 1:stride] += \
                np.einsum("nchw,co->nohw", x, w[:, :, i, j])
    size = (h - 1) * stride - 2 * pad + k
    return full[:, :, pad:pad + size, pad:pad + size]


def _batchnorm(x, p):
    """torch BatchNorm2d in train mode: batch statistics, biased variance, eps 1e-5."""
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    scale = np.asarray(p["scale"], np.float64)[None, :, None, None]
    offset = np.asarray(p["bias"], np.float64)[None, :, None, None]
    return (x - mean) / np.sqrt(var + 1e-5) * scale + offset


def _torch_w(k):
    """This package's kernel -> the PyTorch weight layout (the inverse of the mapping the module
    documents): conv (k, k, cin, cout) -> (cout, cin, k, k); transposed conv (k, k, cout, cin)
    -> (cin, cout, k, k)."""
    return np.transpose(np.asarray(k, np.float64), (3, 2, 0, 1))


def _relu(x):
    return np.maximum(x, 0)


def _lrelu(x):
    return np.where(x > 0, x, 0.2 * x)


def _random_params(module, shape, seed):
    shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros(shape, jnp.float32))
    rng = np.random.default_rng(seed)

    def fill(path, s):
        name = jax.tree_util.keystr(path)
        if "scale" in name:
            v = 1.0 + 0.3 * rng.normal(size=s.shape)
        elif "bias" in name:  # the batch-norm offsets
            v = 0.3 * rng.normal(size=s.shape)
        else:
            v = rng.normal(size=s.shape) / math.sqrt(np.prod(s.shape[:-1]))
        return jnp.asarray(v, jnp.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes["params"])


@pytest.mark.parametrize("extra", [0, 1])
def test_generator_matches_pytorch_semantics(extra):
    gen = PaperDCGANGenerator(image_size=16, out_channels=3, width=8, latent_dim=5,
                              extra_layers=extra, norm="batch", conv_impl="matmul")
    z = np.random.default_rng(0).normal(size=(6, 5))
    p = _random_params(gen, (6, 5), 1)
    got, _ = jax.jit(lambda p, z: gen.apply({"params": p}, z, mutable=["batch_stats"]))(
        p, jnp.asarray(z, jnp.float32))
    # PyTorch: ConvTranspose2d(nz, 16, 4, 1, 0) on a 1x1 map, BN, ReLU, ...
    w_in = np.transpose(np.asarray(p["input"], np.float64), (0, 3, 1, 2))  # (nz, c, 4, 4)
    x = _conv_transpose2d(z[:, :, None, None], w_in, 1, 0)
    assert x.shape == (6, 16, 4, 4)
    x = _relu(_batchnorm(x, p["input_norm"]))
    x = _relu(_batchnorm(_conv_transpose2d(x, _torch_w(p["deconv_0"]["kernel"]), 2, 1),
                         p["deconv_0_norm"]))
    if extra:
        x = _relu(_batchnorm(_conv2d(x, _torch_w(p["extra_0"]["kernel"]), 1, 1),
                             p["extra_0"]["norm"]))
    x = np.tanh(_conv_transpose2d(x, _torch_w(p["output"]["kernel"]), 2, 1))
    assert x.shape == (6, 3, 16, 16)
    np.testing.assert_allclose(np.asarray(got), np.transpose(x, (0, 2, 3, 1)), atol=2e-5)


@pytest.mark.parametrize("extra", [0, 1])
def test_critic_matches_pytorch_semantics(extra):
    critic = PaperDCGANCritic(image_size=16, width=4, extra_layers=extra, norm="batch",
                              conv_impl="matmul")
    x_nhwc = np.random.default_rng(2).normal(size=(5, 16, 16, 3))
    p = _random_params(critic, (5, 16, 16, 3), 3)
    got, _ = jax.jit(lambda p, x: critic.apply({"params": p}, x, mutable=["batch_stats"]))(
        p, jnp.asarray(x_nhwc, jnp.float32))
    x = np.transpose(x_nhwc, (0, 3, 1, 2))
    w = _torch_w
    x = _lrelu(_conv2d(x, w(p["conv_0"]["kernel"]), 2, 1))
    if extra:
        x = _lrelu(_batchnorm(_conv2d(x, w(p["extra_0"]["kernel"]), 1, 1), p["extra_0"]["norm"]))
    x = _lrelu(_batchnorm(_conv2d(x, w(p["conv_1"]["kernel"]), 2, 1), p["conv_1_norm"]))
    assert x.shape == (5, 8, 4, 4)
    out = _conv2d(x, w(p["output"]), 1, 0)  # Conv2d(8, 1, 4, 1, 0): a 1x1 map
    assert out.shape == (5, 1, 1, 1)
    np.testing.assert_allclose(np.asarray(got), out.reshape(-1), rtol=1e-5, atol=1e-5)


def test_gradient_penalty_matmul_equals_lax():
    # The GP critic loss's parameter gradients (double backprop through the 4x4 layers) agree
    # between the matmul formulation and XLA's convolutions.
    shape = (3, 16, 16, 3)
    rng = np.random.default_rng(4)
    real, fake = (jnp.asarray(rng.normal(size=shape), jnp.float32) for _ in range(2))
    eps = jnp.asarray(rng.uniform(size=(3,)), jnp.float32)
    grads = {}
    for impl in ("matmul", "lax"):
        critic = PaperDCGANCritic(image_size=16, width=4, norm="layer", conv_impl=impl)
        params = _random_params(critic, shape, 5)

        def loss(p, critic=critic):
            fn = lambda x: critic.apply({"params": p}, x)  # noqa: E731
            gp, _ = penalties.gradient_penalty(fn, real, fake, eps, weight=10.0)
            return jnp.mean(fn(fake)) - jnp.mean(fn(real)) + gp

        grads[impl] = jax.jit(jax.value_and_grad(loss))(params)
    assert np.isfinite(float(grads["matmul"][0]))
    np.testing.assert_allclose(float(grads["matmul"][0]), float(grads["lax"][0]), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grads["matmul"][1]), jax.tree.leaves(grads["lax"][1]),
                    strict=True):
        scale = float(np.abs(b).max())
        assert scale > 0
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4 * scale)


# ---------------------------------------------------------------- configs


def test_wgan_celeba64_config_is_the_papers_dcgan():
    c = wgan.get_config("celeba64")
    assert (c.model.arch, c.model.generator_norm, c.model.critic_norm) == \
        ("dcgan64", "batch", "batch")
    assert (c.batch_size, c.clip_value, c.optimizer.learning_rate) == (64, 0.01, 5e-5)
    config_lib.validate(c)


def test_extra_layers_config_errors():
    c = wgan_gp.get_config("celeba64")
    c.model.extra_layers = 1
    with pytest.raises(config_lib.ConfigError, match="model.extra_layers"):
        config_lib.validate(c)
    c.model.arch = "dcgan64"
    config_lib.validate(c)
    c.model.extra_layers = -1
    with pytest.raises(config_lib.ConfigError, match="model.extra_layers"):
        config_lib.validate(c)
    c = wgan_gp.get_config("cifar10")
    c.model.arch = "dcgan64"
    with pytest.raises(config_lib.ConfigError, match="model.arch"):
        config_lib.validate(c)
