"""Evaluators: named computations on the train state, each at its own cadence.

`build(config, method)` makes the ones `config.evals` names. To add one, write a class with
`name`, `every_steps` and `run(state) -> {metric: value}` and register its builder in `BUILDERS`.
"""
from __future__ import annotations

from collections.abc import Callable

import ml_collections

from wgan_jax.evaluators.base import Evaluator, Networks, fixed_latents
from wgan_jax.evaluators.quality import ClassifierEvaluator, InceptionEvaluator
from wgan_jax.evaluators.samples import SamplePictures
from wgan_jax.evaluators.toy import ToyEvaluator, mode_coverage, w1_report
from wgan_jax.method import Method

__all__ = ["BUILDERS", "ClassifierEvaluator", "Evaluator", "InceptionEvaluator", "Networks",
           "SamplePictures", "ToyEvaluator", "build", "fixed_latents", "mode_coverage",
           "w1_report"]


def _samples(config, method: Method, networks: Networks) -> Evaluator:
    return SamplePictures(networks, method.dataset, method.model.arch,
                          every_steps=config.sample_every_steps, seed=config.seed,
                          num_images=config.eval.num_sample_images)


def _toy(config, method: Method, networks: Networks) -> Evaluator:
    return ToyEvaluator(networks, method.dataset, every_steps=config.eval_every_steps,
                        seed=config.seed, num_samples=config.eval.num_samples,
                        w1_samples=config.eval.w1_samples)


def _inception(config, method: Method, networks: Networks) -> Evaluator:
    e = config.eval
    return InceptionEvaluator(
        networks, method.dataset, method.model.arch, every_steps=e.inception_every_steps,
        seed=config.seed, weights=e.inception_weights, num_samples=e.inception_num_samples,
        resize=e.inception_resize, reference_split=e.reference_split,
        reference_num_samples=e.reference_num_samples, kid_subset_size=e.kid_subset_size,
        kid_num_subsets=e.kid_num_subsets, pr_k=e.pr_k, is_num_splits=e.is_num_splits,
        data_dir=config.data_dir,
        stats_dir=e.stats_dir)


def _classifier(config, method: Method, networks: Networks) -> Evaluator:
    e = config.eval
    return ClassifierEvaluator(
        networks, method.dataset, every_steps=e.classifier_every_steps, seed=config.seed,
        num_samples=e.classifier_num_samples, reference_split=e.reference_split,
        reference_num_samples=e.reference_num_samples, is_num_splits=e.is_num_splits,
        data_dir=config.data_dir, stats_dir=e.stats_dir)


# name -> builder(config, method, networks). Which data each one needs is checked by
# config.validate.
BUILDERS: dict[str, Callable[[ml_collections.ConfigDict, Method, Networks], Evaluator]] = {
    "samples": _samples,
    "toy": _toy,
    "inception": _inception,
    "classifier": _classifier,
}


def build(config: ml_collections.ConfigDict, method: Method) -> list[Evaluator]:
    """The evaluators `config.evals` names, sharing one set of jitted networks."""
    networks = Networks(method.models())
    return [BUILDERS[name](config, method, networks) for name in config.evals]
