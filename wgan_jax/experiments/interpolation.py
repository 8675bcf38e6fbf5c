"""Latent interpolation through a generator: great circles (slerp) against straight lines.

Trains a toy WGAN-GP generator briefly (or loads one from a run.py workdir) and writes into the
workdir
  interpolation_toy_paths.png    a few latent pairs joined by lerp and slerp, in the latent plane
                                 and mapped through G into data space over the real points;
  interpolation_norms.png        the latent norm along both paths for several latent sizes
                                 (with the prior's 1-99% norm band), and the fraction of G's
                                 outputs near a mode along the paths;
  interpolation_mnist_strip.png  lerp and slerp strips through the mnist DCGAN generator
                                 (untrained unless loaded: it shows the mechanics only);
  results.json                   the numbers behind the figures.

Run: python -m wgan_jax.experiments.interpolation --workdir /tmp/interp
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from scipy import stats

from wgan_jax import latent, registry
from wgan_jax.data import toy
from wgan_jax.evaluators.toy import near_mode
from wgan_jax.experiments import common, training
from wgan_jax.method import Method, config_with
from wgan_jax.models import apply_generator
from wgan_jax.plotting import plt, save_figure

METHODS = ("lerp", "slerp")
# The generator of the image strips when the toy one is trained here: gan_mnist.py's DCGAN.
IMAGE_STRIP_MODEL = {"dataset": "mnist", "model": {"arch": "mnist"}, "evals": ("samples",)}


class Generator:
    """A generator network with fixed weights, callable on latents [N, latent_dim]."""

    def __init__(self, models, params, variables, arch: str, dataset: str | None):
        self.models, self.arch, self.dataset = models, arch, dataset
        self.latent_dim = models.latent_dim
        self._fn = jax.jit(lambda z: apply_generator(models, params, variables, z)[0])

    def __call__(self, z) -> np.ndarray:
        return np.asarray(self._fn(jnp.asarray(z, jnp.float32)))


def validate_config(config: ml_collections.ConfigDict) -> Method | None:
    """Check the experiment's own fields and, unless a generator is loaded, build the method
    that trains the toy generator; a ConfigError names the first unusable field."""
    common.check_positive_ints(config, "num_pairs_drawn", "num_pairs_stats", "strip_pairs")
    for name in ("path_points", "strip_points"):
        if config[name] < 2:
            common.fail(name, config[name], "must be at least 2")
    if not 0 <= config.min_drawn_angle_deg <= 150:
        common.fail("min_drawn_angle_deg", config.min_drawn_angle_deg, "must be in [0, 150]")
    if any(int(d) < 1 for d in config.norm_dims):
        common.fail("norm_dims", config.norm_dims, "every latent size must be positive")
    if config.workdir_to_load:
        return None
    if config.dataset not in registry.TOY_DATASETS:
        common.fail("dataset", config.dataset, f"choose a toy dataset: {registry.TOY_DATASETS}")
    return common.build_method(config)


def train_toy_generator(method: Method) -> Generator:
    """The EMA generator of `method` (a toy method) after `num_train_steps` steps."""
    state = training.stacked_states(method, [method.seed])
    train = training.make_toy_chunk(method, method.num_train_steps)
    data_key = jax.random.fold_in(jax.random.PRNGKey(method.seed), 0xDA7A)[None]
    state, _ = train(state, data_key)
    state = jax.tree.map(lambda x: x[0], state)
    return Generator(state.models, state.g_ema, state.g_vars, "toy", method.dataset)


def load_generator(workdir: str) -> Generator:
    """The EMA generator of the latest checkpoint in a run.py workdir (its config.json says
    which model it is)."""
    from wgan_jax import checkpoint  # training-program imports only when loading

    with open(os.path.join(workdir, "config.json")) as f:
        method = Method.from_config(config_with(json.load(f)))
    mngr = checkpoint.manager(os.path.join(workdir, "checkpoints"))
    state, step = checkpoint.restore_latest(mngr, method.init_state())
    if step == 0:
        raise FileNotFoundError(f"no checkpoint under {workdir}/checkpoints")
    dataset = method.dataset if method.data.is_toy else None
    return Generator(state.models, state.g_ema, state.g_vars, method.model.arch, dataset)


def untrained_image_generator(seed: int) -> Generator:
    """The mnist DCGAN generator at its initial weights."""
    models = Method.from_config(config_with(IMAGE_STRIP_MODEL)).models()
    variables = dict(models.generator.init(jax.random.PRNGKey(seed),
                                           jnp.zeros((1, models.latent_dim))))
    params = variables.pop("params")
    return Generator(models, params, variables, "mnist", None)


def paths(z0, z1, n: int) -> dict[str, np.ndarray]:
    """Both interpolation paths between each pair: {method: [n, pairs, latent]}."""
    return {m: np.asarray(latent.interpolation_path(z0, z1, n, method=m)) for m in METHODS}


def norm_along_paths(dim: int, num_pairs: int, n: int, rng: np.random.Generator) -> dict:
    """Latent norms along lerp and slerp paths between independent N(0, I_dim) draws, next
    to the prior's own norm distribution (chi with `dim` degrees of freedom)."""
    z0, z1 = rng.standard_normal((2, num_pairs, dim)).astype(np.float32)
    lo, hi = stats.chi.ppf([0.01, 0.99], dim)
    out: dict[str, Any] = {"dim": dim, "prior_norm_p01": float(lo), "prior_norm_p99": float(hi),
                           "prior_norm_mean": float(stats.chi.mean(dim))}
    mid = n // 2
    for m, p in paths(z0, z1, n).items():
        norms = np.linalg.norm(p, axis=-1)  # [n, pairs]
        out[m] = {"mean_norm_along_t": norms.mean(axis=1).tolist(),
                  "midpoint_mean_norm": float(norms[mid].mean()),
                  "midpoint_below_p01": float(np.mean(norms[mid] < lo)),
                  "path_below_p01": float(np.mean(norms < lo))}
    return out


