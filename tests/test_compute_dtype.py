"""compute_dtype='bfloat16': bfloat16 operands with float32 accumulation, float32 state."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import bf16_error
from wgan_jax import layers
from wgan_jax.config import ConfigError
from wgan_jax.method import Method, config_with
from wgan_jax.parallel import make_mesh, replicated
from wgan_jax.step import make_train_step


def _rounded64(x) -> np.ndarray:
    """`x` rounded to bfloat16, then exactly in float64."""
    return np.asarray(jnp.asarray(x, jnp.float32).astype(jnp.bfloat16).astype(jnp.float32),
                      np.float64)


def test_matmul_is_the_exact_product_of_rounded_operands_accumulated_in_float32():
    a = jax.random.normal(jax.random.PRNGKey(0), (64, 300))
    b = jax.random.normal(jax.random.PRNGKey(1), (300, 40))
    y = layers.matmul(a, b, "bfloat16")
    assert y.dtype == jnp.float32
    want = _rounded64(a) @ _rounded64(b)
    np.testing.assert_allclose(np.asarray(y, np.float64), want, rtol=1e-5, atol=1e-5)
    # and it is not the float32 product: the operands really were rounded
    assert np.max(np.abs(np.asarray(a @ b, np.float64) - want)) > 1e-3
    np.testing.assert_array_equal(layers.matmul(a, b), a @ b)
    with pytest.raises(ValueError, match="compute_dtype"):
        layers.matmul(a, b, "float16")


@pytest.mark.parametrize("fn, kshape", [(layers.conv_stride2, (5, 5, 3, 8)),
                                        (layers.conv_stride2, (4, 4, 3, 8)),
                                        (layers.deconv_stride2, (5, 5, 8, 3)),
                                        (layers.conv_stride1, (3, 3, 3, 8))])
def test_bfloat16_convs_match_xla_convs_of_the_rounded_operands(fn, kshape):
    """The matmul form equals XLA's convolution on the same bfloat16 operands, and both equal
    the float32 convolution of the rounded inputs (float32 accumulation)."""
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 8, 8, 3))
    k = jax.random.normal(jax.random.PRNGKey(3), kshape) * 0.1
    ours = fn(x, k, "matmul", "bfloat16")
    xla = fn(x, k, "lax", "bfloat16")
    assert ours.dtype == xla.dtype == jnp.float32
    r = lambda v: jnp.asarray(_rounded64(v), jnp.float32)  # noqa: E731
    ref = fn(r(x), r(k), "lax")
    np.testing.assert_allclose(ours, xla, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_gradient_penalty_and_its_parameter_gradient_stay_close_to_float32():
    """The figures BENCHMARKS.md reports (benchmarks/bf16_error.py), on a small batch."""
    for seed in range(1):
        err = bf16_error.compare("mnist", 8, seed)
        assert err["loss_rel_err"] < 1e-2 and err["penalty_rel_err"] < 1e-2, err
        assert err["grad_rel_err"] < 0.1 and err["grad_cosine"] > 0.99, err
        assert err["grad_rel_err"] > 0  # the bfloat16 path was taken


def test_bfloat16_step_keeps_float32_parameters_and_optimizer_state():
    method = Method.from_config(config_with({
        "dataset": "mnist", "evals": ("samples",), "batch_size": 4, "compute_dtype": "bfloat16",
        "gp_weight": 10.0, "ema_decay": 0.9, "model": {"arch": "mnist"}}))
    mesh = make_mesh(jax.devices()[:1])
    state = jax.device_put(method.init_state(), replicated(mesh))
    batch = jax.random.uniform(jax.random.PRNGKey(0), (5, 4, 28, 28, 1))
    step = make_train_step(method.step, mesh)
    before = jax.device_get(state.d_params)  # the step donates its input state
    new, metrics = step(state, batch)
    leaves = jax.tree.leaves((new.g_params, new.d_params, new.g_opt_state, new.d_opt_state,
                              new.g_ema))
    floats = [x for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)]
    assert floats and all(x.dtype == jnp.float32 for x in floats)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    moved = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), before,
                         jax.device_get(new.d_params))
    assert max(jax.tree.leaves(moved)) > 0


def test_compute_dtype_is_validated():
    with pytest.raises(ConfigError, match="compute_dtype"):
        Method.from_config(config_with({"compute_dtype": "float16"}))
