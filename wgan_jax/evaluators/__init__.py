"""Evaluators: named computations on the train state, each at its own cadence.

`build(config, method)` makes the ones `config.evals` names. Each evaluator has its own config
block `config.eval.<name>` (with `every_steps`); its module defines the block's defaults, their
validation and a builder in an `EvaluatorSpec`. To add one, write the module and register its
spec in `REGISTRY`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import ml_collections

from wgan_jax.evaluators import heldout, samples, toy, w1_critic
from wgan_jax.evaluators.base import Evaluator, Networks, fixed_latents
from wgan_jax.evaluators.quality import (
    CLASSIFIER_SPEC,
    INCEPTION_SPEC,
    ClassifierEvaluator,
    InceptionEvaluator,
)
from wgan_jax.evaluators.samples import SamplePictures
from wgan_jax.evaluators.spec import EvaluatorSpec
from wgan_jax.evaluators.toy import ToyEvaluator, mode_coverage, near_mode, w1_report

if TYPE_CHECKING:
    from wgan_jax.method import Method

__all__ = ["REGISTRY", "ClassifierEvaluator", "Evaluator", "EvaluatorSpec",
           "InceptionEvaluator", "Networks", "SamplePictures", "ToyEvaluator", "build",
           "fixed_latents", "mode_coverage", "near_mode", "w1_report"]

# name -> spec; the order is that of the config blocks.
REGISTRY: dict[str, EvaluatorSpec] = {
    "samples": samples.SPEC,
    "toy": toy.SPEC,
    "inception": INCEPTION_SPEC,
    "classifier": CLASSIFIER_SPEC,
    "w1_critic": w1_critic.SPEC,
    "heldout": heldout.SPEC,
}


def build(config: ml_collections.ConfigDict, method: Method) -> list[Evaluator]:
    """The evaluators `config.evals` names, sharing one set of jitted networks."""
    networks = Networks(method.models())
    return [REGISTRY[name].build(config, method, networks) for name in config.evals]
