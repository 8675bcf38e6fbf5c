"""Distances between distributions: why the Wasserstein distance gives a usable gradient.

Writes into the workdir
  distances_parallel_lines.png  W1, JS and KL between P_0 = (0, U[0,1]) and P_theta = (theta,
                                U[0,1]) against theta, and the size of their theta-derivatives;
  distances_dirt_piles.png      the two dirt piles and the optimal transport plan between them;
  distances_plans_ab.png        two feasible plans for the same piles, costing 2 and 6;
  results.json                  the numbers behind the figures.

Run: python -m wgan_jax.experiments.distances_demo --workdir /tmp/dist
"""

from __future__ import annotations

import math
import os
from typing import Any

import ml_collections
import numpy as np

from wgan_jax import distances
from wgan_jax.experiments import common
from wgan_jax.plotting import plt, save_figure

# Seed 002's dirt piles: boxes of dirt per position.
DIRT_SOURCE = {1: 3, 2: 1, 3: 2}  # P_g
DIRT_TARGET = {7: 1, 8: 1, 9: 2, 10: 2}  # P_r
# The plan tabulated in the seed (rows: positions 1..3, columns: positions 7..10).
DIRT_SEED_PLAN = ((1, 1, 0, 1), (0, 0, 1, 0), (0, 0, 1, 1))

# Two boxes at 0 and 4 to be moved onto 1 and 3: plan A moves each box 1, plan B moves each 3.
AB_SOURCE = {0: 1, 4: 1}
AB_TARGET = {1: 1, 3: 1}
PLAN_A = ((1, 0), (0, 1))
PLAN_B = ((0, 1), (1, 0))


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raises a ConfigError naming the first field with an unusable value."""
    if not config.theta_min < config.theta_max:
        common.fail("theta_min", config.theta_min,
                    f"must be below theta_max ({config.theta_max})")
    if config.num_thetas < 3:
        common.fail("num_thetas", config.num_thetas, "must be at least 3")
    if len(config.empirical_thetas) == 0:
        common.fail("empirical_thetas", config.empirical_thetas, "must list at least one theta")
    if not all(math.isfinite(float(t)) for t in config.empirical_thetas):
        common.fail("empirical_thetas", config.empirical_thetas, "must be finite")
    if config.empirical_n < 2:
        common.fail("empirical_n", config.empirical_n, "must be at least 2")
    if not config.bin_width > 0:
        common.fail("bin_width", config.bin_width, "must be positive")
    common.check_positive_ints(config, "y_bins")


def _piles(source: dict, target: dict):
    return (
        np.array(list(source), dtype=float),
        np.array(list(source.values()), dtype=float),
        np.array(list(target), dtype=float),
        np.array(list(target.values()), dtype=float),
    )


def dirt_pile_numbers() -> dict[str, Any]:
    """Optimal plan and cost for the seed's dirt piles, in boxes and per unit of mass."""
    xs, a, ys, b = _piles(DIRT_SOURCE, DIRT_TARGET)
    result = distances.transport_plan(xs, a, ys, b)
    return {
        "total_boxes": float(a.sum()),
        "optimal_cost_boxes": result.cost,
        "seed_plan_cost_boxes": distances.plan_cost(DIRT_SEED_PLAN, xs, ys),
        "w1_normalised": result.cost / a.sum(),
        "w1_1d": distances.w1_1d(xs, ys, a, b),
        "optimal_plan": result.plan.tolist(),
    }


def plans_ab_numbers() -> dict[str, Any]:
    """Costs of plans A and B and of the optimal plan for the two-box example."""
    xs, a, ys, b = _piles(AB_SOURCE, AB_TARGET)
    result = distances.transport_plan(xs, a, ys, b)
    return {
        "plan_a_cost": distances.plan_cost(PLAN_A, xs, ys),
        "plan_b_cost": distances.plan_cost(PLAN_B, xs, ys),
        "optimal_cost": result.cost,
        "optimal_plan": result.plan.tolist(),
    }


