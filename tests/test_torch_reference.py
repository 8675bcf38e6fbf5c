"""The PyTorch reference (benchmarks/torch_reference.py) computes wgan_jax's WGAN-GP.

On the same weights (a `TrainState` loaded into the torch modules) and the same inputs (real
batch, z, eps): generator samples, per-example critic values, EM estimate, gradient penalty and
its per-example norms, critic and generator losses; then one full step (n_critic = 2 critic
updates and one generator update, with the draws wgan_jax's step makes) gives the same metrics
and parameters. toy, mnist, cifar and resnet32 at batch 4, float32. These need torch (the `torchref`
extra) and skip without it; the benchmark driver's table and argument checks need only numpy.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import vs_torch

ROOT = Path(__file__).resolve().parents[1]
try:
    import torch  # noqa: F401
    HAS_TORCH = True
except ImportError:
    HAS_TORCH = False
needs_torch = pytest.mark.skipif(not HAS_TORCH,
                                 reason="torch not installed (pip install -e '.[torchref]')")
BATCH, N_CRITIC = 4, 2
ADAM_EPS = 1e-5
# float32 values computed by two implementations (different convolution algorithms and
# summation orders) agree to a few ulps of the tensor's scale.
RTOL, REL_ATOL = 2e-5, 2e-5
# resnet32 has ~10^5 ReLUs per example, some within float32 rounding of their kink (|pre-ReLU|
# down to 1e-7 at batch 4): a unit can be on in one implementation and off in the other, which
# changes that example's input gradient by one unit's share (1e-3 of its norm seen) and, after
# Adam's normalisation, moves the parameters whose gradients it dominates by up to ~lr.
KINKS_RTOL = {"resnet32": 2e-3}
# share of a network's parameters allowed beyond 5% of a step (never beyond 2 lr)
KINKS_SHARE = {"resnet32": 0.01}


def _close(a, b, what, rtol=RTOL, rel_atol=REL_ATOL):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(b))), 1e-30)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rel_atol * scale, err_msg=what)


def _method(arch):
    from benchmarks.step_throughput import method_config
    from wgan_jax.method import Method

    config = method_config(arch, "gp", batch=BATCH, n_critic=N_CRITIC, fast_compile=True)
    # Some gradients are 0 in one implementation and float32 rounding noise (~1e-9) in the
    # other (a toy bias whose contributions cancel); Adam with eps=1e-8 turns that noise into
    # lr-sized steps. With eps=1e-5 it moves such a parameter by < 1e-3 lr; real gradients
    # here are >= 1e-3 (the losses and penalty do not depend on eps).
    config.optimizer.eps = ADAM_EPS
    if arch == "resnet32":
        config.model.generator_norm = "batch"  # gan_cifar_resnet.py's generator
    return Method.from_config(config)


def _jax_terms(method, state, real, z, eps):
    """wgan_jax's own functions (jitted) on the given inputs."""
    import jax

    from wgan_jax import losses, penalties
    from wgan_jax.models import apply_critic, apply_generator

    models = state.models
    em_fn = getattr(losses, "em_distance", None) or losses.em_estimate

    @jax.jit
    def terms(g_params, g_vars, d_params, d_vars):
        def critic(x):
            return apply_critic(models, d_params, d_vars, x, False)[0]

        fake, _ = apply_generator(models, g_params, g_vars, z)
        d_real, d_fake = critic(real), critic(fake)
        gp, norms = penalties.gradient_penalty(critic, real, fake, eps, method.step.gp_weight)
        return {"fake": fake, "d_real_values": d_real, "d_fake_values": d_fake,
                "em_distance": em_fn(d_real, d_fake), "gradient_penalty": gp,
                "grad_norms": norms,
                "critic_loss": losses.wgan_critic_loss(d_real, d_fake) + gp,
                "generator_loss": losses.wgan_generator_loss(d_fake)}

    return jax.tree.map(np.asarray, terms(state.g_params, state.g_vars, state.d_params,
                                          state.d_vars))


def _step_draws(state, n_critic, batch, latent):
    """The z, eps and generator z of wgan_jax's step (`step.train_step`, one device), drawn
    from the state's rng as it draws them."""
    import jax

    step_key = jax.random.fold_in(state.rng, state.step)
    zs, eps = [], []
    for i in range(n_critic):
        k_z, k_rest = jax.random.split(jax.random.fold_in(step_key, i))
        zs.append(jax.random.normal(k_z, (batch, latent)))
        eps.append(jax.random.uniform(jax.random.split(k_rest)[0], (batch,)))
    z_g = jax.random.normal(jax.random.fold_in(step_key, n_critic), (batch, latent))
    return np.stack(zs), np.stack(eps), np.array(z_g)


