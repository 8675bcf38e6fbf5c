"""The benchmark's analytic FLOP count against the reference table and against the dot_generals
actually traced in the library's training step."""

import jax
import jax.numpy as jnp
import pytest

from benchmarks.flops import iteration_flops, traced_dot_flops
from wgan_jax.models import build_models
from wgan_jax.optim import make_optimizer
from wgan_jax.state import create_train_state
from wgan_jax.step import StepConfig, train_step

# Reference table (ARCH.md section 4), GFLOP per generator iteration at the papers' batches.
REFERENCE = {("toy", "gp"): 16.15, ("toy", "clip"): 10.77, ("mnist", "gp"): 140.8,
             ("mnist", "clip"): 93.9, ("cifar", "gp"): 822.0, ("cifar", "clip"): 547.3}
BATCH = {"toy": 256, "mnist": 50, "cifar": 64, "celeba64": 64, "dcgan64": 64}


@pytest.mark.parametrize("arch,mode", sorted(REFERENCE))
def test_analytic_flops_match_reference_table(arch, mode):
    got = iteration_flops(arch, mode, BATCH[arch]) / 1e9
    assert got == pytest.approx(REFERENCE[(arch, mode)], abs=0.051 if arch == "toy" else 0.51)


@pytest.mark.parametrize("arch,mode", [("toy", "gp"), ("toy", "clip"), ("mnist", "gp"),
                                       ("mnist", "clip"), ("dcgan64", "gp")])
def test_traced_step_does_exactly_the_analytic_work(arch, mode):
    # Trace (not compile) the real per-device step with matmul convolutions and add up its
    # matrix multiplies: equal to the formula means no zero-cotangent waste in the double
    # backward and no extra critic passes.
    gen_norm = "batch" if arch == "dcgan64" else "none"
    models = build_models(arch, conv_impl="matmul", generator_norm=gen_norm)
    tx = make_optimizer("adam", 1e-4)
    state = jax.eval_shape(lambda k: create_train_state(models, tx, tx, k),
                           jax.random.PRNGKey(0))
    batch = jax.ShapeDtypeStruct((5, BATCH[arch]) + models.data_shape, jnp.float32)
    cfg = StepConfig(gp_weight=10.0 if mode == "gp" else 0.0)
    jaxpr = jax.make_jaxpr(
        lambda s, b: train_step(s, b, cfg=cfg, axis_name=None, n_devices=1))(state, batch)
    assert traced_dot_flops(jaxpr) == pytest.approx(iteration_flops(arch, mode, BATCH[arch]),
                                                    rel=1e-3)
