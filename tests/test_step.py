"""Tests of the compiled training step: update counts, an independent re-implementation of the
WGAN-GP iteration, device-count invariance, weight clipping, EMA, compilation, config checks.

Every multi-device call is awaited before the next one (collectives left in flight on few CPU
cores can stall XLA's CPU rendezvous)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wgan_jax import parallel
from wgan_jax import step as step_mod
from wgan_jax.models import Models, build_models
from wgan_jax.models.dcgan import DCGANCritic, DCGANGenerator
from wgan_jax.optim import make_optimizer
from wgan_jax.parallel import batch_sharding, make_mesh, replicated
from wgan_jax.state import create_train_state
from wgan_jax.step import StepConfig, make_train_step

N_CRITIC, BATCH, CALLS = 5, 8, 3
CLIP = 0.01
ULP = float(np.spacing(np.float32(CLIP)))




def _host(tree):
    """A host copy (the step donates its input state)."""
    return jax.tree.map(np.array, tree)


def _assert_trees_close(a, b, rtol=1e-4, rel_atol=1e-4, what=""):
    """Leafwise allclose; the absolute tolerance is relative to the largest entry of `b`."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert len(la) > 0
    scale = max(float(np.max(np.abs(y))) for y in lb)
    assert scale > 0
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), lb, strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rel_atol * scale,
                                   err_msg=f"{what} {jax.tree_util.keystr(path)}")


def _init_state(models, g_tx, d_tx, seed=0):
    """`create_train_state`, compiled as one program (much quicker than op by op)."""
    return jax.jit(lambda k: create_train_state(models, g_tx, d_tx, k))(
        jax.random.PRNGKey(seed))


