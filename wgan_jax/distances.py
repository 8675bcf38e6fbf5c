"""Exact distances between probability distributions, for checking the WGAN story by hand.

Wasserstein-1 (earth mover's) distances are computed exactly: in 1-D by integrating the
difference of the two CDFs, in any dimension by solving the transport linear program with POT.
KL and JS divergences work on discrete distributions (histograms). ``parallel_lines`` gives the
closed forms of Example 1 of Arjovsky et al. (2017), and ``parallel_lines_empirical`` recomputes
them from samples so the closed forms can be checked by a second method.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import NamedTuple

import numpy as np


def _ot():
    """POT, imported when a distance is first computed (1.5 s with scipy.stats: a run that
    computes none does not pay it). POT imports TensorFlow, PyTorch, JAX and CuPy where
    installed (seconds each) to offer backends this project never feeds it (numpy arrays
    only); disabled here, which only takes effect if POT was not imported earlier."""
    for backend in ("TENSORFLOW", "PYTORCH", "JAX", "CUPY"):
        os.environ.setdefault(f"POT_BACKEND_DISABLE_{backend}", "1")
    import ot
    return ot


# Network simplex iterations: the default 100k stops short on ~2000x2000 problems.
_EMD_MAX_ITER = 1_000_000
# POT's result code for a solved problem (others: infeasible, unbounded, max iterations).
_EMD_OPTIMAL = 1


def _as_weights(weights, n: int, name: str) -> np.ndarray:
    """Returns non-negative weights of length n summing to 1 (uniform when None)."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    total = w.sum()
    if total <= 0:
        raise ValueError(f"{name} must have a positive sum")
    return w / total


