"""Weight clipping in a deep critic: exploding and vanishing gradients, weights piled at +-c.

Fig. 1b and 1c of Gulrajani et al. (2017). A 12-layer ReLU MLP critic is trained on the Swiss
roll against a fixed generator (fake = real + N(0, 1)), with weight clipping at several c and
with the gradient penalty. After training, per layer (1 = next to the input, last = the output
layer) and averaged over a few batches:
  - the norm of the gradient of the Wasserstein critic loss mean D(fake) - mean D(real) with
    respect to the layer's pre-activations, the paper's measure ("with respect to successive
    layers of activations");
  - the norm of the gradient of the training loss (with the penalty, for GP) with respect to
    the layer's kernel.
Both are computed in float64 so that tiny values are not rounded away. Float32 training itself
loses them: `fraction_moved` is the fraction of kernel weights that training changed at all.
The histograms of all kernel weights show where clipping leaves the weights. Each setting's
critic, optimizer and loss come from a `Method` built from the config's shared main-config
fields and `config.method.clipping` (with the setting's clip value) or `config.method.gp`.

Writes into the workdir
  clipping_gradients.png  log10 gradient norms per layer, one line per setting;
  clipping_weights.png    histograms of the critic's kernel weights per setting;
  results.json            the per-layer log10 norms, the fraction of weights within 1% of +-c
                          (after the first clipping and after training), and the run times.

Run: python -m wgan_jax.experiments.clipping --workdir /tmp/clipping
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from wgan_jax import layers, losses, penalties, registry
from wgan_jax.experiments import common, training
from wgan_jax.experiments.training import fixed_generator_batch, fixed_generator_batches
from wgan_jax.method import Method
from wgan_jax.plotting import plt, save_palette_figure

# What every setting shares: the same batches, and per depth the same initial weights.
SHARED = ("seed", "model.toy_hidden", "num_train_steps", "n_critic", "batch_size")


def layer_names(params) -> list[str]:
    """The toy critic's linear layers in forward order: hidden_0 .. hidden_{depth-1}, out."""
    depth = sum(1 for name in params if name.startswith("hidden_"))
    return [f"hidden_{i}" for i in range(depth)] + ["out"]


def mlp_critic_apply(params, x: jax.Array, perturbations=None) -> jax.Array:
    """The toy critic (`MLPCritic`, no normalization) as a pure function of its parameters.

    `perturbations`, one array per layer shaped like that layer's pre-activation, is added to
    the pre-activations; at zero it changes nothing, and the gradient of a loss with respect to
    it is the gradient with respect to the activations.
    """
    names = layer_names(params)
    h = x.reshape(x.shape[0], -1)
    for i, name in enumerate(names):
        z = h @ params[name]["kernel"] + params[name]["bias"]
        if perturbations is not None:
            z = z + perturbations[i]
        h = z if name == "out" else layers.relu(z)
    return h.reshape(-1)


def fraction_at_bound(weights, c: float, rel_tol: float = 0.01) -> float:
    """Fraction of the weights (an array or a pytree of arrays) with ||w| - c| <= rel_tol * c."""
    flat = np.concatenate([np.ravel(np.asarray(w)) for w in jax.tree.leaves(weights)])
    return float(np.mean(np.abs(np.abs(flat) - c) <= rel_tol * c))


def kernels(params) -> list[np.ndarray]:
    """The kernels of the critic's layers, in forward order."""
    return [np.asarray(params[name]["kernel"]) for name in layer_names(params)]


def per_layer_grad_norms(grads, names) -> np.ndarray:
    """Frobenius norm of each named layer's kernel gradient, in the order of `names`."""
    return np.array([float(jnp.linalg.norm(grads[name]["kernel"])) for name in names])


def critic_loss(params, real, fake, eps, gp_weight: float) -> jax.Array:
    """The training loss: mean D(fake) - mean D(real), plus the gradient penalty if weighted."""
    def critic(x):
        return mlp_critic_apply(params, x)

    loss = losses.wgan_critic_loss(critic(real), critic(fake))
    if gp_weight > 0:
        loss = loss + penalties.gradient_penalty(critic, real, fake, eps, gp_weight)[0]
    return loss


