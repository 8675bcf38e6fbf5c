"""Image-quality evaluators: Inception metrics (FID, KID, IS, precision/recall) and the offline
Fréchet classifier distance, on samples of the EMA generator against cached real statistics.

The real side (features of the first `reference_num_samples` images of a split, their mean and
covariance) is computed once per dataset, split, preprocessing and network and cached next to
the data (`quality.reference`), so an evaluation costs only the generated samples.
"""
from __future__ import annotations

import os

import jax
import ml_collections
import numpy as np
from absl import logging

from wgan_jax import registry
from wgan_jax.evaluators.base import Networks, class_labels, fixed_latents
from wgan_jax.evaluators.spec import EvaluatorSpec, check_positive_ints
from wgan_jax.quality import metrics, reference
from wgan_jax.state import TrainState

INCEPTION_BATCH = 50  # 299x299x3 float32 images per Inception call


class InceptionFeatures:
    """pool3 features and 1008-way logits of images in a value range, preprocessed as the named
    mode (`quality.preprocess.PREPROCESSING_MODES`) one batch at a time."""

    def __init__(self, params, value_range, mode: str):
        from wgan_jax.quality import preprocess
        self.params = params
        self.mode = mode
        lo, hi = value_range
        self._prep = jax.jit(lambda x: preprocess.inception_input(x, (lo, hi), mode))

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pool3 (N, 2048), logits (N, 1008) without the fc bias).

        The improved-GAN Inception Score code (and torch-fidelity's `logits_unbiased`) takes
        the softmax of pool3 @ W without the bias; published scores are comparable with that.
        """
        from wgan_jax.quality import inception
        # Fewer images than a batch: one program of their size, not a padded batch of 50.
        batch = max(1, min(INCEPTION_BATCH, len(images)))
        pools = []
        for i in range(0, len(images), batch):
            x = np.asarray(self._prep(images[i:i + batch]))
            pools.append(inception.extract(self.params, x, batch_size=batch)[0])
        pool = np.concatenate(pools)
        kernel = np.asarray(self.params["params"]["fc"]["kernel"], np.float64)
        return pool, (pool.astype(np.float64) @ kernel).astype(np.float32)


def real_images(dataset: str, split: str, data_dir: str | None, num: int) -> np.ndarray:
    """The first `num` images of a split; a clear error if the split is too small."""
    from wgan_jax.data import images
    out = images.load_images(dataset, split, data_dir=data_dir, num=num)
    if len(out) < num:
        raise ValueError(f"the {split!r} split of {dataset!r} has {len(out)} images, fewer "
                         f"than the {num} asked for reference statistics; lower "
                         "config.eval.reference_num_samples")
    return out


class InceptionEvaluator:
    """fid, kid (+ kid_std), inception_score (+ _std), precision, recall (k nearest neighbours)
    with pytorch-fid's Inception-v3 weights, converted once (`quality.convert_inception`).

    Without weights the metrics are skipped with one log line saying how to enable them.
    """

    name = "inception"

    def __init__(self, networks: Networks, dataset: str, arch: str, *, every_steps: int,
                 seed: int, weights: str | None, num_samples: int, resize: str,
                 reference_split: str, reference_num_samples: int, kid_subset_size: int,
                 kid_num_subsets: int, pr_k: int, is_num_splits: int, data_dir: str | None,
                 stats_dir: str | None):
        self.every_steps = every_steps
        self.features = None
        if not weights:
            logging.warning(
                "inception metrics (fid, kid, inception_score, precision, recall) skipped: no "
                "weights. Get pytorch-fid's pt_inception-2015-12-05-6726825d.pth, convert it "
                "with `python -m wgan_jax.quality.convert_inception --source FILE.pth --out "
                "inception_fid.npz`, and set config.eval.inception.weights=inception_fid.npz")
            return
        self.networks = networks
        from wgan_jax.quality import convert_inception
        self.features = InceptionFeatures(convert_inception.load_inception_params(weights),
                                          registry.arch(arch).output_range, resize)
        self.z = fixed_latents(seed + 7, num_samples, networks.models.latent_dim)
        self.y = class_labels(num_samples, networks.models.num_classes)
        self.kid = (kid_num_subsets, kid_subset_size)
        self.pr_k, self.is_num_splits = pr_k, is_num_splits
        key = reference.cache_key(dataset, reference_split, resize, "inception-2015-12-05",
                                  reference_num_samples)
        self.real = reference.load_or_compute(
            stats_dir or reference.default_cache_dir(data_dir), key,
            lambda: self.features(real_images(dataset, reference_split, data_dir,
                                              reference_num_samples))[0])

    def run(self, state: TrainState) -> dict[str, float]:
        if self.features is None:
            return {}
        return self.score(self.networks.generate(state, self.z, self.y))

    def score(self, fake: np.ndarray) -> dict[str, float]:
        """The metrics of images `fake` in the architecture's value range."""
        pool, logits = self.features(fake)
        mu, sigma = metrics.feature_statistics(pool)
        kid, kid_std = metrics.kernel_inception_distance(
            self.real["features"], pool, num_subsets=self.kid[0], subset_size=self.kid[1])
        score, score_std = metrics.inception_score(logits, self.is_num_splits)
        precision, recall = metrics.precision_recall(self.real["features"], pool, k=self.pr_k)
        return {"fid": metrics.frechet_distance(self.real["mu"], self.real["sigma"], mu, sigma),
                "kid": kid, "kid_std": kid_std, "inception_score": score,
                "inception_score_std": score_std, "precision": precision, "recall": recall}


def classifier_input(images: np.ndarray, dataset: str) -> np.ndarray:
    """Images of `dataset` as the 28x28 classifier reads them: the padding the registry adds
    (fashion_mnist32: 2 pixels a side) cropped off, values mapped from the dataset's range to
    [0, 1]."""
    spec = registry.dataset(dataset)
    p = spec.pad
    if p:
        images = images[:, p:images.shape[1] - p, p:images.shape[2] - p]
    lo, hi = spec.value_range
    return images if (lo, hi) == (0.0, 1.0) else (np.asarray(images) - lo) / (hi - lo)


class ClassifierEvaluator:
    """frechet_classifier_distance and classifier_score (+ _std) on the project's own classifier
    of the dataset (`quality.classifier`): offline, cheap, and comparable only with numbers from
    the same committed weights (not with published FIDs). For a conditional generator also
    `conditional_accuracy`: the fraction of its samples the classifier assigns to the class
    they were generated for (every class equally often)."""

    name = "classifier"

    def __init__(self, networks: Networks, dataset: str, *, every_steps: int, seed: int,
                 num_samples: int, reference_split: str, reference_num_samples: int,
                 is_num_splits: int, data_dir: str | None, stats_dir: str | None):
        from wgan_jax.quality import classifier, offline
        self.is_num_splits = is_num_splits
        self.networks, self.every_steps = networks, every_steps
        # A padded variant (fashion_mnist32) uses the classifier of the set it pads.
        self.dataset = dataset
        self.params = classifier.load_classifier(registry.dataset(dataset).tfds_name)
        self._offline, self._classifier = offline, classifier
        self.z = fixed_latents(seed + 7, num_samples, networks.models.latent_dim)
        self.y = class_labels(num_samples, networks.models.num_classes)
        key = reference.cache_key(dataset, reference_split, "none", f"classifier-{dataset}",
                                  reference_num_samples)
        self.real = reference.load_or_compute(
            stats_dir or reference.default_cache_dir(data_dir), key,
            lambda: classifier.extract(self.params, classifier_input(real_images(
                dataset, reference_split, data_dir, reference_num_samples), dataset))[0])

    def run(self, state: TrainState) -> dict[str, float]:
        return self.score(self.networks.generate(state, self.z, self.y), self.y)

    def score(self, fake: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
        """The metrics of images `fake` in the dataset's shape and range; with the `labels`
        they were generated for, also `conditional_accuracy`."""
        fake = classifier_input(fake, self.dataset)
        out = self._offline.score_images(self.params, fake,
                                         (self.real["mu"], self.real["sigma"]),
                                         num_splits=self.is_num_splits)
        if labels is not None:
            _, logits = self._classifier.extract(self.params, fake)
            out["conditional_accuracy"] = float(np.mean(np.argmax(logits, -1) == labels))
        return out


def _inception_defaults() -> ml_collections.ConfigDict:
    b = ml_collections.ConfigDict()
    b.every_steps = 5000
    b.weights = ml_collections.FieldReference(None, field_type=str)  # converted .npz
    b.num_samples = 10_000  # generated samples per evaluation
    b.resize = "tf1"  # preprocessing mode: 'tf1' (TTUR, IS code) or 'pytorch'
    b.kid_subset_size = 1000
    b.kid_num_subsets = 100
    b.pr_k = 3  # neighbours of improved precision/recall (Kynkaanniemi et al.)
    b.is_num_splits = 10  # Inception Score splits
    return b


def _inception_validate(block, config, fail, active) -> None:
    from wgan_jax.quality.preprocess import PREPROCESSING_MODES
    check_positive_ints(block, "eval.inception", fail, "every_steps", "num_samples",
                        "kid_subset_size", "kid_num_subsets", "pr_k", "is_num_splits")
    if block.resize not in PREPROCESSING_MODES:
        fail("eval.inception.resize", block.resize,
             f"choose one of {sorted(PREPROCESSING_MODES)}")
    if not active:
        return
    if block.weights and not os.path.isfile(os.path.expanduser(block.weights)):
        fail("eval.inception.weights", block.weights,
             "no such file; convert pytorch-fid's weights with `python -m "
             "wgan_jax.quality.convert_inception` and pass the output file")
    smallest = min(block.num_samples, config.eval.reference_num_samples)
    if block.kid_subset_size > smallest:
        fail("eval.inception.kid_subset_size", block.kid_subset_size,
             f"KID subsets are drawn from {smallest} samples (eval.inception.num_samples, "
             "eval.reference_num_samples); lower kid_subset_size or raise those")
    if block.num_samples < block.is_num_splits:
        fail("eval.inception.is_num_splits", block.is_num_splits,
             f"the Inception Score splits {block.num_samples} samples "
             "(eval.inception.num_samples); lower is_num_splits or raise that")
    if smallest <= block.pr_k:
        fail("eval.inception.pr_k", block.pr_k,
             f"needs more than k={block.pr_k} samples on each side")


def _inception_build(config, method, networks) -> InceptionEvaluator:
    e, b = config.eval, config.eval.inception
    return InceptionEvaluator(
        networks, method.dataset, method.model.arch, every_steps=b.every_steps,
        seed=config.seed, weights=b.weights, num_samples=b.num_samples, resize=b.resize,
        reference_split=e.reference_split, reference_num_samples=e.reference_num_samples,
        kid_subset_size=b.kid_subset_size, kid_num_subsets=b.kid_num_subsets, pr_k=b.pr_k,
        is_num_splits=b.is_num_splits, data_dir=config.data_dir, stats_dir=e.stats_dir)


def _classifier_defaults() -> ml_collections.ConfigDict:
    b = ml_collections.ConfigDict()
    b.every_steps = 1000
    b.num_samples = 10_000
    b.is_num_splits = 10  # classifier score splits
    return b


def _classifier_validate(block, config, fail, active) -> None:
    del config, active
    check_positive_ints(block, "eval.classifier", fail, "every_steps", "num_samples",
                        "is_num_splits")
    if block.num_samples < block.is_num_splits:
        fail("eval.classifier.is_num_splits", block.is_num_splits,
             f"the classifier score splits {block.num_samples} samples "
             "(eval.classifier.num_samples); lower is_num_splits or raise that")


def _classifier_build(config, method, networks) -> ClassifierEvaluator:
    e, b = config.eval, config.eval.classifier
    return ClassifierEvaluator(
        networks, method.dataset, every_steps=b.every_steps, seed=config.seed,
        num_samples=b.num_samples, reference_split=e.reference_split,
        reference_num_samples=e.reference_num_samples, is_num_splits=b.is_num_splits,
        data_dir=config.data_dir, stats_dir=e.stats_dir)


INCEPTION_SPEC = EvaluatorSpec(needs="image", defaults=_inception_defaults,
                               build=_inception_build, validate=_inception_validate)
CLASSIFIER_SPEC = EvaluatorSpec(needs="classifier", defaults=_classifier_defaults,
                                build=_classifier_build, validate=_classifier_validate)