def _as_values_1d(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite")
    return v


def _as_points(points, name: str) -> np.ndarray:
    """Returns an (n, d) float array; a 1-D array is read as n points on the line."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (n,) or (n, d) array, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} must be finite")
    return p


def _euclidean_cost(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"point dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    return _ot().dist(x, y, metric="euclidean")


def _solve_emd(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, float]:
    """Solves the transport LP exactly; raises instead of returning a non-optimal plan."""
    with warnings.catch_warnings():
        # POT only warns on failure; the result code below turns that into an error.
        warnings.simplefilter("ignore", UserWarning)
        plan, log = _ot().emd(a, b, cost, numItermax=_EMD_MAX_ITER, log=True)
    if log["result_code"] != _EMD_OPTIMAL:
        raise RuntimeError(
            f"optimal transport solver did not converge (result code {log['result_code']}): "
            f"{log['warning']}"
        )
    return plan, float(np.sum(plan * cost))


def w1_1d(u_values, v_values, u_weights=None, v_weights=None) -> float:
    """Exact W1 between two distributions on the line: the integral of |F_u - F_v|.

    Values are sample positions (or histogram bin positions with weights); weights default to
    uniform and are normalised, so the result is for probability distributions.
    """
    u = _as_values_1d(u_values, "u_values")
    v = _as_values_1d(v_values, "v_values")
    uw = _as_weights(u_weights, u.size, "u_weights")
    vw = _as_weights(v_weights, v.size, "v_weights")

    u_order, v_order = np.argsort(u), np.argsort(v)
    u_sorted, v_sorted = u[u_order], v[v_order]
    u_cum = np.concatenate([[0.0], np.cumsum(uw[u_order])])
    v_cum = np.concatenate([[0.0], np.cumsum(vw[v_order])])

    # Both CDFs are step functions, constant between consecutive pooled support points.
    grid = np.sort(np.concatenate([u, v]))
    u_cdf = u_cum[np.searchsorted(u_sorted, grid[:-1], side="right")]
    v_cdf = v_cum[np.searchsorted(v_sorted, grid[:-1], side="right")]
    return float(np.sum(np.abs(u_cdf - v_cdf) * np.diff(grid)))


def w1_points(x, y, x_weights=None, y_weights=None) -> float:
    """Exact W1 with Euclidean ground cost between point clouds x (n, d) and y (m, d).

    Weights default to uniform and are normalised. Raises RuntimeError if the solver stops
    before optimality, so a returned value is always the exact optimum.
    """
    xp, yp = _as_points(x, "x"), _as_points(y, "y")
    a = _as_weights(x_weights, xp.shape[0], "x_weights")
    b = _as_weights(y_weights, yp.shape[0], "y_weights")
    _, cost = _solve_emd(a, b, _euclidean_cost(xp, yp))
    return cost


class TransportResult(NamedTuple):
    """An optimal transport plan (rows: sources, columns: targets) and its total cost."""

    plan: np.ndarray
    cost: float


def transport_plan(a_positions, a_mass, b_positions, b_mass) -> TransportResult:
    """Optimal plan moving mass a_mass at a_positions onto b_mass at b_positions.

    Masses are not normalised (boxes of dirt, say) but their totals must agree; the cost is
    mass times Euclidean distance, summed. Positions are (n,) on the line or (n, d).
    """
    xp, yp = _as_points(a_positions, "a_positions"), _as_points(b_positions, "b_positions")
    a = np.asarray(a_mass, dtype=np.float64)
    b = np.asarray(b_mass, dtype=np.float64)
    for mass, pts, name in ((a, xp, "a_mass"), (b, yp, "b_mass")):
        if mass.shape != (pts.shape[0],):
            raise ValueError(f"{name} must have shape ({pts.shape[0]},), got {mass.shape}")
        if not np.all(np.isfinite(mass)) or np.any(mass < 0):
            raise ValueError(f"{name} must be finite and non-negative")
    if not np.isclose(a.sum(), b.sum(), rtol=1e-9, atol=0.0) or a.sum() <= 0:
        raise ValueError(f"total masses must be equal and positive: {a.sum()} vs {b.sum()}")
    plan, cost = _solve_emd(a, b, _euclidean_cost(xp, yp))
    return TransportResult(plan=plan, cost=cost)


def plan_cost(plan, a_positions, b_positions) -> float:
    """Cost of any plan: sum over (i, j) of plan[i, j] * ||a_i - b_j||."""
    xp, yp = _as_points(a_positions, "a_positions"), _as_points(b_positions, "b_positions")
    g = np.asarray(plan, dtype=np.float64)
    if g.shape != (xp.shape[0], yp.shape[0]):
        raise ValueError(f"plan must have shape {(xp.shape[0], yp.shape[0])}, got {g.shape}")
    return float(np.sum(g * _euclidean_cost(xp, yp)))


def _as_distribution(p, name: str) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{name} must be non-empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative")
    total = arr.sum()
    if total <= 0:
        raise ValueError(f"{name} must have a positive sum")
    return arr / total


def _checked_pair(p, q) -> tuple[np.ndarray, np.ndarray]:
    pa, qa = np.asarray(p), np.asarray(q)
    if pa.shape != qa.shape:
        raise ValueError(f"p and q must have the same shape, got {pa.shape} and {qa.shape}")
    return _as_distribution(pa, "p"), _as_distribution(qa, "q")


def _kl_normalised(p: np.ndarray, q: np.ndarray) -> float:
    support = p > 0
    if np.any(q[support] == 0):
        return math.inf
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def kl(p, q) -> float:
    """KL(p || q) in nats for discrete distributions; +inf where p > 0 and q = 0.

    Inputs are non-negative arrays of the same shape, normalised to sum to 1.
    """
    pn, qn = _checked_pair(p, q)
    return _kl_normalised(pn, qn)


def js(p, q) -> float:
    """Jensen-Shannon divergence in nats for discrete distributions; lies in [0, log 2]."""
    pn, qn = _checked_pair(p, q)
    m = 0.5 * (pn + qn)
    value = 0.5 * _kl_normalised(pn, m) + 0.5 * _kl_normalised(qn, m)
    # Rounding can step a hair outside the mathematical range.
    return float(min(max(value, 0.0), math.log(2.0)))


def parallel_lines(theta: float) -> dict[str, float]:
    """Closed forms for P_0 = (0, U[0,1]) vs P_theta = (theta, U[0,1]) (WGAN paper, Example 1).

    W1 = |theta|; JS = log 2 and KL = +inf for theta != 0; all three are 0 at theta = 0.
    """
    theta = float(theta)
    if theta == 0.0:
        return {"w1": 0.0, "js": 0.0, "kl": 0.0}
    return {"w1": abs(theta), "js": math.log(2.0), "kl": math.inf}


def parallel_lines_empirical(
    theta: float,
    n: int,
    rng: np.random.Generator,
    bin_width: float = 0.05,
    y_bins: int = 10,
) -> dict[str, float]:
    """Estimates the parallel-lines distances from n independent samples of each line.

    W1 is the exact W1 between the two point clouds (it overestimates |theta| by the sampling
    error of the vertical coordinate, O(n^-1/2)). JS and KL(P_0 || P_theta) are computed on a
    shared 2-D histogram whose horizontal bins are centred on multiples of bin_width, so the
    lines land in disjoint bins exactly when |theta| >= bin_width.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if bin_width <= 0:
        raise ValueError(f"bin_width must be positive, got {bin_width}")
    if y_bins < 1:
        raise ValueError(f"y_bins must be positive, got {y_bins}")
    theta = float(theta)
    p0 = np.stack([np.zeros(n), rng.uniform(size=n)], axis=1)
    pt = np.stack([np.full(n, theta), rng.uniform(size=n)], axis=1)

    k_lo = math.floor(min(0.0, theta) / bin_width + 0.5)
    k_hi = math.floor(max(0.0, theta) / bin_width + 0.5)
    x_edges = (np.arange(k_lo, k_hi + 2) - 0.5) * bin_width
    y_edges = np.linspace(0.0, 1.0, y_bins + 1)
    h0, _, _ = np.histogram2d(p0[:, 0], p0[:, 1], bins=(x_edges, y_edges))
    ht, _, _ = np.histogram2d(pt[:, 0], pt[:, 1], bins=(x_edges, y_edges))
    return {"w1": w1_points(p0, pt), "js": js(h0, ht), "kl": kl(h0, ht)}
