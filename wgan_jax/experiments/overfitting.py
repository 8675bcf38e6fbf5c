"""Does the critic memorise a small training set? (WGAN-GP paper, section 5 and Figure 4b.)

For run.py workdirs trained on a small subset (`--config.train_subset=1000`) with the
`heldout` evaluator, reads the current critic's estimate on training-subset reals
(`em_distance_trainset`) and on test reals (`em_distance_heldout`), both against the same
generated samples, and reports the gap between them at every evaluation:

    python -m wgan_jax.experiments.overfitting --run wgan-gp=runs/overfit_gp \
        --run wgan=runs/overfit_clip --out runs/overfit

writes `results.json` and `overfitting.png` (one panel per run, the two curves against the
generator step) into `--out`. A critic that memorises its training examples scores them higher
than unseen ones: the gap grows from ~0 as training goes on.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from wgan_jax.experiments import common
from wgan_jax.experiments.common import write_results
from wgan_jax.experiments.em_vs_quality import read_scalar


def summarize(name: str, workdir: str) -> dict:
    """One run's curves, the gap (trainset - held-out) and its relative size at each
    evaluation, and where the gap first stays positive to the end."""
    steps, train = read_scalar(workdir, "em_distance_trainset")
    steps_h, heldout = read_scalar(workdir, "em_distance_heldout")
    if not np.array_equal(steps, steps_h):
        raise ValueError(f"{workdir}: em_distance_trainset and em_distance_heldout were logged "
                         "at different steps")
    gap = train - heldout
    relative = gap / np.maximum(np.abs(train), 1e-12)
    positive_from = next((int(steps[i]) for i in range(len(gap)) if np.all(gap[i:] > 0)), None)
    return {"name": name, "workdir": workdir, "steps": steps.tolist(),
            "trainset": train.tolist(), "heldout": heldout.tolist(), "gap": gap.tolist(),
            "relative_gap": relative.tolist(), "gap_positive_from_step": positive_from,
            "final": {"step": int(steps[-1]), "trainset": float(train[-1]),
                      "heldout": float(heldout[-1]), "gap": float(gap[-1]),
                      "relative_gap": float(relative[-1])}}


def run(runs: dict[str, str], out: str) -> dict:
    """Summaries of `runs` ({name: workdir}); results.json and the figure go into `out`."""
    result = {"runs": [summarize(name, wd) for name, wd in runs.items()]}
    os.makedirs(out, exist_ok=True)
    write_results(out, result)
    _plot(result, os.path.join(out, "overfitting.png"))
    return result


def _plot(result: dict, path: str) -> None:
    from wgan_jax.plotting import plt, save_figure
    rows = result["runs"]
    fig, axes = plt.subplots(1, len(rows), figsize=(4.5 * len(rows), 3.5), squeeze=False)
    for ax, r in zip(axes[0], rows, strict=True):
        ax.plot(r["steps"], r["trainset"], "-", color="C0", label="training subset")
        ax.plot(r["steps"], r["heldout"], "-", color="C1", label="held-out (test split)")
        ax.set_title(r["name"], fontsize=9)
        ax.set_xlabel("generator step")
        ax.set_ylabel("critic's estimate, mean D(real) - mean D(fake)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m wgan_jax.experiments.overfitting",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, metavar="NAME=WORKDIR",
                   help="a run with the heldout evaluator (repeat)")
    p.add_argument("--out", required=True, help="folder for results.json and the figure")
    args = p.parse_args(argv)
    runs = common.parse_runs(args.run)
    for r in run(runs, args.out)["runs"]:
        f = r["final"]
        print(f"{r['name']}: step {f['step']} trainset {f['trainset']:.4g} held-out "
              f"{f['heldout']:.4g} gap {f['gap']:.4g} ({100 * f['relative_gap']:.0f}%); gap "
              f"positive from step {r['gap_positive_from_step']}")


if __name__ == "__main__":
    main()