_loss_grads = jax.jit(jax.grad(critic_loss), static_argnums=4)


def kernel_grad_norms(params, real, fake, eps, gp_weight: float) -> np.ndarray:
    """Per-layer norms of d(critic_loss)/d(kernel), forward order."""
    grads = _loss_grads(params, real, fake, eps, gp_weight)
    return per_layer_grad_norms(jax.device_get(grads), layer_names(params))


@jax.jit
def _activation_grads(params, real, fake):
    x = jnp.concatenate([real, fake])
    n_real = real.shape[0]
    zeros = [jnp.zeros((x.shape[0], params[name]["kernel"].shape[1]), x.dtype)
             for name in layer_names(params)]

    def loss(perturbations):
        d = mlp_critic_apply(params, x, perturbations)
        return losses.wgan_critic_loss(d[:n_real], d[n_real:])

    return [jnp.linalg.norm(g) for g in jax.grad(loss)(zeros)]


def activation_grad_norms(params, real, fake) -> np.ndarray:
    """Per-layer norms of d(mean D(fake) - mean D(real)) / d(pre-activations), forward order.

    Real and fake go through the network as one batch; each norm is over that whole batch.
    """
    return np.array([float(v) for v in _activation_grads(params, real, fake)])


def _log10(values) -> list[float]:
    with np.errstate(divide="ignore"):
        return [float(v) for v in np.log10(np.asarray(values, np.float64))]


def gradient_diagnostics(params, dataset: str, key, *, n_batches: int, batch_size: int,
                         noise_std: float, gp_weight: float) -> dict[str, Any]:
    """Per-layer gradient norms averaged over `n_batches` fresh batches, in float64."""
    batches = []
    for i in range(n_batches):
        k_batch, k_eps = jax.random.split(jax.random.fold_in(key, i))
        real, fake = fixed_generator_batch(dataset, k_batch, batch_size, noise_std)
        batches.append((np.asarray(real), np.asarray(fake),
                        np.asarray(jax.random.uniform(k_eps, (batch_size,)))))
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
        kern, act = [], []
        for real, fake, eps in batches:
            r, f, e = (jnp.asarray(a.astype(np.float64)) for a in (real, fake, eps))
            kern.append(kernel_grad_norms(p64, r, f, e, gp_weight))
            act.append(activation_grad_norms(p64, r, f))
    return {"log10_activation_grad_norms": _log10(np.mean(act, axis=0)),
            "log10_kernel_grad_norms": _log10(np.mean(kern, axis=0))}


def fraction_moved(before, after, rtol: float = 1e-5) -> float:
    """Fraction of the weights (pytrees or lists of arrays) that changed by more than `rtol`.

    The tolerance ignores float32 rounding: the first clipping step lands an ulp or so off c.
    """
    b = np.concatenate([np.ravel(np.asarray(w, np.float32)) for w in jax.tree.leaves(before)])
    a = np.concatenate([np.ravel(np.asarray(w, np.float32)) for w in jax.tree.leaves(after)])
    return float(np.mean(~np.isclose(a, b, rtol=rtol, atol=0.0)))


