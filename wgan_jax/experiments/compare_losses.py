"""GAN vs WGAN vs WGAN-GP on toy mixtures: mode coverage, sample quality, and whether the
critic's EM estimate tracks the exact W1 between generated and real points during training.

Every method trains the same toy MLPs for the same number of generator steps, all seeds of a
method at once: the per-device `step.train_step` is vmapped over a stacked train state and
`lax.scan` runs `eval_every` steps per call, so Python runs once per point of the curves. Each
(dataset, method) is a `Method` built from the config's shared main-config fields with the
method's own (`config.method.<name>`) on top.

Writes into the workdir
  compare_curves_<dataset>.png  EM estimate and exact W1 against the generator step, per method;
  compare_samples.png           final samples of the first seed over the real points;
  table.md                      mean ± std over seeds per (dataset, method);
  results.json                  per-run curves and final metrics, the summary, timings.

Run: python -m wgan_jax.experiments.compare_losses --workdir /tmp/compare
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from wgan_jax import distances, registry
from wgan_jax.data import toy
from wgan_jax.evaluators import mode_coverage
from wgan_jax.evaluators.toy import real_w1_floor
from wgan_jax.experiments import common, training
from wgan_jax.method import Method
from wgan_jax.models import apply_critic, apply_generator
from wgan_jax.plotting import plt, save_figure
from wgan_jax.state import TrainState

# Per-run numbers that the summary averages over seeds.
SUMMARY_KEYS = ("modes_covered", "high_quality_fraction", "final_w1", "pearson", "spearman",
                "spearman_late", "pearson_eval_points", "spearman_eval_points")


def aggregate(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample std (ddof=1; 0 for one value) over the finite values, and their count."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "n": int(len(v))}


def method(config: ml_collections.ConfigDict, name: str, dataset: str) -> Method:
    """Method `name` (`config.method.<name>` over the shared fields) on `dataset`."""
    return common.build_method(config, config.method[name], where=f"method.{name}",
                               dataset=dataset)


def validate_config(config: ml_collections.ConfigDict) -> dict[tuple[str, str], Method]:
    """Check the experiment's own fields and build every (dataset, method name) -> Method; a
    ConfigError names the first unusable field."""
    common.check_positive_ints(config, "threads", "num_seeds", "eval_every", "w1_samples",
                               "coverage_samples")
    common.check_names(config, "datasets", registry.MIXTURES, "has no modes to count")
    common.check_names(config, "methods", config.method.keys(),
                       "has no settings under config.method")
    methods = {(d, n): method(config, n, d) for d in config.datasets for n in config.methods}
    if config.num_train_steps % config.eval_every:
        common.fail("num_train_steps", config.num_train_steps,
                    f"must be a multiple of eval_every ({config.eval_every})")
    return methods


def init_states(config: ml_collections.ConfigDict, m: Method) -> TrainState:
    """A train state of `m` whose array leaves are stacked over the `num_seeds` seeds.

    Seed i initialises the networks the same way for every method, so methods start paired.
    """
    return training.stacked_states(m, range(m.seed, m.seed + config.num_seeds))


@jax.jit
def _eval_points(state: TrainState, z: jax.Array, real: jax.Array):
    """Generated points for the fixed `z` and the critic's EM estimate on (real, those points),
    for every seed."""

    def one(s):
        fake, _ = apply_generator(s.models, s.g_params, s.g_vars, z)
        n = real.shape[0]
        d_real, _ = apply_critic(s.models, s.d_params, s.d_vars, real, False)
        d_fake, _ = apply_critic(s.models, s.d_params, s.d_vars, fake[:n], False)
        return fake, jnp.mean(d_real) - jnp.mean(d_fake)

    return jax.vmap(one)(state)


def train_method(config: ml_collections.ConfigDict,
                 m: Method) -> tuple[list[dict[str, Any]], np.ndarray, float]:
    """Trains all seeds of method `m` on its dataset; returns per-seed records, the final
    generated points [seeds, n, 2] and the seconds it took (compilation included)."""
    t0 = time.perf_counter()
    dataset = m.dataset
    state = init_states(config, m)
    chunk = training.make_toy_chunk(m, config.eval_every)
    base = jax.random.PRNGKey(m.seed)
    data_keys = jnp.stack([jax.random.fold_in(jax.random.fold_in(base, 0xDA7A), i)
                           for i in range(config.num_seeds)])
    k_z, k_real = jax.random.split(jax.random.fold_in(base, 0xE7A1))
    n_gen = max(config.w1_samples, config.coverage_samples)
    z = jax.random.normal(k_z, (n_gen, state.models.latent_dim))
    real = toy.sample(dataset, k_real, config.w1_samples)
    real_np = np.asarray(real)

    steps, em_train, em_eval, w1 = [], [], [], []

    def record(step, em, fake, em_pts):
        fake = np.asarray(fake)
        steps.append(step)
        em_train.append(np.asarray(em).mean(axis=1))
        em_eval.append(np.asarray(em_pts))
        w1.append([distances.w1_points(real_np, f[:config.w1_samples]) for f in fake])
        return fake

    pending = None
    for c in range(config.num_train_steps // config.eval_every):
        state, em = chunk(state, data_keys)
        fake, em_pts = _eval_points(state, z, real)
        # Dispatch is asynchronous: the exact W1 of the previous point is solved on the host
        # while the device trains the next chunk.
        if pending is not None:
            record(*pending)
        pending = ((c + 1) * config.eval_every, em, fake, em_pts)
    fake = record(*pending)
    elapsed = time.perf_counter() - t0
    em_train, em_eval, w1 = (np.asarray(a) for a in (em_train, em_eval, w1))  # [points, seeds]

    mixture = registry.mixture(dataset)
    centers, std = mixture.mode_centers(), mixture.mode_std()
    records = []
    for i in range(config.num_seeds):
        cov = mode_coverage(fake[i, :config.coverage_samples], centers, std)
        corr = common.correlations(em_train[:, i], w1[:, i])
        # The second half alone: past the first fast drop, does the estimate still follow W1?
        late = np.asarray(steps) > config.num_train_steps // 2
        corr_late = common.correlations(em_train[late, i], w1[late, i])
        corr_pts = common.correlations(em_eval[:, i], w1[:, i])
        records.append({
            "seed": m.seed + i, **cov, "final_w1": float(w1[-1, i]),
            "pearson": corr["pearson"], "spearman": corr["spearman"],
            "spearman_late": corr_late["spearman"],
            "pearson_eval_points": corr_pts["pearson"],
            "spearman_eval_points": corr_pts["spearman"],
            "curve": {"step": steps, "em_estimate": em_train[:, i].tolist(),
                      "em_estimate_eval_points": em_eval[:, i].tolist(),
                      "exact_w1": w1[:, i].tolist()},
        })
    return records, fake[:, :config.coverage_samples], elapsed


def summarize(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict:
    """Mean ± std over seeds of every SUMMARY_KEYS number, per (dataset, method)."""
    return {d: {m: {k: aggregate([r[k] for r in recs]) for k in SUMMARY_KEYS}
                for m, recs in per_method.items()} for d, per_method in runs.items()}


def _fmt(a: dict[str, float], digits: int) -> str:
    if a["n"] == 0:
        return "n/a"
    return f"{a['mean']:.{digits}f} ± {a['std']:.{digits}f}"


def markdown_table(summary: dict, config: ml_collections.ConfigDict) -> str:
    """The summary as a markdown table (one row per dataset and method)."""
    lines = ["| dataset | method | modes covered | high-quality fraction | final exact W1 | "
             "corr(EM, W1) Pearson | Spearman | Spearman, 2nd half |",
             "|---|---|---|---|---|---|---|---|"]
    for d, per_method in summary.items():
        n_modes = len(registry.mixture(d).centers)
        for m, s in per_method.items():
            lines.append(
                f"| {d} | {config.method[m].label or m} | {_fmt(s['modes_covered'], 1)} / "
                f"{n_modes} | {_fmt(s['high_quality_fraction'], 2)} | {_fmt(s['final_w1'], 3)} | "
                f"{_fmt(s['pearson'], 2)} | {_fmt(s['spearman'], 2)} | "
                f"{_fmt(s['spearman_late'], 2)} |")
    return "\n".join(lines) + "\n"


def _plot_curves(config, dataset: str, per_method: dict, floor: float, path: str) -> None:
    names = list(per_method)
    fig, axes = plt.subplots(2, len(names), figsize=(3.1 * len(names), 5.2), squeeze=False)
    for j, name in enumerate(names):
        em_ax, w1_ax = axes[0, j], axes[1, j]
        for i, r in enumerate(per_method[name]):
            cv = r["curve"]
            em_ax.plot(cv["step"], cv["em_estimate"], color=f"C{i}", lw=1,
                       label=f"seed {r['seed']}")
            w1_ax.plot(cv["step"], cv["exact_w1"], color=f"C{i}", lw=1)
        w1_ax.axhline(floor, color="0.4", ls=":", lw=1, label="real vs real")
        s = aggregate([r["spearman"] for r in per_method[name]])
        em_ax.set_title(f"{config.method[name].label or name}\nSpearman(EM, W1) = "
                        f"{_fmt(s, 2)}", fontsize=9)
        em_ax.set_ylabel("logit gap D(real)-D(fake)" if config.method[name].loss != "wasserstein"
                         else "critic EM estimate", fontsize=8)
        w1_ax.set_ylabel("exact W1 (generated, real)", fontsize=8)
        w1_ax.set_xlabel("generator step", fontsize=8)
        w1_ax.set_yscale("log")
        for ax in (em_ax, w1_ax):
            ax.tick_params(labelsize=7)
        if j == 0:
            em_ax.legend(fontsize=7)
            w1_ax.legend(fontsize=7)
    fig.suptitle(f"{dataset}: the critic's estimate (top) and the exact W1 of "
                 f"{config.w1_samples} points (bottom) during training", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def _plot_samples(config, finals: dict, path: str) -> None:
    datasets = list(finals)
    names = list(next(iter(finals.values())))
    fig, axes = plt.subplots(len(datasets), len(names), figsize=(2.6 * len(names),
                                                                 2.7 * len(datasets)),
                             squeeze=False)
    for i, d in enumerate(datasets):
        real = np.asarray(toy.sample(d, jax.random.PRNGKey(1), 1000))
        for j, name in enumerate(names):
            ax = axes[i, j]
            fake, rec = finals[d][name]
            ax.scatter(fake[:1000, 0], fake[:1000, 1], s=2, c="green", alpha=0.5,
                       label="generated")
            ax.scatter(real[:, 0], real[:, 1], s=1, c="orange", label="real")
            ax.set_xlim(-2.2, 2.2)
            ax.set_ylim(-2.2, 2.2)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{config.method[name].label or name}: {rec['modes_covered']:.0f} modes, "
                         f"hq {rec['high_quality_fraction']:.2f}", fontsize=8)
            if j == 0:
                ax.set_ylabel(d, fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="lower left", markerscale=3)
    fig.suptitle(f"Final samples after {config.num_train_steps} generator steps "
                 f"(seed {config.seed})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains every (dataset, method) over all seeds, writes figures, table.md and results.json
    into workdir, and returns the results."""
    methods = validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    # Costliest runs first, so no thread is left alone with a long run at the end.
    cost = {dn: m.n_critic * (2 if m.step.gp_weight > 0 else 1) for dn, m in methods.items()}
    jobs = sorted(methods, key=lambda dn: -cost[dn])

    def job(dn):
        records, fake, seconds = train_method(config, methods[dn])
        logging.info("%s %s: %.0f s", *dn, seconds)
        return records, fake, seconds

    # XLA:CPU runs these small networks on about one core; independent runs in threads
    # (which release the GIL while XLA computes) keep both cores of a small machine busy.
    with concurrent.futures.ThreadPoolExecutor(max(1, config.threads)) as pool:
        outputs = dict(zip(jobs, pool.map(job, jobs), strict=True))
    runs = {d: {n: outputs[d, n][0] for n in config.methods} for d in config.datasets}
    finals = {d: {n: (outputs[d, n][1][0], outputs[d, n][0][0]) for n in config.methods}
              for d in config.datasets}
    timings = {d: {n: outputs[d, n][2] for n in config.methods} for d in config.datasets}
    floors = {d: real_w1_floor(d, config.w1_samples, config.seed) for d in config.datasets}
    for d in config.datasets:
        _plot_curves(config, d, runs[d], floors[d],
                     os.path.join(workdir, f"compare_curves_{d}.png"))
    _plot_samples(config, finals, os.path.join(workdir, "compare_samples.png"))
    summary = summarize(runs)
    table = markdown_table(summary, config)
    with open(os.path.join(workdir, "table.md"), "w") as f:
        f.write(table)
    # Per-run seconds overlap when threads > 1; total_s is the wall time of the whole run.
    results = {"summary": summary, "w1_real_vs_real": floors, "runs": runs, "seconds": timings,
               "total_s": time.perf_counter() - start,
               "total_cpu_s": time.process_time() - cpu_start, "config": config.to_dict()}
    common.write_results(workdir, results, indent=1)
    results["table"] = table
    return results


if __name__ == "__main__":
    common.main(run, "compare_losses", lambda r: (
        f"{r['table']}\nexact W1 between two real samples: {r['w1_real_vs_real']}"))
