"""bf16_dot: values, first and second derivatives, batching, and that the gradient penalty's
parameter gradient runs every product in the bfloat16 x bfloat16 -> float32 form."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.profile_step import hlo_dots
from wgan_jax.bf16_dot import SKINNY, bf16_dot
from wgan_jax.method import Method, config_with
from wgan_jax.models import apply_critic
from wgan_jax.penalties import gradient_penalty

CONTRACTS = [(1, 0), (0, 0), (1, 1), (0, 1)]


def _round(x) -> np.ndarray:
    """float64 copy of x rounded to bfloat16."""
    return np.asarray(jnp.asarray(x, jnp.float32).astype(jnp.bfloat16), np.float64)


def _operands(contract, m=16, k=12, n=10, seed=0):
    """(a, b) laid out for `contract`, and their (m, k), (k, n) float64 rounded forms."""
    ka, kb = jax.random.split(jax.random.PRNGKey(seed))
    a, b = jax.random.normal(ka, (m, k)), jax.random.normal(kb, (k, n))
    a_, b_ = (a if contract[0] == 1 else a.T), (b if contract[1] == 0 else b.T)
    return a_, b_, _round(a), _round(b), np.asarray(a, np.float64) @ np.asarray(b, np.float64)


@pytest.mark.parametrize("contract", CONTRACTS)
def test_value_is_the_product_of_the_rounded_operands(contract):
    a, b, ra, rb, exact = _operands(contract)
    y = bf16_dot(a, b, contract)
    assert y.dtype == jnp.float32 and y.shape == (16, 10)
    np.testing.assert_allclose(np.asarray(y, np.float64), ra @ rb, rtol=1e-6, atol=1e-6)
    assert np.max(np.abs(np.asarray(y, np.float64) - exact)) > 1e-3  # the operands were rounded


@pytest.mark.parametrize("contract", CONTRACTS)
def test_gradients_are_products_of_the_rounded_cotangent(contract):
    # loss = sum(c * y) with c exactly representable in bfloat16: the cotangent is c, so
    # a_bar = c rb^T and b_bar = ra^T c, each in float64, laid out as a and b.
    a, b, ra, rb, _ = _operands(contract)
    c = jnp.asarray(_round(jax.random.normal(jax.random.PRNGKey(9), (16, 10))), jnp.float32)
    ga, gb = jax.grad(lambda a, b: jnp.sum(c * bf16_dot(a, b, contract)), (0, 1))(a, b)
    want_a, want_b = np.asarray(c, np.float64) @ rb.T, ra.T @ np.asarray(c, np.float64)
    np.testing.assert_allclose(ga, want_a if contract[0] == 1 else want_a.T, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gb, want_b if contract[1] == 0 else want_b.T, rtol=1e-6, atol=1e-6)
    # a cotangent that bfloat16 cannot hold is rounded: the result is the rounded one's
    c2 = c * (1 + 2.0 ** -12)
    ga2 = jax.grad(lambda a: jnp.sum(c2 * bf16_dot(a, b, contract)))(a)
    np.testing.assert_allclose(ga2, ga, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("contract", CONTRACTS)
@pytest.mark.parametrize("axes", [(0, None), (1, None), (2, None), (None, 0), (None, 2), (0, 1)])
def test_vmap_equals_a_loop_over_the_mapped_axis(contract, axes):
    a, b, *_ = _operands(contract)
    def stack(x, ax, s):
        return x if ax is None else jnp.stack([x * (1 + i) for i in range(s)], ax)
    A, B = stack(a, axes[0], 4), stack(b, axes[1], 4)
    got = jax.vmap(lambda x, y: bf16_dot(x, y, contract), in_axes=axes)(A, B)
    def pick(x, ax, i):
        return x if ax is None else jnp.take(x, i, axis=ax)
    want = jnp.stack([bf16_dot(pick(A, axes[0], i), pick(B, axes[1], i), contract)
                      for i in range(4)])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def _critic_penalty(w, x):
    """A one-layer critic's gradient penalty, per-example vmap as in penalties.py."""
    def critic(xb):
        return jnp.sum(jnp.tanh(bf16_dot(xb.reshape(-1, 16), w)), axis=1)
    return gradient_penalty(critic, x, 0.5 * x, jnp.full((x.shape[0],), 0.3))[0]


