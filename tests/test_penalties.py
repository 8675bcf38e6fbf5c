"""Tests of wgan_jax.penalties: closed forms, a second method, and finite differences."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jax.test_util import check_grads

from wgan_jax import losses, penalties
from wgan_jax.models import build_models
from wgan_jax.models.dcgan import DCGANCritic
from wgan_jax.models.mlp import MLPCritic


def _linear_critic(w, b):
    """D(x) = <w, x> + b for x of any per-example shape; its input gradient is w everywhere."""
    return lambda x: x.reshape(x.shape[0], -1) @ w.reshape(-1) + b


def _rand(seed, shape, scale=1.0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale, jnp.float32)


def _np_params(module, x, seed, dtype=np.float32):
    """Parameters of `module` with numpy values (no per-shape PRNG compiles): kernels
    ~ U(+-sqrt(3/fan_in)), everything else ~ 1 + 0.3 N(0,1) for scales, 0.1 N(0,1) otherwise."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(module.init, jax.random.key(0), x)

    def fill(path, s):
        name = jax.tree_util.keystr(path)
        if "kernel" in name:
            b = np.sqrt(3.0 / int(np.prod(s.shape[:-1])))
            v = rng.uniform(-b, b, s.shape)
        elif "scale" in name:
            v = 1.0 + 0.3 * rng.normal(size=s.shape)
        else:
            v = 0.1 * rng.normal(size=s.shape)
        return jnp.asarray(v.astype(dtype))

    return jax.tree_util.tree_map_with_path(fill, shapes)


# ---------------------------------------------------------------- (a) linear critic


@functools.partial(jax.jit, static_argnames=("weight", "one_sided"))
def _linear_penalty(w, b, real, fake, eps, weight, one_sided=False):
    return penalties.gradient_penalty(_linear_critic(w, b), real, fake, eps, weight, one_sided)


@pytest.mark.parametrize("shape", [(2,), (4, 4, 2)])
@pytest.mark.parametrize("w_scale", [0.3, 2.5])
def test_linear_critic_penalty_closed_form(shape, w_scale):
    w = _rand(0, shape)
    w = w * (w_scale / jnp.linalg.norm(w))  # ||w|| = w_scale exactly (up to rounding)
    wn = float(np.linalg.norm(np.asarray(w, np.float64)))
    real, fake = _rand(1, (5,) + shape), _rand(2, (5,) + shape, 3.0)
    for seed in range(3):
        eps = jnp.asarray(np.random.default_rng(seed).uniform(size=5), jnp.float32)
        pen, norms = _linear_penalty(w, 0.7, real, fake, eps, weight=10.0)
        assert float(pen) == pytest.approx(10.0 * (wn - 1.0) ** 2, rel=1e-5)
        np.testing.assert_allclose(np.asarray(norms), np.full(5, wn), rtol=1e-6)


@pytest.mark.parametrize("shape", [(2,), (4, 4, 2)])
def test_linear_critic_one_sided(shape):
    w = _rand(3, shape)
    real, fake = _rand(4, (4,) + shape), _rand(5, (4,) + shape)
    eps = jnp.array([0.1, 0.5, 0.9, 0.3])
    small = w * (0.6 / jnp.linalg.norm(w))
    pen, _ = _linear_penalty(small, 0.0, real, fake, eps, 3.0, one_sided=True)
    assert float(pen) == 0.0
    # The two-sided variant does penalise ||w|| < 1: 3 * 0.4^2.
    pen2, _ = _linear_penalty(small, 0.0, real, fake, eps, 3.0)
    assert float(pen2) == pytest.approx(3.0 * 0.16, rel=1e-5)
    big = w * (1.8 / jnp.linalg.norm(w))
    pen, _ = _linear_penalty(big, 0.0, real, fake, eps, 3.0, one_sided=True)
    assert float(pen) == pytest.approx(3.0 * 0.8 ** 2, rel=1e-5)


def test_quadratic_critic_penalty_hand_value():
    # D(x) = 0.5 ||x||^2: grad = x_hat, so the penalty is weight * mean((||x_hat|| - 1)^2).
    real = jnp.array([[3.0, 4.0], [1.0, 0.0]])
    fake = jnp.array([[0.0, 0.0], [0.0, 2.0]])
    eps = jnp.array([0.5, 0.0])
    # x_hat = [[1.5, 2], [0, 2]] -> norms 2.5 and 2 -> mean(1.5^2, 1^2) = 1.625
    pen, norms = jax.jit(lambda r, f, e: penalties.gradient_penalty(
        lambda x: 0.5 * jnp.sum(x * x, axis=1), r, f, e, weight=2.0))(real, fake, eps)
    np.testing.assert_allclose(np.asarray(norms), [2.5, 2.0], rtol=1e-6)
    assert float(pen) == pytest.approx(2.0 * 1.625, rel=1e-6)


# ---------------------------------------------------------------- (b) input gradients


def _critics():
    toy = build_models("toy", toy_hidden=16).critic
    dc = DCGANCritic(channels=(4, 8, 8), conv_impl="matmul")
    ln = DCGANCritic(channels=(4, 8, 8), norm="layer", conv_impl="lax")
    ln_mlp = MLPCritic(hidden=16, norm="layer")
    return [("toy", toy, (2,)), ("dcgan", dc, (28, 28, 1)), ("dcgan_layer", ln, (28, 28, 1)),
            ("mlp_layer", ln_mlp, (2,))]


