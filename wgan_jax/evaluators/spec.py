"""What registering an evaluator takes: its config block's defaults, their validation, which
data it needs, and how to build it from a run's config."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import ml_collections

if TYPE_CHECKING:
    from wgan_jax.evaluators.base import Evaluator, Networks
    from wgan_jax.method import Method

# fail(field, value, hint) raises the config's one error; `field` is relative to `config.`.
Fail = Callable[[str, Any, str], NoReturn]
NEEDS = ("any", "toy", "image", "classifier")


def _no_checks(block: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
               fail: Fail, active: bool) -> None:
    del block, config, fail, active


@dataclasses.dataclass(frozen=True)
class EvaluatorSpec:
    """One evaluator's registration.

    `defaults()` is its block `config.eval.<name>` (always with `every_steps`); `validate(block,
    config, fail, active)` checks the block (`active`: the evaluator is in `config.evals`, so
    checks that touch files or data apply); `build(config, method, networks)` makes it; `needs`
    is the data it runs on: 'any', 'toy', 'image' or 'classifier' (an image set with a committed
    classifier).
    """

    needs: str
    defaults: Callable[[], ml_collections.ConfigDict]
    build: Callable[[ml_collections.ConfigDict, Method, Networks], Evaluator]
    validate: Callable[[ml_collections.ConfigDict, ml_collections.ConfigDict, Fail, bool],
                       None] = _no_checks

    def __post_init__(self):
        if self.needs not in NEEDS:
            raise ValueError(f"needs={self.needs!r}: choose one of {NEEDS}")


def check_positive_ints(block: ml_collections.ConfigDict, prefix: str, fail: Fail,
                        *fields: str) -> None:
    """fail() for the first of `fields` of `block` that is not a positive integer."""
    for f in fields:
        v = block[f]
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            fail(f"{prefix}.{f}", v, "must be a positive integer")