def test_penalty_parameter_gradient_matches_float64_and_never_batches_weight_gradients():
    # 10 examples: the per-example products, folded into rows, are not skinny
    w = jax.random.normal(jax.random.PRNGKey(1), (16, 12)) / 4
    x = jax.random.normal(jax.random.PRNGKey(2), (10, 16))
    got = jax.grad(_critic_penalty)(w, x)
    # float64 reference on the rounded operands (cotangents unrounded): bfloat16-close
    with jax.enable_x64(True):
        w64, x64 = jnp.asarray(_round(w)), jnp.asarray(_round(0.3 * x + 0.7 * 0.5 * x))
        def crit(w, xi):
            return jnp.sum(jnp.tanh(xi @ w))
        def pen(w):
            g = jax.vmap(jax.grad(crit, 1), (None, 0))(w, x64)
            return 10.0 * jnp.mean((jnp.sqrt(jnp.sum(g ** 2, axis=1)) - 1.0) ** 2)
        want = np.asarray(jax.grad(pen)(w64))
    assert np.max(np.abs(got - want)) < 2e-2 * np.max(np.abs(want))
    # every product of the double backward is a 2-D bf16_dot (the per-example axis folded into
    # rows): no batched dot_general, i.e. no per-example weight gradients
    jaxpr = str(jax.make_jaxpr(jax.grad(_critic_penalty))(w, x))
    assert "bf16_dot" in jaxpr and "dot_general" not in jaxpr


def _mnist_critic_gradient():
    """The lowered parameter gradient of the bfloat16 mnist critic's mean output plus its
    gradient penalty: the forward, backward and double backward of a real critic."""
    m = Method.from_config(config_with({"dataset": "mnist", "evals": ("samples",),
                                        "batch_size": 2, "compute_dtype": "bfloat16",
                                        "model": {"arch": "mnist"}}))
    state = m.init_state()
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 28, 28, 1))

    def loss(params):
        def f(xb):
            return apply_critic(state.models, params, state.d_vars, xb, False)[0]
        return jnp.mean(f(x)) + gradient_penalty(f, x, -x, jnp.full((2,), 0.5))[0]

    return jax.jit(jax.grad(loss)).lower(state.d_params)


def test_every_product_of_the_mnist_penalty_gradient_is_bf16_in_f32_out():
    # Each dot's operands are bfloat16 and its result float32 (the form XLA:CPU and GPU/TPU
    # matrix units run fast).
    text = _mnist_critic_gradient().as_text()
    dots = [ln for ln in text.splitlines() if "stablehlo.dot_general" in ln]
    wide = 0
    for ln in dots:
        shapes = re.findall(r"tensor<([^>]*)>", ln.split(":")[-1])
        types = [t.split("x")[-1] for t in shapes]
        dims = [int(d) for t in shapes[:2] for d in t.split("x")[:-1]]
        if min(dims) < SKINNY:  # matrix-vector products (the last Linear): float32
            assert types == ["f32", "f32", "f32"], ln
            continue
        wide += 1
        assert types[:2] == ["bf16", "bf16"] and types[-1] == "f32", ln
        # and the lhs contracted on its last axis, the only bf16 form XLA:CPU's kernels take
        lhs_axis = int(re.search(r"contracting_dims = \[(\d+)\]", ln).group(1))
        assert lhs_axis == len(shapes[0].split("x")) - 2, ln
    assert wide >= 3 * 3  # 3 conv layers, forward + backward + double backward


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's own choice of kernels")
def test_compiled_products_keep_bf16_operands_on_cpu():
    # XLA:CPU converts a bf16 dot back to float32 when an operand's layout is not row-major (a
    # plain `x.T` is a column-major view): the traced program is right, the compiled one slow.
    # Every derivative of every operand layout, and the critic's loss + penalty gradient.
    texts = []
    for contract in CONTRACTS:
        a, b, *_ = _operands(contract)
        f = jax.grad(lambda a, b, contract=contract: jnp.sum(bf16_dot(a, b, contract) ** 2),
                     argnums=(0, 1))
        texts.append(jax.jit(f).lower(a, b).compile().as_text())
    texts.append(_mnist_critic_gradient().compile().as_text())
    for text in texts:
        dots = [d for found in hlo_dots(text).values() for d in found]
        assert dots
        wide = [(lhs, rhs, out) for _, lhs, rhs, out, _ in dots
                if min(lhs[1] + rhs[1]) >= SKINNY]
        assert wide and all(lhs[0] == rhs[0] == "bf16" and out[0] == "f32"
                            for lhs, rhs, out in wide), wide
    assert len(wide) >= 3 * 4  # the critic's: 3 conv layers, forward and 3 derivatives


