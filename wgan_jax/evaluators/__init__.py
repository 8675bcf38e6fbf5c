"""Evaluators: named computations on the train state, each at its own cadence.

`build(config, method)` makes the ones `config.evals` names. To add one, write a class with
`name`, `every_steps` and `run(state) -> {metric: value}` and register its builder in `BUILDERS`.
"""
from __future__ import annotations

from collections.abc import Callable

import ml_collections

from wgan_jax.evaluators.base import Evaluator, Networks, fixed_latents
from wgan_jax.evaluators.samples import SamplePictures
from wgan_jax.evaluators.toy import ToyEvaluator, mode_coverage, w1_report
from wgan_jax.method import Method

__all__ = ["BUILDERS", "Evaluator", "Networks", "SamplePictures", "ToyEvaluator", "build",
           "fixed_latents", "mode_coverage", "w1_report"]


def _samples(config, method: Method, networks: Networks) -> Evaluator:
    return SamplePictures(networks, method.dataset, method.model.arch,
                          every_steps=config.sample_every_steps, seed=config.seed,
                          num_images=config.eval.num_sample_images)


def _toy(config, method: Method, networks: Networks) -> Evaluator:
    return ToyEvaluator(networks, method.dataset, every_steps=config.eval_every_steps,
                        seed=config.seed, num_samples=config.eval.num_samples,
                        w1_samples=config.eval.w1_samples)


# name -> builder(config, method, networks). Which data each one needs is checked by
# config.validate.
BUILDERS: dict[str, Callable[[ml_collections.ConfigDict, Method, Networks], Evaluator]] = {
    "samples": _samples,
    "toy": _toy,
}


def build(config: ml_collections.ConfigDict, method: Method) -> list[Evaluator]:
    """The evaluators `config.evals` names, sharing one set of jitted networks."""
    networks = Networks(method.models())
    return [BUILDERS[name](config, method, networks) for name in config.evals]
