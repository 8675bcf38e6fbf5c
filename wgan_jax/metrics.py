"""Training metrics aggregated with clu.metrics between writes."""
from __future__ import annotations

from collections.abc import Iterable

from clu import metrics as clu_metrics


def train_collection(names: Iterable[str]) -> type[clu_metrics.Collection]:
    """A clu Collection averaging each named scalar the step returns over the logging window."""
    return clu_metrics.Collection.create(
        **{name: clu_metrics.Average.from_output(name) for name in sorted(names)})


class NonFiniteError(FloatingPointError):
    """A training metric became NaN or infinite."""