def test_skinny_products_are_float32_products_of_the_unrounded_operands():
    for shape_a, shape_b in [((16, 12), (12, 1)), ((1, 12), (12, 16)), ((16, 4), (4, 10))]:
        a = jax.random.normal(jax.random.PRNGKey(3), shape_a)
        b = jax.random.normal(jax.random.PRNGKey(4), shape_b)
        exact = np.asarray(a, np.float64) @ np.asarray(b, np.float64)
        np.testing.assert_allclose(bf16_dot(a, b), exact, rtol=1e-5, atol=1e-5)
        c = jax.random.normal(jax.random.PRNGKey(5), exact.shape)
        ga = jax.grad(lambda a, b, c: jnp.sum(c * bf16_dot(a, b)))(a, b, c)
        np.testing.assert_allclose(ga, np.asarray(c, np.float64) @ np.asarray(b, np.float64).T,
                                   rtol=1e-5, atol=1e-5)


def test_clear_errors():
    with pytest.raises(ValueError, match="2-D operands"):
        bf16_dot(jnp.ones((2, 3, 4)), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="contracted axes differ"):
        bf16_dot(jnp.ones((2, 3)), jnp.ones((4, 2)))



def _resnet32_gradient_dots():
    """The dots of the compiled bfloat16 resnet32 (width 8, batch 8) critic loss + gradient
    penalty parameter gradient (forward, backward and double backward of every critic layer)
    and generator loss gradient (the generator's upsampling convs and batch norms): the
    products of a gp train step, in two programs smaller to compile than the whole step."""
    from wgan_jax.models import build_models

    m = build_models("resnet32", width=8, generator_norm="batch", conv_impl="matmul",
                     compute_dtype="bfloat16")
    z = jax.ShapeDtypeStruct((8, 128), jnp.float32)
    x = jax.ShapeDtypeStruct((8,) + m.data_shape, jnp.float32)
    g = jax.eval_shape(m.generator.init, jax.random.key(0), z)
    d = jax.eval_shape(m.critic.init, jax.random.key(0), x)["params"]

    def critic_loss(params, x):
        def f(xb):
            return m.critic.apply({"params": params}, xb)
        return jnp.mean(f(x)) + gradient_penalty(f, x, -x, jnp.full((8,), 0.5))[0]

    def generator_loss(g_params, d_params, z, stats):
        fake, _ = m.generator.apply({"params": g_params, "batch_stats": stats}, z,
                                    mutable=["batch_stats"])
        return -jnp.mean(m.critic.apply({"params": d_params}, fake))

    texts = [jax.jit(jax.grad(critic_loss)).lower(d, x).compile().as_text(),
             jax.jit(jax.grad(generator_loss)).lower(g["params"], d, z, g["batch_stats"])
             .compile().as_text()]
    return [[d for found in hlo_dots(t).values() for d in found] for t in texts]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's own choice of kernels")
def test_compiled_resnet32_products_keep_bf16_operands_on_cpu():
    # 3x3 convs, 1x1 shortcuts, convs after upsampling and before/after mean pooling, Linears,
    # and their derivatives; the resampling layers are reshapes and sums, not products.
    # resnet64 is built from the same layer functions (layer norm has no product).
    for dots, least in zip(_resnet32_gradient_dots(), (4 * 9, 2 * 8), strict=True):
        wide = [(lhs, rhs, out) for _, lhs, rhs, out, _ in dots
                if min(lhs[1] + rhs[1]) >= SKINNY]
        assert all(lhs[0] == rhs[0] == "bf16" and out[0] == "f32" for lhs, rhs, out in wide), \
            [w for w in wide if (w[0][0], w[1][0], w[2][0]) != ("bf16", "bf16", "f32")]
        # critic: its nine 3x3 convs, each with a forward and three derivatives; generator:
        # its eight 3x3 convs (the critic's too), each with a forward and a data gradient
        assert len(wide) >= least, len(wide)