@pytest.fixture(scope="module", params=["toy", "mnist", "cifar", "resnet32"])
def pair(request):
    """For one arch: the method, its initial state (host copy), the torch reference with the
    same weights, and fixed inputs."""
    import jax

    from benchmarks import torch_reference as tr

    method = _method(request.param)
    state = method.init_state()
    rng = np.random.default_rng(0)
    shape, latent = tuple(state.models.data_shape), method.arch.latent_dim
    lo, hi = method.arch.output_range or (-2.0, 2.0)
    inputs = {"reals": rng.uniform(lo, hi, (N_CRITIC, BATCH) + shape).astype(np.float32),
              "z": rng.normal(size=(BATCH, latent)).astype(np.float32),
              "eps": rng.uniform(size=BATCH).astype(np.float32)}
    ref = tr.TorchWGANGP.from_method(method, state)
    return {"arch": request.param, "method": method, "state": jax.tree.map(np.array, state),
            "ref": ref, "tr": tr, **inputs}


@needs_torch
def test_weights_load_and_export_unchanged(pair):
    import jax

    g, d = pair["tr"].export_params(pair["ref"].models)
    st = pair["state"]
    for got, want in ((g, st.g_params), (d, st.d_params)):
        assert jax.tree.structure(got) == jax.tree.structure(jax.tree.map(np.asarray, want))
        for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_array_equal(x, y)


@needs_torch
def test_losses_and_penalty_equal_wgan_jax(pair):
    import torch

    tr, ref, st = pair["tr"], pair["ref"], pair["state"]
    real, z, eps = pair["reals"][0], pair["z"], pair["eps"]
    want = _jax_terms(pair["method"], st, real, z, eps)
    fake = ref.generate(torch.from_numpy(z))
    _close(tr.to_nhwc(fake), want["fake"], "generator samples")
    # the critic terms on identical inputs: wgan_jax's fake batch in both
    got = ref.critic_terms(tr.to_nchw(real), tr.to_nchw(want["fake"]), torch.from_numpy(eps))
    got = {k: v.detach().numpy() for k, v in got.items()}
    got["generator_loss"] = ref.generator_loss(torch.from_numpy(z)).detach().numpy()
    kinks = KINKS_RTOL.get(pair["arch"], RTOL)
    for k in ("d_real_values", "d_fake_values"):
        _close(got[k], want[k], k)
    _close(got["grad_norms"], want["grad_norms"], "grad_norms", kinks, kinks)
    # scalars are compared relative to the per-example values they are means of
    scale = float(np.max(np.abs(want["d_real_values"])) + np.max(np.abs(want["d_fake_values"])))
    for k in ("em_distance", "critic_loss", "generator_loss"):
        np.testing.assert_allclose(got[k], want[k], rtol=RTOL, atol=REL_ATOL * scale, err_msg=k)
    _close(got["gradient_penalty"], want["gradient_penalty"], "gradient_penalty", kinks, kinks)
    # the inputs are not degenerate: the penalty is active and the critic separates the batches
    assert float(want["gradient_penalty"]) > 0
    assert np.ptp(want["d_real_values"]) > 0 and abs(float(want["em_distance"])) > 0


