"""Training metrics: the step's scalars averaged with a clu Collection between writes."""
from __future__ import annotations

import math
from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np
from clu import metrics as clu_metrics


class NonFiniteError(FloatingPointError):
    """A value of the run (a training metric, an evaluator's result, the parameters) became NaN
    or infinite. Its message is one line naming what, where and at which step."""


def non_finite_error(bad: dict[str, object], source: str, steps: str) -> NonFiniteError:
    """The one message of every non-finite stop: `bad` {name: value} seen in `source` at
    `steps` ("step 7" or "steps 3-7")."""
    shown = sorted(bad)[:4]
    more = f" and {len(bad) - 4} more" if len(bad) > 4 else ""
    values = ", ".join(f"{k}={bad[k]}" for k in shown)
    return NonFiniteError(
        f"non-finite {', '.join(shown)}{more} in {source} at {steps} ({values}). The last good "
        "checkpoint is kept; start again in a fresh --workdir with a lower learning rate, a "
        "larger gp_weight or a smaller clip_value")


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


def check_finite(values: dict[str, float], step: int, since: int,
                 source: str = "the training metrics") -> None:
    """Raise NonFiniteError naming the metrics and steps if any value is NaN or infinite."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        where = f"step {step}" if since == step else f"steps {since}-{step}"
        raise non_finite_error(bad, source, where)


def check_finite_results(results: dict, step: int, source: str) -> None:
    """Raise NonFiniteError if an evaluator's scalar or floating-point array is not finite
    (integer pictures cannot be; check the state they were drawn from)."""
    bad = {}
    for k, v in results.items():
        a = np.asarray(v)
        if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
            bad[k] = float(a) if a.ndim == 0 else f"array with {np.sum(~np.isfinite(a))} " \
                "non-finite entries"
    if bad:
        raise non_finite_error(bad, source, f"step {step}")


@jax.jit
def _finite_parts(state) -> dict[str, jax.Array]:
    parts = {"generator parameters": state.g_params, "critic parameters": state.d_params,
             "generator EMA": state.g_ema}
    return {k: jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(t)]
                                   or [True]))
            for k, t in parts.items()}


def check_finite_state(state, step: int, when: str = "") -> None:
    """Raise NonFiniteError if the networks' parameters (or the EMA) hold a NaN or infinity:
    asked before anything is drawn from them or saved (`when` says which)."""
    flags = _finite_parts(state)
    bad = {k: "NaN/inf" for k, v in flags.items()
           if not bool(np.asarray(v.addressable_shards[0].data))}
    if bad:
        raise non_finite_error(bad, f"the train state{' ' + when if when else ''}",
                               f"step {step}")
