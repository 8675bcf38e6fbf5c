"""The step on whatever devices JAX has: XLA convolutions against the matmul form, and one device
against all. On CPU (CI) the devices are the four fake host devices; benchmarks/device_check.sh
runs this file on a GPU/TPU (WGAN_JAX_TEST_ACCELERATOR=1), where conv_impl 'auto' is 'lax'."""
import functools

import jax
import numpy as np
import pytest

from wgan_jax.method import Method, config_with
from wgan_jax.parallel import batch_sharding, make_mesh, replicated
from wgan_jax.step import make_train_step

STEPS, N_CRITIC = 2, 2


@functools.cache  # the tests share runs (each one compiles a step)
def _run(conv_impl: str, compute_dtype: str, n_devices: int, mode: str = "gp",
         per_device: int = 8):
    """STEPS steps of the mnist model; host copies of the final parameters and the metrics."""
    gp = mode == "gp"
    method = Method.from_config(config_with({
        "dataset": "mnist", "evals": ("samples",), "n_critic": N_CRITIC,
        "batch_size": per_device * n_devices, "compute_dtype": compute_dtype,
        "gp_weight": 10.0 if gp else 0.0, "clip_value": 0.0 if gp else 0.01,
        "model": {"arch": "mnist", "conv_impl": conv_impl,
                  "critic_norm": "none" if gp else "batch",
                  "generator_norm": "none" if gp else "batch"}}), num_devices=n_devices)
    mesh = make_mesh(jax.devices()[:n_devices])
    state = jax.device_put(method.init_state(), replicated(mesh))
    step = make_train_step(method.step, mesh)
    metrics = []
    for i in range(STEPS):
        batch = jax.random.uniform(jax.random.PRNGKey(i), (N_CRITIC, method.batch_size, 28, 28, 1))
        state, m = step(state, jax.device_put(batch, batch_sharding(mesh)))
        metrics.append(jax.device_get(m))
    return jax.device_get((state.g_params, state.d_params)), metrics


def _assert_close(a, b, rtol, share):
    """Metrics to `rtol`. Parameters: at least `share` of the entries of every kernel to `rtol`
    (plus 1e-3 of the kernel's largest entry), and every entry (biases and norm scales too,
    which after a few Adam steps are about +-lr from their init) within the distance the
    optimizer can move a weight in these steps (Adam moves a weight by about lr per update
    whatever its gradient's size, so rounding-level differences of near-zero gradients show up
    as lr-sized differences in a few entries)."""
    (pa, ma), (pb, mb) = a, b
    bound = 2 * 1e-4 * STEPS * N_CRITIC  # lr 1e-4 (Adam), 5e-5 (RMSProp)
    for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb), strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        scale = float(np.max(np.abs(y)))
        close = np.abs(x - y) <= rtol * np.abs(y) + 1e-3 * scale
        assert x.ndim < 2 or np.mean(close) >= share, (np.mean(close), x.shape)
        assert np.max(np.abs(x - y)) <= bound, (np.max(np.abs(x - y)), x.shape)
    # Step 0 runs both forms on identical parameters: its metrics differ by the convolutions'
    # rounding only. Later steps start from parameters that already differ by Adam-amplified
    # rounding (bounded above); with the penalty's lambda 10 that moved float32 losses by 1.04e-4
    # relative at step 1 under jax 0.12 on an AVX2 CPU, so they get 1e-3.
    for s in range(STEPS):
        tol = rtol if s == 0 else max(rtol, 1e-3)
        for k in ("em_distance", "critic_loss", "generator_loss"):
            assert ma[s][k] == pytest.approx(mb[s][k], rel=tol, abs=tol), (s, k)


@pytest.mark.parametrize("compute_dtype, rtol, share", [("float32", 1e-4, 0.99),
                                                         ("bfloat16", 2e-2, 0.9)])
def test_step_with_xla_convolutions_equals_the_matmul_form(compute_dtype, rtol, share):
    # float32 at full precision: GPUs would otherwise run float32 convs and dots as TF32
    with jax.default_matmul_precision("highest"):
        ours = _run("matmul", compute_dtype, 1, "gp", 8)
        xla = _run("lax", compute_dtype, 1, "gp", 8)
    _assert_close(ours, xla, rtol, share)
    assert ours[1][-1]["em_distance"] != ours[1][0]["em_distance"]  # the steps did something


@pytest.mark.parametrize("mode", ["gp"])  # clip with batch norm: tests/test_step.py (CPU)
def test_one_device_equals_all_devices(mode):
    n = len(jax.devices())
    auto = "matmul" if jax.default_backend() == "cpu" else "lax"  # conv_impl 'auto'
    per_device = max(8 // n, 1)
    with jax.default_matmul_precision("highest"):
        all_ = _run(auto, "float32", n, mode, per_device)
        one = _run(auto, "float32", 1, mode, per_device * n)
    _assert_close(all_, one, 1e-3, 0.99)
