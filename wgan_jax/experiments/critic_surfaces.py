"""Critic value surfaces against a fixed generator (Fig. 1a of Gulrajani et al. 2017).

The generator is fixed: fake points are real points plus unit Gaussian noise. Only the toy MLP
critic trains on each toy dataset with weight clipping, with the gradient penalty, and with a
spectrally normalized critic (Miyato et al.; WGAN loss, no penalty, no clipping).
A critic that reaches the optimum of the WGAN objective over 1-Lipschitz functions gives
mean D(real) - mean D(fake) = W1(real, fake); the exact W1 of the evaluation point sets (POT's
network simplex) is the yardstick. Each critic's network, optimizer and loss come from a
`Method` built from the config's shared main-config fields and its own (`config.method.<name>`).

Writes into the workdir
  critic_surfaces.png  the critic's value contours (rows: datasets, columns: methods) with real
                       (orange) and fake (green) points, as gan_toy.py draws them;
  points.npz           the evaluation points, `<dataset>_real` and `<dataset>_fake`;
  results.json         per dataset and method: the critic's EM estimate on the evaluation points,
                       their exact W1, the ratio, and the critic's largest input-gradient norm.

Run: python -m wgan_jax.experiments.critic_surfaces --workdir /tmp/surfaces
"""

from __future__ import annotations

import functools
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from wgan_jax import distances, penalties, registry
from wgan_jax.experiments import common, training
from wgan_jax.experiments.training import fixed_generator_batch, fixed_generator_batches
from wgan_jax.method import Method
from wgan_jax.models import Models, apply_critic
from wgan_jax.plotting import plt, save_palette_figure
from wgan_jax.visualize import toy_grid

# What every critic shares: they start from the same weights and see the same batches.
SHARED = ("seed", "model.toy_hidden", "model.toy_depth", "num_train_steps", "n_critic",
          "batch_size")


def em_estimate(critic_fn, real, fake) -> float:
    """The critic's EM estimate mean D(real) - mean D(fake) on the given point sets."""
    return float(jnp.mean(critic_fn(jnp.asarray(real))) - jnp.mean(critic_fn(jnp.asarray(fake))))


def input_grad_norms(critic_fn, x) -> jax.Array:
    """||grad_x D(x)|| at every row of `x` (lower bounds on the critic's Lipschitz constant)."""
    grads = penalties.input_gradients(critic_fn, jnp.asarray(x))
    return jnp.linalg.norm(grads, axis=-1)


def compare_to_w1(estimate: float, w1: float, lipschitz: float) -> dict[str, float]:
    """The estimate next to the exact W1: their ratio, and the ratio divided by a Lipschitz bound.

    On the same point sets, duality gives estimate <= L * W1 for an L-Lipschitz critic, so
    `ratio / lipschitz` is how close the critic, rescaled to be 1-Lipschitz, comes to the
    optimal critic (1 at the optimum); `lipschitz` here is the largest input-gradient norm seen
    (on the points and between them), a lower bound on L, so this can exceed 1 a little.
    """
    ratio = estimate / w1
    return {"em_estimate": estimate, "w1_exact": w1, "ratio": ratio,
            "lipschitz_lower_bound": lipschitz, "ratio_over_lipschitz": ratio / lipschitz}


def validate_config(config: ml_collections.ConfigDict) -> tuple[Method, dict[str, Method]]:
    """Check the experiment's own fields and build the methods: (the shared settings alone, with
    a plain critic, {name: Method}); a ConfigError names the first unusable field."""
    common.check_names(config, "datasets", registry.TOY_DATASETS, "is not a toy dataset")
    common.check_names(config, "methods", config.method.keys(),
                       "has no settings under config.method")
    common.check_positive_ints(config, "eval_points", "grid_size", "plot_points", "dpi")
    if not config.noise_std > 0:
        common.fail("noise_std", config.noise_std, "must be positive")
    # The trainer never reads the dataset: every dataset goes through one compiled trainer.
    dataset = config.datasets[0]
    plain = common.build_method(config, dataset=dataset, **{"model.critic_norm": "none"})
    methods = {n: common.build_method(config, config.method[n], where=f"method.{n}",
                                      dataset=dataset) for n in config.methods}
    common.check_shared({f"method.{n}": m for n, m in methods.items()}, plain, SHARED)
    return plain, methods


def _critic_fns(models: Models):
    """Jitted `(params, variables, x) -> D(x)` and `-> ||grad_x D(x)||` per row."""
    values = jax.jit(lambda p, v, x: apply_critic(models, p, v, x, False)[0])
    grad_norms = jax.jit(lambda p, v, x: input_grad_norms(functools.partial(values, p, v), x))
    return values, grad_norms


def _initial_variables(models: Models, init_params, key):
    """(params, variables) of `models`' critic starting from the plain critic's `init_params`
    (the spectral-norm wrapper nests them under 'critic' and adds its power-iteration vectors)."""
    if not models.spectral:
        return init_params, {}
    variables = dict(models.critic.init(key, jnp.zeros((1, 2))))
    variables.pop("params")
    return {"critic": init_params}, variables


