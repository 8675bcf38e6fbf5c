"""Training metrics: the step's scalars averaged with a clu Collection between writes."""
from __future__ import annotations

import math
from collections.abc import Iterable

import jax
from clu import metrics as clu_metrics


class NonFiniteError(FloatingPointError):
    """A training metric became NaN or infinite."""


def train_collection(names: Iterable[str]) -> type[clu_metrics.Collection]:
    """A clu Collection averaging each named scalar the step returns over the logging window."""
    return clu_metrics.Collection.create(
        **{name: clu_metrics.Average.from_output(name) for name in sorted(names)})


class WindowAverage:
    """The step's metrics (names declared up front) averaged since the last `pop`."""

    def __init__(self, names: Iterable[str]):
        self.collection = train_collection(names)
        # One compiled call per step instead of dozens of eager ops per metric.
        self._merge = jax.jit(
            lambda acc, m: acc.merge(self.collection.single_from_model_output(**m)))
        self._acc = self.collection.empty()
        self.count = 0

    def add(self, step_metrics: dict) -> None:
        self._acc = self._merge(self._acc, step_metrics)
        self.count += 1

    def pop(self) -> dict[str, float]:
        """The window's averages as floats; starts a new window."""
        values = {k: float(v) for k, v in jax.device_get(self._acc.compute()).items()}
        self._acc, self.count = self.collection.empty(), 0
        return values


def check_finite(values: dict[str, float], step: int, since: int) -> None:
    """Raise NonFiniteError naming the metrics and steps if any value is NaN or infinite."""
    bad = sorted(k for k, v in values.items() if not math.isfinite(v))
    if bad:
        where = f"step {step}" if since == step else f"steps {since}-{step}"
        raise NonFiniteError(
            f"non-finite {', '.join(bad)} at {where} (values: "
            f"{ {k: values[k] for k in bad} }). The last good checkpoint is kept; lower the "
            "learning rate, or raise gp_weight / lower clip_value, and resume or restart.")