@pytest.mark.parametrize("name,critic,shape", _critics(), ids=[c[0] for c in _critics()])
def test_input_gradients_equal_grad_of_sum(name, critic, shape):
    x = _rand(7, (3,) + shape)
    params = _np_params(critic, x, 0)  # includes non-trivial layer-norm scales and offsets
    fn = lambda xb: critic.apply(params, xb)  # noqa: E731
    # one compiled program for both methods
    got, want = jax.jit(lambda xb: (penalties.input_gradients(fn, xb),
                                    jax.grad(lambda v: fn(v).sum())(xb)))(x)
    assert got.shape == x.shape
    assert float(jnp.max(jnp.abs(want))) > 0
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5,
                               atol=1e-6 * float(jnp.max(jnp.abs(want))))


# ---------------------------------------------------------------- (c) safe_norm


def test_safe_norm_value():
    x = np.random.default_rng(0).normal(size=(6, 7)).astype(np.float32)
    x[2] = 0.0
    got = penalties.safe_norm(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(got), np.linalg.norm(x, axis=-1), rtol=1e-6)
    assert float(got[2]) == 0.0
    got0 = penalties.safe_norm(jnp.asarray(x), axis=0)
    np.testing.assert_allclose(np.asarray(got0), np.linalg.norm(x, axis=0), rtol=1e-6)


def test_safe_norm_gradient():
    g0 = jax.grad(penalties.safe_norm)(jnp.zeros(3))
    assert np.all(np.isfinite(np.asarray(g0)))
    np.testing.assert_array_equal(np.asarray(g0), np.zeros(3))
    # and exact away from 0: d||x||/dx = x / ||x||
    v = jnp.array([3.0, -4.0, 0.0])
    np.testing.assert_allclose(np.asarray(jax.grad(penalties.safe_norm)(v)),
                               [0.6, -0.8, 0.0], rtol=1e-6)


def test_penalty_gradient_finite_at_zero_input_gradients():
    real, fake = _rand(0, (4, 3)), _rand(1, (4, 3))
    eps = jnp.full((4,), 0.5)

    def pen(w):
        return penalties.gradient_penalty(_linear_critic(w, 0.0), real, fake, eps, 10.0)[0]

    w0 = jnp.zeros(3)
    value, g = jax.jit(jax.value_and_grad(pen))(w0)
    assert float(value) == pytest.approx(10.0)  # all norms 0: (0 - 1)^2
    assert np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_array_equal(np.asarray(g), np.zeros(3))
    # a plain sqrt norm would give NaN here, so the check above is meaningful
    naive = jax.grad(lambda w: jnp.sqrt(jnp.sum(jnp.square(w))))(w0)
    assert not np.all(np.isfinite(np.asarray(naive)))


# ---------------------------------------------------------------- (d) interpolate


def test_interpolate_end_points_and_hand_value():
    real = jnp.arange(12.0).reshape(3, 2, 2, 1)
    fake = -2.0 * jnp.ones((3, 2, 2, 1))
    out = penalties.interpolate(real, fake, jnp.array([1.0, 0.0, 0.25]))
    np.testing.assert_array_equal(np.asarray(out[0]), np.asarray(real[0]))
    np.testing.assert_array_equal(np.asarray(out[1]), np.asarray(fake[1]))
    # 0.25 * [8, 9, 10, 11] + 0.75 * (-2) = [0.5, 0.75, 1.0, 1.25]
    np.testing.assert_allclose(np.asarray(out[2]).ravel(), [0.5, 0.75, 1.0, 1.25], rtol=1e-6)


# ---------------------------------------------------------------- (e) finite differences


def test_wgan_gp_critic_loss_param_grads_finite_differences():
    critic = MLPCritic(hidden=8, depth=2)
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        real = jnp.asarray(rng.normal(size=(4, 2)))
        fake = jnp.asarray(rng.normal(size=(4, 2)) * 2.0)
        eps = jnp.asarray(rng.uniform(size=4))
        params = _np_params(critic, real, 1, np.float64)  # non-zero biases too
        assert all(p.dtype == jnp.float64 for p in jax.tree.leaves(params))
        flat, unravel = ravel_pytree(params)

        def loss(ps):
            fn = lambda x: critic.apply(ps, x)  # noqa: E731
            out = fn(jnp.concatenate([real, fake]))
            pen, _ = penalties.gradient_penalty(fn, real, fake, eps, weight=10.0)
            return losses.wgan_critic_loss(out[:4], out[4:]) + pen

        flat_loss = jax.jit(lambda v: loss(unravel(v)))  # one array: fewer small eager ops
        assert flat_loss(flat).dtype == jnp.float64
        check_grads(flat_loss, (flat,), order=1, modes=["rev"], eps=1e-5, atol=1e-5, rtol=1e-5)
        # the penalty term is active: its gradient is not negligible
        g_pen = jax.jit(jax.grad(lambda v: penalties.gradient_penalty(
            lambda x: critic.apply(unravel(v), x), real, fake, eps, 10.0)[0]))(flat)
        assert float(jnp.sum(jnp.abs(g_pen))) > 1e-3


# ---------------------------------------------------------------- (f) jit


def test_penalty_double_backprop_same_under_jit():
    critic = MLPCritic(hidden=8, depth=1)  # small: the un-jitted path runs op by op
    real, fake = _rand(0, (6, 2)), _rand(1, (6, 2), 2.0)
    eps = jnp.asarray(np.random.default_rng(3).uniform(size=6), jnp.float32)
    params = _np_params(critic, real, 0)

    def pen(ps):
        return penalties.gradient_penalty(lambda x: critic.apply(ps, x), real, fake, eps)[0]

    g_eager = jax.grad(pen)(params)
    g_jit = jax.jit(jax.grad(pen))(params)
    for a, b in zip(jax.tree.leaves(g_eager), jax.tree.leaves(g_jit), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5,
                                   atol=1e-6 * float(jnp.max(jnp.abs(a))) + 1e-12)
    assert float(jnp.max(jnp.abs(g_eager["params"]["hidden_0"]["kernel"]))) > 1e-3
