"""Critic value surfaces against a fixed generator (Fig. 1a of Gulrajani et al. 2017).

The generator is fixed: fake points are real points plus unit Gaussian noise. Only the toy MLP
critic trains on each toy dataset with weight clipping, with the gradient penalty, and with a
spectrally normalized critic (Miyato et al.; WGAN loss, no penalty, no clipping).
A critic that reaches the optimum of the WGAN objective over 1-Lipschitz functions gives
mean D(real) - mean D(fake) = W1(real, fake); the exact W1 of the evaluation point sets (POT's
network simplex) is the yardstick.

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
import io
import math
import os
import time
from typing import Any

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax import lax  # noqa: E402

from wgan_jax.experiments import common
from wgan_jax import distances, penalties  # noqa: E402
from wgan_jax.data import toy  # noqa: E402
from wgan_jax.models import Models, build_models  # noqa: E402
from wgan_jax.optim import make_optimizer  # noqa: E402
from wgan_jax.step import StepConfig, apply_critic, critic_update  # noqa: E402
from wgan_jax.visualize import toy_grid  # noqa: E402

METHODS = ("clipping", "gp", "spectral")
METHOD_TITLES = {"clipping": "weight clipping", "gp": "gradient penalty",
                 "spectral": "spectral norm"}


@functools.partial(jax.jit, static_argnames=("dataset", "n"))
def fixed_generator_batch(dataset: str, key: jax.Array, n: int,
                          noise_std: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """`n` real points and `n` fake points; fake = fresh real points + N(0, noise_std^2).

    The fake points come from their own real draw (gan_toy.py adds the noise to the real batch
    itself): same fake distribution, but the two batches are independent samples, as the
    two distributions are in a GAN.
    """
    k_real, k_base, k_noise = jax.random.split(key, 3)
    real = toy.sample(dataset, k_real, n)
    fake = toy.sample(dataset, k_base, n) + noise_std * jax.random.normal(k_noise, (n, 2))
    return real, fake


def make_critic_trainer(models: Models, step_cfg: StepConfig, tx):
    """A compiled `(params, variables, real, fake, key) -> (params, variables, em_trace)` training
    the critic alone.

    `variables` are the critic's non-param collections (the spectral norm's power-iteration
    vectors; empty otherwise). `real` and `fake` are [steps, batch, 2]: one batch per step,
    consumed by one `lax.scan`; `em_trace` is the batch EM estimate of every step. The datasets
    share one compilation.
    """

    @jax.jit
    def train(params, variables, real, fake, key):
        def body(carry, xs):
            p, v, o = carry
            r, f, k = xs
            p, v, o, metrics = critic_update(models, step_cfg, tx, p, v, o, r, f, k,
                                             axis_name=None)
            return (p, v, o), metrics["em_distance"]

        keys = jax.random.split(key, real.shape[0])
        (p, v, _), em = lax.scan(body, (params, variables, tx.init(params)), (real, fake, keys))
        return p, v, em

    return train


def fixed_generator_batches(dataset: str, key: jax.Array, steps: int, batch_size: int,
                            noise_std: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Real and fake batches for `steps` steps, each [steps, batch_size, 2]."""
    real, fake = fixed_generator_batch(dataset, key, steps * batch_size, noise_std)
    return real.reshape(steps, batch_size, 2), fake.reshape(steps, batch_size, 2)


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


def _method_setup(config: ml_collections.ConfigDict, method: str):
    if method == "clipping":
        c = config.clipping
        tx = make_optimizer(c.optimizer, c.learning_rate, clip_value=c.clip_value)
        return StepConfig(gp_weight=0.0), tx
    g = config.gp if method == "gp" else config.spectral
    lr = g.learning_rate
    if g.linear_decay:
        lr = optax.linear_schedule(g.learning_rate, 0.0, config.steps)
    tx = make_optimizer(g.optimizer, lr, b1=g.b1, b2=g.b2)
    return StepConfig(gp_weight=g.gp_weight if method == "gp" else 0.0), tx


def _method_models(config: ml_collections.ConfigDict, method: str) -> Models:
    norm = "spectral" if method == "spectral" else "none"
    return build_models("toy", critic_norm=norm, toy_hidden=config.hidden,
                        toy_depth=config.depth)


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


def save_figure(fig, path: str, dpi: int, colors: int = 128) -> None:
    """Saves `fig` as a palette PNG: contour plots compress several times smaller that way."""
    from PIL import Image  # matplotlib depends on Pillow

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    plt.close(fig)
    buf.seek(0)
    image = Image.open(buf).convert("RGB")
    image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first field with an unusable value."""
    for name in config.datasets:
        if name not in toy.TOY_DATASETS:
            raise ValueError(f"datasets: unknown toy dataset {name!r}")
    for method in config.methods:
        if method not in METHODS:
            raise ValueError(f"methods must be among {METHODS}, got {method!r}")
    for field in ("steps", "batch_size", "eval_points", "hidden", "depth", "grid_size"):
        if config[field] < 1:
            raise ValueError(f"{field} must be at least 1, got {config[field]}")
    if not config.noise_std > 0:
        raise ValueError(f"noise_std must be positive, got {config.noise_std}")
    if not config.clipping.clip_value > 0:
        raise ValueError(f"clipping.clip_value must be positive, got {config.clipping.clip_value}")
    if not config.gp.gp_weight > 0:
        raise ValueError(f"gp.gp_weight must be positive, got {config.gp.gp_weight}")


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
            ax.set_title(f"{ds}, {METHOD_TITLES[method]}\nestimate/W1 = {res['ratio']:.3g}",
                         fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, config.dpi)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains the critics, writes the figure, points.npz and results.json; returns the numbers."""
    validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    models = {m: _method_models(config, m) for m in config.methods}
    grid = jnp.asarray(toy_grid(config.grid_range, config.grid_size))
    key = jax.random.PRNGKey(config.seed)
    k_init, k_train, k_eval = jax.random.split(key, 3)
    # Every dataset and method starts from the same initial critic weights.
    plain = _method_models(config, "gp").critic
    init_params = plain.init(k_init, jnp.zeros((1, 2)))["params"]
    init = {m: _initial_variables(models[m], init_params, jax.random.fold_in(k_init, 1))
            for m in config.methods}

    trainers = {m: make_critic_trainer(models[m], *_method_setup(config, m))
                for m in config.methods}
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
        batches = fixed_generator_batches(ds, k_data, config.steps, config.batch_size,
                                          config.noise_std)
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