def _near_mode(points: np.ndarray, dataset: str) -> np.ndarray:
    """Whether each point is "high quality" (the toy evaluator's test, `evaluators.toy`)."""
    mixture = registry.mixture(dataset)
    return near_mode(points, mixture.mode_centers(), mixture.mode_std())


def toy_path_numbers(gen: Generator, config, rng: np.random.Generator) -> dict[str, Any]:
    """Along many random pairs: the fraction of G's outputs near a mode at each t, and the
    data-space length of the paths, for lerp and slerp."""
    z0, z1 = rng.standard_normal((2, config.num_pairs_stats, gen.latent_dim)).astype(np.float32)
    out: dict[str, Any] = {}
    for m, p in paths(z0, z1, config.path_points).items():
        x = gen(p.reshape(-1, gen.latent_dim)).reshape(p.shape[:2] + (-1,))
        rec = {"data_path_length_mean": float(
            np.linalg.norm(np.diff(x, axis=0), axis=-1).sum(axis=0).mean())}
        if gen.dataset in registry.MIXTURES:
            near = _near_mode(x, gen.dataset)  # [n, pairs]
            rec.update(near_mode_along_t=near.mean(axis=1).tolist(),
                       near_mode_fraction=float(near.mean()),
                       near_mode_interior=float(near[1:-1].mean()),
                       midpoint_near_mode=float(near[config.path_points // 2].mean()))
        out[m] = rec
    if gen.dataset in registry.MIXTURES:
        # Its own generator of random numbers: the pairs drawn elsewhere stay the same.
        out["near_mode_by_latent_norm"] = near_mode_by_norm(gen, 200_000, config.seed + 1)
    return out


def _far_apart_pairs(rng, n: int, dim: int, min_angle_deg: float):
    """`n` pairs of N(0, I) draws at least `min_angle_deg` apart (rejection sampling): close
    pairs give nearly identical lerp and slerp paths, which would show nothing."""
    z0, z1 = [], []
    while len(z0) < n:
        a, b = rng.standard_normal((2, dim)).astype(np.float32)
        cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        if np.degrees(np.arccos(np.clip(cos, -1, 1))) >= min_angle_deg:
            z0.append(a)
            z1.append(b)
    return np.stack(z0), np.stack(z1)


NORM_BINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, math.inf)


def near_mode_by_norm(gen: Generator, num: int, seed: int) -> list[dict[str, float]]:
    """For prior draws binned by |z|: each bin's share of the prior and the fraction of G(z)
    within 3 std of a mode (where in latent space the generator's good outputs come from)."""
    z = np.random.default_rng(seed).standard_normal((num, gen.latent_dim)).astype(np.float32)
    near = _near_mode(gen(z), gen.dataset)
    r = np.linalg.norm(z, axis=-1)
    rows = []
    for lo, hi in zip(NORM_BINS[:-1], NORM_BINS[1:], strict=True):
        m = (r >= lo) & (r < hi)
        rows.append({"norm_from": lo, "norm_to": hi, "prior_share": float(m.mean()),
                     "near_mode": float(near[m].mean()) if m.any() else math.nan})
    return rows


def _plot_toy_paths(gen: Generator, config, rng, path: str) -> None:
    z0, z1 = _far_apart_pairs(rng, config.num_pairs_drawn, gen.latent_dim,
                              config.min_drawn_angle_deg)
    ps = paths(z0, z1, config.path_points)
    real = np.asarray(toy.sample(gen.dataset, jax.random.PRNGKey(config.seed + 7), 1000))
    k_pairs = config.num_pairs_drawn
    fig, axes = plt.subplots(2, k_pairs, figsize=(2.9 * k_pairs, 5.9), squeeze=False)
    circle = np.linspace(0, 2 * np.pi, 200)
    t = np.linspace(0, 1, config.path_points)
    for k in range(k_pairs):
        lat, dat = axes[0, k], axes[1, k]
        for q in (1.0, 2.0, 3.0):
            lat.plot(q * np.cos(circle), q * np.sin(circle), color="0.85", lw=0.8)
        dat.scatter(real[:, 0], real[:, 1], s=1, c="0.7")
        for m, color in (("lerp", "C0"), ("slerp", "C3")):
            zp = ps[m][:, k]
            lat.scatter(zp[:, 0], zp[:, 1], c=t, cmap="viridis", s=10, marker="o"
                        if m == "slerp" else "x")
            lat.plot(zp[:, 0], zp[:, 1], color=color, lw=0.8, label=m)
            x = gen(zp)
            dat.plot(x[:, 0], x[:, 1], color=color, lw=0.8, alpha=0.7, label=m)
            dat.scatter(x[:, 0], x[:, 1], c=t, cmap="viridis", s=10,
                        marker="o" if m == "slerp" else "x", zorder=3)
        lat.set_aspect("equal")
        lat.set_xlim(-3.2, 3.2)
        lat.set_ylim(-3.2, 3.2)
        lat.set_title(f"pair {k}: latent plane", fontsize=9)
        dat.set_aspect("equal")
        dat.set_xlim(-2.2, 2.2)
        dat.set_ylim(-2.2, 2.2)
        dat.set_title(f"pair {k}: G(z(t)) on {gen.dataset}", fontsize=9)
        for ax in (lat, dat):
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"lerp (blue, x) vs slerp (red, o) between latent pairs >= "
                 f"{config.min_drawn_angle_deg:g} deg apart; colour = t from 0 (purple) to 1 "
                 "(yellow); grey circles |z| = 1, 2, 3", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def _plot_norms(norms: list[dict], toy_numbers: dict | None, n: int, path: str) -> None:
    panels = len(norms) + (1 if toy_numbers and "near_mode_along_t" in toy_numbers["lerp"]
                           else 0)
    fig, axes = plt.subplots(1, panels, figsize=(3.3 * panels, 3.2), squeeze=False)
    t = np.linspace(0, 1, n)
    for ax, rec in zip(axes[0], norms, strict=False):
        ax.axhspan(rec["prior_norm_p01"], rec["prior_norm_p99"], color="0.9",
                   label="prior |z| 1-99%")
        for m, style in (("lerp", "--"), ("slerp", "-")):
            ax.plot(t, rec[m]["mean_norm_along_t"], style, label=m)
        ax.set_title(f"latent size {rec['dim']}: mean |z(t)|", fontsize=9)
        ax.set_xlabel("t")
        ax.set_ylim(0, None)
        ax.legend(fontsize=7, loc="lower center")
    if panels > len(norms):
        ax = axes[0, -1]
        for m, style in (("lerp", "--"), ("slerp", "-")):
            ax.plot(t, toy_numbers[m]["near_mode_along_t"], style, label=m)
        ax.set_title("toy G: fraction of G(z(t)) near a mode", fontsize=9)
        ax.set_xlabel("t")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def _plot_strip(gen: Generator, config, rng, path: str, label: str) -> dict[str, Any]:
    z0, z1 = rng.standard_normal((2, config.strip_pairs, gen.latent_dim)).astype(np.float32)
    ps = paths(z0, z1, config.strip_points)
    rows = [(k, m) for k in range(config.strip_pairs) for m in METHODS]
    strips = {(k, m): gen(ps[m][:, k]) for k, m in rows}
    if label == "untrained":
        # An untrained generator's outputs sit in a narrow band around the midpoint of the
        # range: stretch that band (one scale for the whole figure) so the patterns show.
        lo = min(float(x.min()) for x in strips.values())
        hi = max(float(x.max()) for x in strips.values())
        label = "untrained; one contrast stretch for all images"
    else:
        lo, hi = registry.arch(gen.arch).output_range
    fig, axes = plt.subplots(len(rows), config.strip_points,
                             figsize=(0.9 * config.strip_points, 1.05 * len(rows)),
                             squeeze=False)
    contrast: dict[str, list] = {m: [] for m in METHODS}
    for r, (k, m) in enumerate(rows):
        images = strips[k, m]
        contrast[m].append(images.reshape(len(images), -1).std(axis=1).tolist())
        norms = np.linalg.norm(ps[m][:, k], axis=-1)
        for j in range(config.strip_points):
            ax = axes[r, j]
            img = np.clip((images[j] - lo) / (hi - lo), 0, 1)
            ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0,
                      vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"|z| {norms[j]:.1f}", fontsize=6, labelpad=1)
        axes[r, 0].set_ylabel(f"pair {k}\n{m}", fontsize=7)
    fig.suptitle(f"{gen.arch} generator ({label}), latent size {gen.latent_dim}; "
                 "under each image its |z|", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
    return {"pixel_std_along_t": contrast}


def run(config: ml_collections.ConfigDict, workdir: str,
        generator: Generator | None = None) -> dict[str, Any]:
    """Gets a generator (`generator` if given, else loaded or trained as the config says),
    writes the figures and results.json into workdir, returns the numbers."""
    method = validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    start = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    results: dict[str, Any] = {}
    if generator is not None:
        gen, source = generator, "given"
    elif config.workdir_to_load:
        gen, source = load_generator(config.workdir_to_load), config.workdir_to_load
    else:
        gen = train_toy_generator(method)
        source = f"trained here for {method.num_train_steps} steps"
    results["generator"] = {"arch": gen.arch, "dataset": gen.dataset,
                            "latent_dim": gen.latent_dim, "source": source}
    dims = sorted({int(d) for d in config.norm_dims} | {gen.latent_dim})
    results["norms"] = [norm_along_paths(d, config.num_pairs_stats, config.path_points, rng)
                        for d in dims]
    toy_numbers = None
    if gen.arch == "toy":
        toy_numbers = toy_path_numbers(gen, config, rng)
        results["toy_paths"] = toy_numbers
        _plot_toy_paths(gen, config, rng, os.path.join(workdir, "interpolation_toy_paths.png"))
        image_gen = untrained_image_generator(config.seed) if config.image_strip else None
        strip_label = "untrained"
    else:
        image_gen, strip_label = gen, source
    _plot_norms(results["norms"], toy_numbers, config.path_points,
                os.path.join(workdir, "interpolation_norms.png"))
    if image_gen is not None:
        results["image_strip"] = _plot_strip(
            image_gen, config, rng, os.path.join(workdir, "interpolation_mnist_strip.png"),
            strip_label)
    results["seconds"] = time.perf_counter() - start
    results["config"] = config.to_dict()
    common.write_results(workdir, results, indent=1)
    return results


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"generator": results["generator"]}
    out["midpoint_norms"] = {r["dim"]: {"prior_p01": r["prior_norm_p01"],
                                        "lerp": r["lerp"]["midpoint_mean_norm"],
                                        "slerp": r["slerp"]["midpoint_mean_norm"],
                                        "lerp_midpoint_below_p01": r["lerp"]["midpoint_below_p01"]}
                             for r in results["norms"]}
    if "toy_paths" in results:
        out["toy_paths"] = {m: {k: v for k, v in rec.items() if not k.endswith("_along_t")}
                            for m, rec in results["toy_paths"].items() if m in METHODS}
        out["near_mode_by_latent_norm"] = results["toy_paths"].get("near_mode_by_latent_norm")
    out["seconds"] = results["seconds"]
    return out


if __name__ == "__main__":
    common.main(run, "interpolation", _summary)
