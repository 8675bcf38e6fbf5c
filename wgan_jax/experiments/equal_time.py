"""WGAN vs WGAN-GP vs the standard GAN at equal wall-clock time (WGAN-GP paper, Figure 3).

Reads run.py workdirs of image runs that evaluated the in-loop Fréchet classifier distance
(`--config.evals="('samples','classifier')"`), and reports, per run, the distance against the
generator step and against the minutes since the run's first logged step, the best distance
reached within each run's common wall time, and how the critic's own distance estimate tracks
the distance at the evaluated steps: the median-filtered `em_distance` for the Wasserstein
losses, the Jensen-Shannon estimate log 2 - critic_loss / 2 for the GAN losses (exact for the
optimal discriminator; the WGAN paper's Figure 4 reads the GAN's the same way).

    python -m wgan_jax.experiments.equal_time --out /tmp/cmp \
        --run wgan_gp=runs/cmp_gp --run wgan=runs/cmp_clip --run gan=runs/cmp_gan

writes `results.json`, `equal_time.png` and `samples.png` (each run's last sample grid) into
`--out`. The comparison is fair only for runs
that shared a machine the same way (e.g. started together on it, or each alone).
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os

import numpy as np

from wgan_jax.experiments import common
from wgan_jax.experiments.common import correlations, write_results
from wgan_jax.experiments.em_vs_quality import median_filter, read_scalar

DISTANCE = "frechet_classifier_distance"


def distance_estimate(workdir: str, window: int) -> tuple[str, np.ndarray, np.ndarray]:
    """(name, steps, median-filtered values) of the critic's distance estimate of a run."""
    with open(os.path.join(workdir, "config.json")) as f:
        loss = json.load(f).get("loss", "wasserstein")
    if loss == "wasserstein":
        steps, em = read_scalar(workdir, "em_distance")
        return "em_distance", steps, median_filter(steps, em, window)
    steps, critic = read_scalar(workdir, "critic_loss")
    return "js_estimate", steps, median_filter(steps, math.log(2.0) - critic / 2.0, window)


def summarize(name: str, workdir: str, window: int) -> dict:
    """One run's curves and correlations."""
    steps, dist, wall = read_scalar(workdir, DISTANCE, with_wall_time=True)
    first_steps, _, first_wall = read_scalar(workdir, "critic_loss", with_wall_time=True)
    start = float(first_wall[0])  # the first logged step: compilation is excluded
    estimate, e_steps, e_vals = distance_estimate(workdir, window)
    at_eval = np.array([e_vals[int(np.argmin(np.abs(e_steps - s)))] for s in steps])
    row = {"name": name, "workdir": workdir, "estimate": estimate, "steps": steps.tolist(),
           "minutes": ((wall - start) / 60.0).tolist(), "distance": dist.tolist(),
           "estimate_at_eval": at_eval.tolist(), "estimate_steps": e_steps.tolist(),
           "estimate_filtered": e_vals.tolist(), "first_logged_step": int(first_steps[0])}
    if len(steps) < 3:
        row["correlation_note"] = "fewer than 3 evaluations"
    elif np.ptp(dist) <= 1e-3 * np.mean(np.abs(dist)) or np.ptp(at_eval) == 0:
        # A flat curve (e.g. a collapsed generator) has no correlation worth a number.
        row["correlation_note"] = "distance or estimate constant over the run"
    else:
        row["correlation_estimate_vs_distance"] = correlations(at_eval, dist)
    samples = sorted(glob.glob(os.path.join(workdir, "samples", "step_*.png")))
    if samples:
        row["last_samples"] = samples[-1]
        s = int(os.path.basename(samples[-1])[5:-4])
        row["last_samples_step"] = s
        row["last_samples_minutes"] = float(np.interp(s, steps, row["minutes"]))
    return row


def run(runs: dict[str, str], out: str, window: int = 101) -> dict:
    """Summaries of `runs` (name -> workdir) and the comparison at their common wall time."""
    rows = [summarize(name, workdir, window) for name, workdir in runs.items()]
    common = min(r["minutes"][-1] for r in rows)
    for r in rows:
        within = [d for m, d in zip(r["minutes"], r["distance"], strict=True) if m <= common]
        r["best_distance_within_common_minutes"] = min(within) if within else None
        r["final"] = {"step": r["steps"][-1], "minutes": r["minutes"][-1],
                      "distance": r["distance"][-1]}
    result = {"window_steps": window, "common_minutes": common, "runs": rows}
    os.makedirs(out, exist_ok=True)
    write_results(out, result)
    _plot(result, os.path.join(out, "equal_time.png"))
    if all("last_samples" in r for r in rows):
        _plot_samples(rows, os.path.join(out, "samples.png"))
    return result


def _plot(result: dict, path: str) -> None:
    from wgan_jax.plotting import plt, save_figure
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 3.8))
    for i, r in enumerate(result["runs"]):
        a.plot(r["minutes"], r["distance"], "-", color=f"C{i}", label=r["name"])
        b.plot(r["steps"], r["distance"], "-", color=f"C{i}", label=r["name"])
        corr = r.get("correlation_estimate_vs_distance")
        note = f"Pearson {corr['pearson']:.2f}" if corr else "constant"
        c.plot(r["estimate_at_eval"], r["distance"], "o", ms=3, color=f"C{i}",
               label=f"{r['name']} ({r['estimate']}): {note}")
    for ax in (a, b):
        ax.set_yscale("log")
        ax.set_ylabel("Fréchet classifier distance")
        ax.legend(fontsize=8)
    a.set_xlabel("wall-clock minutes (same machine, runs side by side)")
    b.set_xlabel("generator step")
    b.set_xscale("log")
    c.set_xscale("symlog", linthresh=1e-2)
    c.set_yscale("log")
    c.set_xlabel("critic's distance estimate (median-filtered)")
    c.set_ylabel("Fréchet classifier distance")
    c.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def _plot_samples(rows: list[dict], path: str) -> None:
    import matplotlib.image as mpimg

    from wgan_jax.plotting import plt, save_figure
    fig, axes = plt.subplots(1, len(rows), figsize=(3 * len(rows), 3.3), squeeze=False)
    for ax, r in zip(axes[0], rows, strict=True):
        ax.imshow(mpimg.imread(r["last_samples"]))
        ax.set_title(f"{r['name']}, step {r['last_samples_step']} "
                     f"(~{r['last_samples_minutes']:.0f} min)", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m wgan_jax.experiments.equal_time",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, metavar="NAME=WORKDIR",
                   help="a run to compare (repeat)")
    p.add_argument("--out", required=True, help="folder for results.json and the figure")
    p.add_argument("--window", type=int, default=101, help="median window, generator steps")
    args = p.parse_args(argv)
    runs = common.parse_runs(args.run)
    result = run(runs, args.out, args.window)
    print(f"common wall time {result['common_minutes']:.1f} min")
    for r in result["runs"]:
        corr = r.get("correlation_estimate_vs_distance")
        print(f"{r['name']}: final step {r['final']['step']} at {r['final']['minutes']:.1f} min,"
              f" distance {r['final']['distance']:.1f}; best within common time "
              f"{r['best_distance_within_common_minutes']:.1f}; {r['estimate']} vs distance: "
              + (f"Pearson {corr['pearson']:.2f} Spearman {corr['spearman']:.2f}" if corr
                 else r["correlation_note"]))


if __name__ == "__main__":
    main()