@needs_torch
def test_one_full_step_equals_wgan_jax(pair):
    import jax
    import jax.numpy as jnp
    import torch

    from wgan_jax.parallel import batch_sharding, make_mesh, replicated
    from wgan_jax.step import make_train_step

    tr, st, method = pair["tr"], pair["state"], pair["method"]
    ref = tr.TorchWGANGP.from_method(method, st)  # its own copy: this test changes the weights
    zs, eps, z_g = _step_draws(st, N_CRITIC, BATCH, method.arch.latent_dim)
    got = ref.train_step(torch.stack([tr.to_nchw(r) for r in pair["reals"]]),
                         torch.from_numpy(zs), torch.from_numpy(eps), torch.from_numpy(z_g))
    g_got, d_got = tr.export_params(ref.models)

    mesh = make_mesh(jax.devices()[:1])
    step = make_train_step(method.step, mesh, fast_compile=True)
    new, metrics = step(jax.device_put(st, replicated(mesh)),
                        jax.device_put(jnp.asarray(pair["reals"]), batch_sharding(mesh)))
    new = jax.tree.map(np.asarray, new)
    tol = max(1e-4, KINKS_RTOL.get(pair["arch"], 0.0))
    for k in ("em_distance", "em_distance_last", "gradient_penalty", "critic_loss",
              "generator_loss"):
        np.testing.assert_allclose(got[k], float(metrics[k]), rtol=tol,
                                   atol=tol * abs(float(metrics["d_real"])) + 1e-6, err_msg=k)
    # Adam's first steps move each parameter by about lr * sign(grad): both implementations
    # take the same steps unless a gradient is at float32 noise level, so the tolerance is a
    # small fraction of one step (5%: the worst element seen, 1 of cifar's 1M generator input
    # weights, is 2.2%, behind per-feature batch norm over 4 examples). Many parameters moved
    # (not all: the toy MLPs' dead ReLU units get zero gradients): the check is not vacuous.
    lr = method.optimizer.learning_rate
    for name, got_p, old_p, new_p in (("generator", g_got, st.g_params, new.g_params),
                                      ("critic", d_got, st.d_params, new.d_params)):
        offs = []
        for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(got_p),
                                jax.tree.leaves(new_p), strict=True):
            where = f"{name} {jax.tree_util.keystr(path)}"
            layer, leaf = path[0].key, path[-1].key
            # A bias right before batch norm has zero gradient in exact arithmetic (the norm
            # subtracts the batch mean): both sides step on rounding noise, by at most lr.
            before_norm = leaf == "bias" and f"{layer}_norm" in got_p
            share = KINKS_SHARE.get(pair["arch"], 0.0)
            if before_norm or share:
                np.testing.assert_allclose(x, y, rtol=0, atol=2.0 * lr, err_msg=where)
            if not before_norm:
                offs.append(np.abs(np.ravel(x) - np.ravel(y)) > 0.05 * lr)
        off = np.mean(np.concatenate(offs))
        assert off <= share, f"{name}: {off:.2%} of parameters differ by > 5% of lr"
        moved = np.concatenate([np.abs(np.ravel(y - y0)) for y, y0 in
                                zip(jax.tree.leaves(new_p), jax.tree.leaves(old_p), strict=True)])
        assert np.mean(moved > 0.5 * lr) > 0.25, f"{name}: the step barely moved the params"


# --------------------------------------------------------- without torch: the driver's parts

def test_table_ratios_and_best_vs_best():
    rates = {("jax", "float32"): [1.0, 3.0, 2.0], ("jax", "bfloat16"): [4.0, 4.0, 5.0],
             ("torch", "float32"): [1.0, 1.0, 1.0], ("torch", "bfloat16"): [8.0, 7.0, 9.0]}
    row = vs_torch.summarize("mnist", rates, {})
    assert row["medians"] == {("jax", "float32"): 2.0, ("jax", "bfloat16"): 4.0,
                              ("torch", "float32"): 1.0, ("torch", "bfloat16"): 8.0}
    assert row["f32_ratio"] == pytest.approx(2.0 / 1.0)
    assert row["best_vs_best"] == pytest.approx(4.0 / 8.0)
    line = vs_torch.table_row(row)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:7] == ["mnist", "2.000", "4.000", "1.000", "8.000", "2.00", "0.50"]


def test_table_row_without_a_precision_leaves_its_cells_empty():
    row = vs_torch.summarize("toy", {("jax", "float32"): [2.0], ("torch", "float32"): [4.0]}, {})
    cells = [c.strip() for c in vs_torch.table_row(row).strip("|").split("|")]
    assert cells[:7] == ["toy", "2.000", "", "4.000", "", "0.50", "0.50"]


def test_driver_refuses_unknown_arch_and_precision():
    with pytest.raises(SystemExit, match="arch"):
        vs_torch.parse_args(["--archs", "toy,resnet99"])
    with pytest.raises(SystemExit, match="precision"):
        vs_torch.parse_args(["--precisions", "float16"])


def test_driver_refuses_an_arch_step_throughput_has_no_settings_for(monkeypatch):
    from benchmarks import step_throughput

    monkeypatch.delitem(step_throughput.DEFAULT_BATCH, "mnist")
    with pytest.raises(SystemExit, match="'mnist'.*step_throughput"):
        vs_torch.parse_args(["--archs", "toy,mnist"])
    assert vs_torch.parse_args([]).archs == tuple(a for a in vs_torch.ARCHS if a != "mnist"
                                                  and a in step_throughput.DEFAULT_BATCH)


def test_shell_wrapper_parses():
    subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "vs_torch.sh")], check=True,
                   timeout=30)


def test_worker_without_torch_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(SystemExit) as exc:
        vs_torch.main(["--worker", "torch", "--archs", "toy"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "pip install" in err and "torchref" in err


@needs_torch
def test_driver_archs_are_the_references():
    from benchmarks import torch_reference as tr

    assert vs_torch.ARCHS == tr.ARCHS
