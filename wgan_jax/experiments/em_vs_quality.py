"""Does the critic's EM estimate track sample quality? (WGAN paper, Figures 3-4.)

For a run.py workdir of an image run, reads the logged `em_distance` curve from its TensorBoard
events, median-filters it over a window of generator steps (the WGAN paper's curves use 101),
scores every kept checkpoint with the offline classifier metrics (the Fréchet classifier
distance and score, `wgan_jax.quality`), and reports both against the step and the correlation
of the filtered estimate with the distance:

    python -m wgan_jax.experiments.em_vs_quality --workdir runs/fmnist_fast --out /tmp/emq

writes `results.json` and `em_vs_quality.png` into `--out`. With fewer checkpoints than about
six the correlation says little; keep more (`--config.keep_checkpoints`) or checkpoint more
often when the run is meant for this.
"""
from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np

from wgan_jax.experiments import common
from wgan_jax.experiments.common import write_results


def read_scalar(workdir: str, tag: str,
                with_wall_time: bool = False) -> tuple[np.ndarray, ...]:
    """(steps, values) of scalar `tag` from the workdir's TensorBoard event files; with
    `with_wall_time`, (steps, values, wall-clock seconds at which each was written)."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util
    files = sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*")))
    if not files:
        raise FileNotFoundError(f"no TensorBoard event files in {workdir}")
    points: dict[int, tuple[float, float]] = {}
    for f in files:
        acc = event_accumulator.EventAccumulator(f, size_guidance={"tensors": 0, "scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("tensors", []):
            for e in acc.Tensors(tag):
                points[e.step] = (float(tensor_util.make_ndarray(e.tensor_proto)), e.wall_time)
        elif tag in acc.Tags().get("scalars", []):
            for e in acc.Scalars(tag):
                points[e.step] = (float(e.value), e.wall_time)
    if not points:
        raise ValueError(f"no {tag!r} values in the event files of {workdir}")
    steps = np.array(sorted(points))
    values = np.array([points[s][0] for s in steps])
    if with_wall_time:
        return steps, values, np.array([points[s][1] for s in steps])
    return steps, values


def median_filter(steps: np.ndarray, values: np.ndarray, window: int) -> np.ndarray:
    """Median of the values logged within +-window/2 generator steps of each point."""
    half = window / 2
    return np.array([np.median(values[np.abs(steps - s) <= half]) for s in steps])


def run(workdir: str, out: str, window: int = 101, num_samples: int = 5000) -> dict:
    """Score the checkpoints and compare them with the filtered EM curve; see the docstring."""
    from wgan_jax import score
    steps, em = read_scalar(workdir, "em_distance")
    smooth = median_filter(steps, em, window)
    ckpts = sorted(int(os.path.basename(p)) for p in glob.glob(os.path.join(
        workdir, "checkpoints", "*")) if os.path.basename(p).isdigit())
    rows = []
    for step in ckpts:
        args = argparse.Namespace(workdir=workdir, images=None, dataset=None, step=step,
                                  evals="classifier", inception_weights=None,
                                  num_samples=num_samples, reference_num_samples=None,
                                  stats_dir=None, data_dir=None)
        metrics = score.score(args)
        nearest = int(np.argmin(np.abs(steps - step)))
        rows.append({"step": step, "em_filtered": float(smooth[nearest]),
                     **{k: v for k, v in metrics.items() if k != "step"}})
    result = {"workdir": workdir, "window_steps": window, "num_samples": num_samples,
              "checkpoints": rows, "em_steps": steps.tolist(), "em": em.tolist(),
              "em_filtered": smooth.tolist()}
    if len(rows) >= 3:
        result["correlation_em_vs_fcd"] = common.correlations(
            [r["em_filtered"] for r in rows], [r["frechet_classifier_distance"] for r in rows])
    os.makedirs(out, exist_ok=True)
    write_results(out, result)
    _plot(result, os.path.join(out, "em_vs_quality.png"))
    return result


def _plot(result: dict, path: str) -> None:
    from wgan_jax.plotting import plt, save_figure
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(result["em_steps"], result["em"], color="0.8", lw=0.8, label="em_distance")
    a.plot(result["em_steps"], result["em_filtered"], color="C0",
           label=f"median over {result['window_steps']} steps")
    a.set_xlabel("generator step")
    a.set_ylabel("critic's EM estimate")
    rows = result["checkpoints"]
    a2 = a.twinx()
    a2.plot([r["step"] for r in rows], [r["frechet_classifier_distance"] for r in rows], "o-",
            color="C3", label="Fréchet classifier distance")
    a2.set_ylabel("Fréchet classifier distance", color="C3")
    a.legend(loc="upper right", fontsize=8)
    b.plot([r["em_filtered"] for r in rows], [r["frechet_classifier_distance"] for r in rows],
           "o", color="C3")
    for r in rows:
        b.annotate(str(r["step"]), (r["em_filtered"], r["frechet_classifier_distance"]),
                   fontsize=7)
    b.set_xlabel("filtered EM estimate at the checkpoint")
    b.set_ylabel("Fréchet classifier distance")
    corr = result.get("correlation_em_vs_fcd")
    if corr:
        b.set_title(f"Pearson {corr['pearson']:.2f}, Spearman {corr['spearman']:.2f}")
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m wgan_jax.experiments.em_vs_quality",
                                description=__doc__.splitlines()[0])
    p.add_argument("--workdir", required=True, help="a run.py workdir of an image run")
    p.add_argument("--out", required=True, help="folder for results.json and the figure")
    p.add_argument("--window", type=int, default=101, help="median window, generator steps")
    p.add_argument("--num_samples", type=int, default=5000, help="samples per checkpoint")
    args = p.parse_args()
    result = run(args.workdir, args.out, args.window, args.num_samples)
    print(json.dumps({"checkpoints": result["checkpoints"],
                      "correlation_em_vs_fcd": result.get("correlation_em_vs_fcd")}, indent=1))


if __name__ == "__main__":
    main()