def _run(init, cfg, batches, n_devices, fast_compile=False):
    """len(batches) steps on `n_devices` devices from the host state `init`; returns host copies
    of the state after every call and the metrics, plus the number of traces and compiled
    variants of the step."""
    traces = []
    orig = step_mod.train_step

    def counting(*args, **kwargs):
        traces.append(1)
        return orig(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(step_mod, "train_step", counting)
        mesh = make_mesh(jax.devices()[:n_devices])
        step = make_train_step(cfg, mesh, fast_compile=fast_compile)
    assert mesh.devices.size == n_devices  # conftest provides 4 CPU devices
    state = jax.device_put(init, replicated(mesh))
    states, metrics = [], []
    for b in batches:
        state, m = step(state, jax.device_put(jnp.asarray(b), batch_sharding(mesh)))
        jax.block_until_ready((state, m))
        states.append(_host(state))
        metrics.append({k: float(v) for k, v in m.items()})
    return {"init": init, "states": states, "metrics": metrics, "traces": len(traces),
            "cache_size": step._cache_size()}


# ---------------------------------------------------------------- toy WGAN-GP

TOY_CFG = StepConfig(gp_weight=10.0, ema_decay=0.5)


def _toy_models():
    return build_models("toy", toy_hidden=16)


def _toy_tx():
    # Adam keeps its update count in its state. A larger eps than usual: some gradients are 0 up
    # to float rounding (e.g. the bias of an always-active unit), and with eps=1e-8 Adam turns
    # that +-1e-8 noise into +-lr steps, which two correct implementations need not share.
    return make_optimizer("adam", 1e-3, eps=1e-4)


def _toy_batches():
    return np.random.default_rng(0).normal(size=(CALLS, N_CRITIC, BATCH, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def toy_runs():
    models, tx = _toy_models(), _toy_tx()
    init = _host(_init_state(models, tx, tx))
    return {n: _run(init, TOY_CFG, _toy_batches(), n) for n in (1, 4)}


def _reference_toy(init, batches, weight=10.0, ema=0.5):
    """WGAN-GP written out independently of the library's step, losses and penalty code."""
    models, tx = _toy_models(), _toy_tx()
    G = lambda p, z: models.generator.apply({"params": p}, z)  # noqa: E731
    D = lambda p, x: models.critic.apply({"params": p}, x)  # noqa: E731

    @jax.jit
    def critic_iter(g, d, opt, real, key):
        k_z, k_rest = jax.random.split(key)
        fake = G(g, jax.random.normal(k_z, (BATCH, models.latent_dim)))
        eps = jax.random.uniform(jax.random.split(k_rest)[0], (BATCH,))
        x_hat = eps[:, None] * real + (1.0 - eps[:, None]) * fake

        def loss(p):
            slopes = jnp.sqrt(jnp.sum(jax.grad(lambda x: D(p, x).sum())(x_hat) ** 2, axis=1))
            return D(p, fake).mean() - D(p, real).mean() + weight * jnp.mean((slopes - 1) ** 2)

        em = D(d, real).mean() - D(d, fake).mean()
        upd, opt = tx.update(jax.grad(loss)(d), opt, d)
        return optax.apply_updates(d, upd), opt, em

    @jax.jit
    def gen_update(g, d, opt, key):
        z = jax.random.normal(key, (BATCH, models.latent_dim))
        loss, grads = jax.value_and_grad(lambda p: -D(d, G(p, z)).mean())(g)
        upd, opt = tx.update(grads, opt, g)
        return optax.apply_updates(g, upd), opt, loss

    g, d = init.g_params, init.d_params
    g_opt, d_opt, g_ema = init.g_opt_state, init.d_opt_state, init.g_ema
    out = []
    for s, batch in enumerate(batches):
        step_key = jax.random.fold_in(init.rng, s)
        ems = []
        for i in range(N_CRITIC):
            d, d_opt, em = critic_iter(g, d, d_opt, batch[i], jax.random.fold_in(step_key, i))
            ems.append(float(em))
        g, g_opt, g_loss = gen_update(g, d, g_opt, jax.random.fold_in(step_key, N_CRITIC))
        g_ema = jax.tree.map(lambda e, p: ema * e + (1 - ema) * p, g_ema, g)
        out.append({"g": _host(g), "d": _host(d), "g_ema": _host(g_ema), "ems": ems,
                    "g_loss": float(g_loss)})
    return out


@pytest.fixture(scope="module")
def toy_reference(toy_runs):
    return _reference_toy(toy_runs[1]["init"], _toy_batches())


def test_update_counts_five_critic_one_generator(toy_runs):
    for run in toy_runs.values():
        for calls, st in enumerate(run["states"], start=1):
            assert int(st.step) == calls
            assert int(optax.tree_utils.tree_get(st.d_opt_state, "count")) == N_CRITIC * calls
            assert int(optax.tree_utils.tree_get(st.g_opt_state, "count")) == calls


def test_step_matches_independent_wgan_gp(toy_runs, toy_reference):
    run = toy_runs[1]
    for s, (st, m, ref) in enumerate(zip(run["states"], run["metrics"], toy_reference,
                                         strict=True)):
        _assert_trees_close(st.d_params, ref["d"], what=f"critic after call {s}")
        _assert_trees_close(st.g_params, ref["g"], what=f"generator after call {s}")
        _assert_trees_close(st.g_ema, ref["g_ema"], what=f"ema after call {s}")
        assert m["em_distance_last"] == pytest.approx(ref["ems"][-1], rel=1e-4, abs=1e-6)
        assert m["em_distance"] == pytest.approx(np.mean(ref["ems"]), rel=1e-4, abs=1e-6)
        assert m["generator_loss"] == pytest.approx(ref["g_loss"], rel=1e-4, abs=1e-6)
    # the networks really moved, so the comparison above is not between two copies of init
    moved = np.abs(run["states"][-1].d_params["out"]["kernel"]
                   - run["init"].d_params["out"]["kernel"]).max()
    assert moved > 1e-3


def test_toy_one_device_equals_four(toy_runs):
    one, four = toy_runs[1], toy_runs[4]
    _assert_trees_close(four["init"], one["init"], what="init")
    for s in range(CALLS):
        a, b = four["states"][s], one["states"][s]
        _assert_trees_close(a.d_params, b.d_params, what=f"critic, call {s}")
        _assert_trees_close(a.g_params, b.g_params, what=f"generator, call {s}")
        for k in ("em_distance", "gradient_penalty", "generator_loss", "grad_norm_min",
                  "grad_norm_max", "critic_loss"):
            assert four["metrics"][s][k] == pytest.approx(one["metrics"][s][k], rel=1e-4,
                                                          abs=1e-6), k


def test_generator_ema(toy_runs):
    run = toy_runs[1]
    first = run["states"][0]
    want = jax.tree.map(lambda e, p: 0.5 * e + 0.5 * p, run["init"].g_params, first.g_params)
    _assert_trees_close(first.g_ema, want, rtol=1e-6, rel_atol=1e-6)
    second = run["states"][1]
    want = jax.tree.map(lambda e, p: 0.5 * e + 0.5 * p, first.g_ema, second.g_params)
    _assert_trees_close(second.g_ema, want, rtol=1e-6, rel_atol=1e-6)
    diff = jax.tree.leaves(jax.tree.map(lambda a, b: np.abs(a - b).max(), first.g_ema,
                                        first.g_params))
    assert max(diff) > 0  # the average is not the current params


def test_fast_compile_options_compute_the_same_step(toy_runs):
    # The XLA:CPU compile options change code generation, not the function.
    assert parallel.CPU_FAST_COMPILE_OPTIONS
    fast = _run(toy_runs[1]["init"], TOY_CFG, _toy_batches(), 1, fast_compile=True)
    for s in range(CALLS):
        _assert_trees_close(fast["states"][s].d_params, toy_runs[1]["states"][s].d_params,
                            what=f"critic, call {s}")
        _assert_trees_close(fast["states"][s].g_params, toy_runs[1]["states"][s].g_params,
                            what=f"generator, call {s}")


def test_step_compiles_once(toy_runs):
    for run in toy_runs.values():
        assert run["traces"] == 1
        assert run["cache_size"] == 1


# ---------------------------------------------------------------- DCGAN, batch norm, clipping

CLIP_CFG = StepConfig(gp_weight=0.0)


def _dcgan_models():
    gen = DCGANGenerator(base_channels=16, channels=(8, 4), out_channels=1, crop_first=7,
                         output="sigmoid", latent_dim=8, norm="batch", conv_impl="lax")
    critic = DCGANCritic(channels=(4, 8, 8), norm="batch", conv_impl="lax")
    return Models(generator=gen, critic=critic, latent_dim=8, data_shape=(28, 28, 1),
                  critic_norm="batch")


def _dcgan_batches():
    return np.random.default_rng(1).uniform(size=(CALLS, N_CRITIC, BATCH, 28, 28, 1)).astype(
        np.float32)


@pytest.fixture(scope="module")
def dcgan_runs():
    models = _dcgan_models()
    g_tx = make_optimizer("rmsprop", 1e-3, eps=1e-10)
    d_tx = make_optimizer("rmsprop", 1e-3, eps=1e-10, clip_value=CLIP)
    init = _host(_init_state(models, g_tx, d_tx))
    return {n: _run(init, CLIP_CFG, _dcgan_batches(), n) for n in (1, 4)}


def test_clip_mode_critic_params_in_box(dcgan_runs):
    for run in dcgan_runs.values():
        for st in run["states"]:
            leaves = jax.tree_util.tree_leaves_with_path(st.d_params)
            for path, leaf in leaves:
                assert np.all(np.abs(leaf) <= CLIP + ULP), jax.tree_util.keystr(path)
            # every variable is clipped, batch-norm scales included (1 -> 0.01)
            # (without clipping they would stay near 1)
            scale = st.d_params["conv_1_norm"]["scale"]
            assert np.all(scale <= CLIP + ULP) and np.all(scale > 0.5 * CLIP)
            flat = np.concatenate([np.abs(x).ravel() for x in jax.tree.leaves(st.d_params)])
            assert np.mean(np.abs(flat - CLIP) <= ULP) > 0.2  # many weights sit on the box
    # the generator is not clipped
    g = dcgan_runs[1]["states"][-1].g_params
    assert max(float(np.abs(x).max()) for x in jax.tree.leaves(g)) > 10 * CLIP


def test_dcgan_batchnorm_clip_one_device_equals_four(dcgan_runs):
    one, four = dcgan_runs[1], dcgan_runs[4]
    for s in range(CALLS):
        a, b = four["states"][s], one["states"][s]
        # clipped critic weights: compare values, to a tolerance far below the box size
        _assert_trees_close(a.d_params, b.d_params, rtol=1e-3, rel_atol=1e-3,
                            what=f"d_params, call {s}")
        # the rest: compare the changes from init, so the tolerance is relative to what the
        # step did (per-device batch statistics would fail this)
        for name in ("g_params", "g_vars", "d_vars"):
            da = jax.tree.map(lambda x, y: x - y, getattr(a, name), getattr(one["init"], name))
            db = jax.tree.map(lambda x, y: x - y, getattr(b, name), getattr(one["init"], name))
            _assert_trees_close(da, db, rtol=1e-3, rel_atol=1e-3, what=f"{name}, call {s}")
        for k in ("em_distance", "generator_loss", "critic_loss"):
            assert four["metrics"][s][k] == pytest.approx(one["metrics"][s][k], rel=1e-3,
                                                          abs=1e-6), k
    # the generator's batch statistics did move, so their comparison above is not vacuous
    var = one["states"][0].g_vars["batch_stats"]["deconv_0_norm"]["var"]
    assert np.abs(var - 1.0).max() > 1e-3


# ---------------------------------------------------------------- configuration


def test_step_config_is_hashable_and_static():
    a, b = StepConfig(gp_weight=1.0), StepConfig(gp_weight=1.0)
    assert hash(a) == hash(b) and a == b
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.gp_weight = 2.0  # type: ignore[misc]


def test_compile_options_this_xla_lacks_are_dropped_with_one_log_line(caplog):
    # XLA releases add and remove options (jax 0.12 has no xla_cpu_use_fusion_emitters): a run
    # keeps what the running XLA accepts instead of failing to compile.
    import logging
    with caplog.at_level(logging.WARNING):
        kept = parallel.supported_compile_options(
            {"xla_backend_optimization_level": 1, "xla_no_such_option_here": True}, "cpu")
    assert kept == {"xla_backend_optimization_level": 1}
    lines = [r.getMessage() for r in caplog.records if "no compile option" in r.getMessage()]
    assert len(lines) == 1 and "xla_no_such_option_here" in lines[0]