def _plot(config, surfaces, points, results, path: str) -> None:
    datasets, methods = list(config.datasets), list(config.methods)
    r = config.grid_range
    xs = np.linspace(-r, r, config.grid_size)
    n_show = min(config.plot_points, config.eval_points)
    fig, axes = plt.subplots(len(datasets), len(methods), squeeze=False,
                             figsize=(3.3 * len(methods), 3.3 * len(datasets)))
    for i, ds in enumerate(datasets):
        real, fake = points[ds]
        for j, method in enumerate(methods):
            ax = axes[i, j]
            # Transposed as in gan_toy.py: the grid is x-major, contour wants rows = y.
            ax.contour(xs, xs, surfaces[ds][method].T, levels=20, linewidths=0.7)
            ax.scatter(real[:n_show, 0], real[:n_show, 1], c="orange", marker="+", s=8,
                       linewidths=0.6)
            ax.scatter(fake[:n_show, 0], fake[:n_show, 1], c="green", marker="+", s=8,
                       linewidths=0.6)
            ax.set_xlim(-r, r)
            ax.set_ylim(-r, r)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            res = results[ds][method]
            label = config.method[method].get(common.LABEL) or method
            ax.set_title(f"{ds}, {label}\nestimate/W1 = {res['ratio']:.3g}", fontsize=8)
    fig.tight_layout()
    save_palette_figure(fig, path, config.dpi)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains the critics, writes the figure, points.npz and results.json; returns the numbers."""
    plain, methods = validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    models = {m: methods[m].models() for m in config.methods}
    grid = jnp.asarray(toy_grid(config.grid_range, config.grid_size))
    key = jax.random.PRNGKey(plain.seed)
    k_init, k_train, k_eval = jax.random.split(key, 3)
    # Every dataset and method starts from the same initial critic weights.
    init_params = plain.models().critic.init(k_init, jnp.zeros((1, 2)))["params"]
    init = {m: _initial_variables(models[m], init_params, jax.random.fold_in(k_init, 1))
            for m in config.methods}

    trainers = {m: training.make_critic_trainer(methods[m]) for m in config.methods}
    fns = {m: _critic_fns(models[m]) for m in config.methods}

    results: dict[str, Any] = {}
    surfaces: dict[str, dict[str, np.ndarray]] = {}
    points: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for d_idx, ds in enumerate(config.datasets):
        real, fake = fixed_generator_batch(ds, jax.random.fold_in(k_eval, d_idx),
                                           config.eval_points, config.noise_std)
        real, fake = np.asarray(real), np.asarray(fake)
        points[ds] = (real, fake)
        w1 = distances.w1_points(real, fake)
        interp = np.asarray(penalties.interpolate(real, fake, jax.random.uniform(
            jax.random.fold_in(k_eval, 1000 + d_idx), (config.eval_points,))))
        k_data, k_steps = jax.random.split(jax.random.fold_in(k_train, d_idx))
        # Every method sees the same batches.
        batches = fixed_generator_batches(ds, k_data, training.critic_updates(plain),
                                          plain.batch_size, config.noise_std)
        results[ds], surfaces[ds] = {}, {}
        for method in config.methods:
            start = time.perf_counter()
            params, variables, em_trace = trainers[method](*init[method], *batches, k_steps)
            em_trace = np.asarray(em_trace)
            seconds = time.perf_counter() - start
            values, grad_norms = fns[method]
            critic_fn = functools.partial(values, params, variables)
            estimate = em_estimate(critic_fn, real, fake)
            norms = functools.partial(grad_norms, params, variables)
            grid_norms = np.asarray(norms(grid))
            # Where the transport happens: the points and segments between real-fake pairs.
            support_norms = np.asarray(norms(np.concatenate([real, fake, interp])))
            row = compare_to_w1(estimate, w1, float(support_norms.max()))
            row["grad_norm_max_grid"] = float(grid_norms.max())
            tail = em_trace[-max(1, len(em_trace) // 10):]
            row.update(train_seconds=seconds, grad_norm_mean_grid=float(grid_norms.mean()),
                       batch_em_last_tenth=float(tail.mean()))
            if not all(math.isfinite(v) for v in row.values()):
                raise FloatingPointError(f"{ds}/{method}: non-finite result {row}")
            results[ds][method] = row
            surfaces[ds][method] = np.asarray(critic_fn(grid)).reshape(
                config.grid_size, config.grid_size)

    _plot(config, surfaces, points, results, os.path.join(workdir, "critic_surfaces.png"))
    np.savez_compressed(os.path.join(workdir, "points.npz"),
                        **{f"{ds}_{kind}": points[ds][i] for ds in points
                           for i, kind in enumerate(("real", "fake"))})
    out = {"runs": results, "config": config.to_dict()}
    common.write_results(workdir, out, indent=2)
    return out


if __name__ == "__main__":
    common.main(run, "critic_surfaces", lambda r: r["runs"])