def parallel_lines_numbers(config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
    """Closed form next to the sample-based estimate at each of config.empirical_thetas."""
    rng = np.random.default_rng(config.seed)
    rows = []
    for theta in config.empirical_thetas:
        exact = distances.parallel_lines(theta)
        est = distances.parallel_lines_empirical(
            theta, config.empirical_n, rng, bin_width=config.bin_width, y_bins=config.y_bins
        )
        rows.append({"theta": float(theta), "closed_form": exact, "empirical": est})
    return rows


def _plot_parallel_lines(config, rows, path: str) -> None:
    thetas = np.linspace(config.theta_min, config.theta_max, config.num_thetas)
    curves = [distances.parallel_lines(t) for t in thetas]
    w1 = np.array([c["w1"] for c in curves])
    js = np.array([c["js"] for c in curves])
    off_zero = thetas != 0.0
    top = 1.15 * max(abs(config.theta_min), abs(config.theta_max), math.log(2.0))

    fig, (ax, gax) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax.plot(thetas, w1, color="C0", lw=2, label="W1 = |θ|")
    js_plot = np.where(off_zero, js, np.nan)  # a break at 0 shows the jump
    ax.plot(thetas, js_plot, color="C1", lw=2, label="JS = log 2 (θ ≠ 0)")
    ax.plot([0], [math.log(2.0)], "o", mfc="white", color="C1")
    kl_marks = thetas[off_zero][:: max(1, len(thetas) // 20)]
    ax.plot(kl_marks, np.full(kl_marks.shape, top * 0.97), "^", color="C3", ms=5,
            label="KL = +inf (θ ≠ 0)")
    ax.annotate("KL = inf", (thetas[-1], top * 0.97), xytext=(-4, -14),
                textcoords="offset points", ha="right", color="C3")
    ax.plot([0], [0], "o", color="k", ms=5, label="all 0 at θ = 0")
    emp_t = [r["theta"] for r in rows]
    ax.plot(emp_t, [r["empirical"]["w1"] for r in rows], "x", color="navy", ms=8,
            label="W1 from samples")
    ax.plot(emp_t, [r["empirical"]["js"] for r in rows], "s", mfc="none", color="saddlebrown",
            ms=7, label="JS from histograms")
    ax.set_ylim(-0.05, top)
    ax.set_xlabel("θ")
    ax.set_ylabel("distance (nats for JS, KL)")
    ax.set_title("P_0 = (0, U[0,1]) vs P_θ = (θ, U[0,1])")
    ax.legend(fontsize=7, loc="lower left")

    gax.plot(thetas[thetas < 0], -np.ones((thetas < 0).sum()), color="C0", lw=2,
             label="dW1/dθ = sign(θ)")
    gax.plot(thetas[thetas > 0], np.ones((thetas > 0).sum()), color="C0", lw=2)
    gax.plot(thetas[off_zero], np.zeros(off_zero.sum()), color="C1", lw=2,
             label="dJS/dθ = 0 (θ ≠ 0)")
    gax.set_ylim(-1.4, 1.4)
    gax.axvline(0, color="gray", lw=0.5)
    gax.set_xlabel("θ")
    gax.set_ylabel("derivative with respect to θ")
    gax.set_title("Only W1 tells θ which way to move")
    gax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def _draw_moves(ax, xs, a, ys, b, plan, label: bool) -> None:
    """Arcs from the top of each source bar to the top of each target bar it feeds."""
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            m = plan[i][j]
            if m <= 0:
                continue
            # The sign of rad flips with direction so every arc bulges upward.
            rad = -0.35 if y > x else 0.35
            ax.annotate("", xy=(y, b[j] + 0.05), xytext=(x, a[i] + 0.05),
                        arrowprops=dict(arrowstyle="->", lw=0.8 + m, color="gray",
                                        connectionstyle=f"arc3,rad={rad}"))
            if label:
                apex = 0.5 * (a[i] + b[j]) + 0.05 + 0.175 * abs(y - x)
                ax.text((x + y) / 2, apex + 0.05, f"{m:g}", fontsize=8, ha="center",
                        color="dimgray")


def _plot_dirt_piles(numbers: dict[str, Any], path: str) -> None:
    xs, a, ys, b = _piles(DIRT_SOURCE, DIRT_TARGET)
    plan = np.array(numbers["optimal_plan"])
    fig, (ax, hax) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    ax.bar(xs, a, width=0.8, color="C0", label="P_g (boxes to move)")
    ax.bar(ys, b, width=0.8, color="C1", label="P_r (target)")
    _draw_moves(ax, xs, a, ys, b, plan, label=False)
    ax.set_xticks(np.arange(1, 11))
    ax.set_ylim(0, 5.5)
    ax.set_xlabel("position")
    ax.set_ylabel("boxes")
    ax.set_title(f"Optimal moves: cost {numbers['optimal_cost_boxes']:g} box·distance")
    ax.legend(fontsize=8, loc="upper right")

    hax.imshow(plan, cmap="Blues", vmin=0, vmax=max(1.0, plan.max()))
    for (i, j), m in np.ndenumerate(plan):
        hax.text(j, i, f"{m:g}", ha="center", va="center",
                 color="white" if m > 0.5 * plan.max() else "black")
    hax.set_xticks(range(len(ys)), [f"{y:g}" for y in ys])
    hax.set_yticks(range(len(xs)), [f"{x:g}" for x in xs])
    hax.set_xlabel("to (P_r position)")
    hax.set_ylabel("from (P_g position)")
    hax.set_title(f"An optimal plan γ; W1 = {numbers['optimal_cost_boxes']:g} / "
                  f"{numbers['total_boxes']:g} = {numbers['w1_normalised']:g}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def _plot_plans_ab(numbers: dict[str, Any], path: str) -> None:
    xs, a, ys, b = _piles(AB_SOURCE, AB_TARGET)
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6), sharey=True)
    for ax, name, plan, cost in (
        (axes[0], "Plan A", PLAN_A, numbers["plan_a_cost"]),
        (axes[1], "Plan B", PLAN_B, numbers["plan_b_cost"]),
    ):
        ax.bar(xs, a, width=0.6, color="C0", label="from")
        ax.bar(ys, b, width=0.6, color="C1", label="to")
        _draw_moves(ax, xs, a, ys, b, plan, label=True)
        ax.set_xticks(np.arange(-1, 6))
        ax.set_ylim(0, 2.4)
        ax.set_yticks([])
        ax.set_title(f"{name}: cost {cost:g}")
    axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"Optimal plan found by the solver costs {numbers['optimal_cost']:g}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Computes the numbers, writes the figures and results.json into workdir, returns numbers."""
    validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    results = {
        "dirt_piles": dirt_pile_numbers(),
        "plans_ab": plans_ab_numbers(),
        "parallel_lines": parallel_lines_numbers(config),
        "config": config.to_dict(),
    }
    _plot_parallel_lines(config, results["parallel_lines"],
                         os.path.join(workdir, "distances_parallel_lines.png"))
    _plot_dirt_piles(results["dirt_piles"], os.path.join(workdir, "distances_dirt_piles.png"))
    _plot_plans_ab(results["plans_ab"], os.path.join(workdir, "distances_plans_ab.png"))
    common.write_results(workdir, results, indent=2)
    return results


if __name__ == "__main__":
    common.main(run, "distances")