def settings(config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
    """The runs: one per clip value, the controls (if any), and GP; each a small dict."""
    depth = config.model.toy_depth
    runs = [{"name": f"clip_{c:g}", "clip_value": float(c), "init_inside": False,
             "depth": depth} for c in config.clip_values]
    if config.control_clip_value is not None:
        c = float(config.control_clip_value)
        runs.append({"name": f"clip_{c:g}_init_inside", "clip_value": c, "init_inside": True,
                     "depth": depth})
        if config.shallow_control_depth is not None:
            d = int(config.shallow_control_depth)
            runs.append({"name": f"clip_{c:g}_init_inside_depth{d}", "clip_value": c,
                         "init_inside": True, "depth": d})
    if config.include_gp:
        runs.append({"name": "gp", "clip_value": None, "init_inside": False, "depth": depth})
    return runs


def _label(run: dict[str, Any]) -> str:
    if run["clip_value"] is None:
        return "gradient penalty"
    extra = ", init inside [-c, c]" if run["init_inside"] else ""
    return f"clipping c = {run['clip_value']:g}{extra}"


def _depth_note(run: dict[str, Any], depth: int) -> str:
    return "" if run["depth"] == depth else f"\n({run['depth']}-layer critic)"


def _inside(params, c: float):
    """Kernels rescaled so the largest entry of each is c: the uniform init becomes U[-c, c]."""
    def scale(path, leaf):
        if path[-1].key != "kernel":
            return leaf
        return leaf * (c / jnp.max(jnp.abs(leaf)))

    return jax.tree_util.tree_map_with_path(scale, params)


def _method(config: ml_collections.ConfigDict, clip_value: float | None, depth: int) -> Method:
    """The critic of a setting: clipping at `clip_value`, or the gradient penalty if None."""
    if clip_value is None:
        return common.build_method(config, config.method.gp, where="method.gp",
                                   **{"model.toy_depth": depth})
    return common.build_method(config, config.method.clipping, where="method.clipping",
                               clip_value=clip_value, **{"model.toy_depth": depth})


def validate_config(config: ml_collections.ConfigDict) -> dict[tuple, Method]:
    """Check the experiment's own fields and build the critic of every setting:
    {(clip value or None, depth): Method}; a ConfigError names the first unusable field."""
    if config.dataset not in registry.TOY_DATASETS:
        common.fail("dataset", config.dataset, f"choose a toy dataset: {registry.TOY_DATASETS}")
    common.check_positive_ints(config, "diag_batches", "dpi")
    if config.shallow_control_depth is not None:
        common.check_positive_ints(config, "shallow_control_depth")
    if not all(c > 0 for c in config.clip_values):
        common.fail("clip_values", config.clip_values, "every clip value must be positive")
    if config.control_clip_value is not None and not config.control_clip_value > 0:
        common.fail("control_clip_value", config.control_clip_value, "must be positive or None")
    runs = settings(config)
    if not runs:
        common.fail("clip_values", config.clip_values,
                    "nothing to run: no clip values, no control and include_gp is False")
    methods = {(r["clip_value"], r["depth"]): _method(config, r["clip_value"], r["depth"])
               for r in runs}
    # The settings of one kind differ only in clip value and depth: one of each is checked.
    common.check_shared({"method.gp" if c is None else "method.clipping": m
                         for (c, _), m in methods.items()}, common.build_method(config), SHARED)
    if config.include_gp and not config.method.gp.gp_weight > 0:
        common.fail("method.gp.gp_weight", config.method.gp.gp_weight, "must be positive")
    return methods


def _plot_gradients(runs, results, path: str, dpi: int) -> None:
    """One line per run; all runs must have the same number of layers."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (("log10_activation_grad_norms",
               "d(critic loss) / d(layer activations)\n(the paper's Fig. 1b measure)"),
              ("log10_kernel_grad_norms", "d(critic loss) / d(layer kernel)"))
    for ax, (field, title) in zip(axes, panels, strict=True):
        for i, run in enumerate(runs):
            vals = np.array(results[run["name"]][field])
            vals[~np.isfinite(vals)] = np.nan  # an exact zero has no log
            ax.plot(np.arange(1, len(vals) + 1), vals, marker="o", ms=3, color=f"C{i}",
                    ls="--" if run["init_inside"] else "-", label=_label(run))
        n = len(results[runs[0]["name"]][field])
        ax.set_xticks(np.arange(1, n + 1))
        ax.invert_xaxis()  # as in the paper: moving right is moving back through the network
        ax.set_xlabel("critic layer (1 = input side)")
        ax.set_ylabel("log10 gradient norm")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_palette_figure(fig, path, dpi)


def _plot_weights(runs, weights, results, path: str, dpi: int, depth: int) -> None:
    ncols = min(3, len(runs))
    nrows = -(-len(runs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), squeeze=False)
    for ax in axes.flat[len(runs):]:
        ax.axis("off")
    for ax, run in zip(axes.flat, runs, strict=False):
        w = weights[run["name"]]
        c = run["clip_value"]
        if c is None:
            ax.hist(w, bins=80, color="C2")
            title = "gradient penalty"
        else:
            # Bins centred on +-c: clipped weights sit exactly on c, not on a bin edge.
            ax.hist(w, bins=np.linspace(-1.025 * c, 1.025 * c, 42), color="C0")
            frac = results[run["name"]]["fraction_at_bound_trained"]
            title = (f"{_label(run)}{_depth_note(run, depth)}\n"
                     f"{100 * frac:.0f}% within 1% of ±c")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("weight", fontsize=8)
        ax.set_ylabel("count", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    save_palette_figure(fig, path, dpi)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains the critics, writes the figures and results.json; returns the numbers."""
    methods = validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    # Every setting sees the same batches (validate_config checked they agree on them).
    shared = next(iter(methods.values()))
    k_init, k_data, k_steps, k_diag = jax.random.split(jax.random.PRNGKey(shared.seed), 4)
    batches = fixed_generator_batches(config.dataset, k_data, training.critic_updates(shared),
                                      shared.batch_size, config.noise_std)

    runs = settings(config)
    init, trainers = {}, {}  # by depth; trainers by (clip value, depth)
    results: dict[str, Any] = {}
    weights: dict[str, np.ndarray] = {}
    for run_ in runs:
        c, depth = run_["clip_value"], run_["depth"]
        method = methods[c, depth]
        if depth not in init:
            init[depth] = method.models().critic.init(k_init, jnp.zeros((1, 2)))["params"]
        init_params = init[depth]
        if c is None:
            start_params = init_params
        else:
            start_params = _inside(init_params, c) if run_["init_inside"] else init_params
        start = time.perf_counter()
        if (c, depth) not in trainers:
            trainers[c, depth] = training.make_critic_trainer(method)
        params, _, em = trainers[c, depth](start_params, {}, *batches, k_steps)
        em = np.asarray(em)
        seconds = time.perf_counter() - start
        row: dict[str, Any] = {"clip_value": c, "init_inside": run_["init_inside"],
                               "depth": depth, "train_seconds": seconds,
                               "batch_em_last_tenth": float(em[-max(1, len(em) // 10):].mean())}
        row.update(gradient_diagnostics(params, config.dataset, k_diag,
                                        n_batches=config.diag_batches,
                                        batch_size=config.batch_size,
                                        noise_std=config.noise_std,
                                        gp_weight=method.step.gp_weight))
        flat = np.concatenate([np.ravel(k) for k in kernels(params)])
        weights[run_["name"]] = flat
        row["weight_abs_max"] = float(np.abs(flat).max())
        row["weight_std"] = float(flat.std())
        start_kernels = kernels(start_params)
        if c is not None:
            # The first update clips the initial weights: this is where training starts from.
            start_kernels = [np.clip(k, -c, c) for k in start_kernels]
            row["fraction_at_bound_init"] = fraction_at_bound(start_kernels, c)
            row["fraction_at_bound_trained"] = fraction_at_bound(kernels(params), c)
        row["fraction_moved"] = fraction_moved(start_kernels, kernels(params))
        results[run_["name"]] = row

    depth = config.model.toy_depth
    _plot_gradients([r for r in runs if r["depth"] == depth], results,
                    os.path.join(workdir, "clipping_gradients.png"), config.dpi)
    _plot_weights(runs, weights, results, os.path.join(workdir, "clipping_weights.png"),
                  config.dpi, depth)
    out = {"runs": results, "config": config.to_dict()}
    common.write_results(workdir, out, indent=2)
    return out


if __name__ == "__main__":
    common.main(run, "clipping", lambda r: r["runs"])
