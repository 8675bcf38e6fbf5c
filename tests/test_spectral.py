"""Spectral normalization in the critic: state handling in the step, and training runs."""
import jax
import numpy as np
import pytest

from configs import spectral
from wgan_jax import train
from wgan_jax.models import apply_critic, build_models
from wgan_jax.optim import make_optimizer
from wgan_jax.state import create_train_state
from wgan_jax.step import StepConfig, critic_update, generator_update


def _state():
    models = build_models("toy", critic_norm="spectral", toy_hidden=8)
    tx = make_optimizer("adam", 1e-3)
    return create_train_state(models, tx, tx, jax.random.PRNGKey(0))


def test_power_iteration_vectors_update_in_critic_steps_only():
    state = _state()
    assert "spectral" in state.d_vars
    real = jax.random.normal(jax.random.PRNGKey(1), (8, 2))
    fake = real + 1.0
    cfg = StepConfig(gp_weight=0.1)
    new_state, _ = critic_update(state, cfg, real, fake, jax.random.PRNGKey(2), axis_name=None)
    d_vars = new_state.d_vars
    changed = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(state.d_vars),
                                                      jax.tree.leaves(d_vars), strict=True)]
    assert any(changed)
    # The generator step reads the critic but returns no critic variables, and the critic
    # call it makes leaves them as they were.
    _, new = apply_critic(state.models, state.d_params, state.d_vars, fake, False)
    for a, b in zip(jax.tree.leaves(state.d_vars), jax.tree.leaves(new), strict=True):
        np.testing.assert_array_equal(a, b)
    out = generator_update(state, cfg, jax.random.PRNGKey(3), 8, axis_name=None)
    assert len(out) == 4 and out[3]["generator_loss"].shape == ()


def test_normalized_critic_is_1_lipschitz_after_power_iterations():
    state = _state()
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 2))
    d_vars = state.d_vars
    for _ in range(60):
        _, d_vars = apply_critic(state.models, state.d_params, d_vars, x, True)
    # Every kernel divided by its largest singular value: each layer is 1-Lipschitz, ReLU too,
    # so the input-gradient norm of the critic is at most 1 (up to power-iteration error).
    grads = jax.vmap(jax.grad(lambda xi: apply_critic(state.models, state.d_params, d_vars,
                                                      xi[None], False)[0][0]))(x * 3)
    norms = np.linalg.norm(np.asarray(grads), axis=1)
    assert np.all(norms <= 1.0 + 1e-3)
    sigmas = {"/".join(str(getattr(k, "key", k)) for k in path): float(v)
              for path, v in jax.tree_util.tree_leaves_with_path(d_vars["spectral"])
              if str(path[-1]).endswith("sigma']")}
    kernels = {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
               for path, v in jax.tree_util.tree_leaves_with_path(state.d_params)
               if str(path[-1]).endswith("kernel']")}
    assert len(sigmas) == len(kernels) == 4
    expected = sorted(np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0]
                      for k in kernels.values())
    np.testing.assert_allclose(sorted(sigmas.values()), expected, rtol=1e-3)


@pytest.mark.parametrize("variant", ["wgan", "wgan_gp", "gan"])
def test_spectral_config_variants_train(tmp_path, variant):
    c = spectral.get_config(variant)
    c.num_train_steps, c.batch_size, c.model.toy_hidden = 2, 16, 16
    c.eval.toy.num_samples, c.eval.toy.w1_samples = 100, 100
    c.log_every_steps = 1
    out = train.train_and_evaluate(c, str(tmp_path))
    assert np.isfinite(out.train["critic_loss"]) and np.isfinite(out.train["generator_loss"])
    assert ("gradient_penalty" in out.train) == (variant == "wgan_gp")
    if variant == "gan":
        # The standard GAN loss from logits: BCE on real and fake, both positive.
        assert out.train["critic_loss"] > 0


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown variant"):
        spectral.get_config("bogus")
