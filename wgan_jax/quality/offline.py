"""Offline image-quality metrics for 28x28 grayscale images, on the project's own classifier.

These are FID and Inception Score computed with `wgan_jax.quality.classifier` in place of
Inception-v3, so they run without downloaded weights; their values are on a different scale from
FID/IS and are comparable only with numbers from the same committed classifier weights:

* Fréchet classifier distance: pytorch-fid's Fréchet distance between Gaussians fitted to the
  classifier's 128 features of real and generated images (lower is better, 0 for equal
  statistics).
* Classifier score: the Inception-Score formula, exp(E_x KL(p(y|x) || p(y))), on the classifier's
  10-way softmax (between 1 and 10; higher means confident and class-diverse samples).

Typical use::

    params = load_classifier("fashion_mnist")
    real_stats = reference_statistics(params, "/usr/share/datasets/fashion-mnist")
    score_images(params, samples_in_0_1, real_stats)
"""
from __future__ import annotations

import numpy as np

from wgan_jax.quality import classifier
from wgan_jax.quality.metrics import feature_statistics, frechet_distance, inception_score

FCD_KEY = "frechet_classifier_distance"
SCORE_KEY = "classifier_score"
SCORE_STD_KEY = "classifier_score_std"


def frechet_classifier_distance(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of classifier features (N, 128)."""
    mu1, sigma1 = feature_statistics(real_features)
    mu2, sigma2 = feature_statistics(fake_features)
    return float(frechet_distance(mu1, sigma1, mu2, sigma2))


def classifier_score(logits: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """The Inception-Score formula on the classifier's logits (N, 10): (mean, std) over splits."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != classifier.NUM_CLASSES:
        raise ValueError(f"logits must be (N, {classifier.NUM_CLASSES}), got shape "
                         f"{logits.shape}")
    mean, std = inception_score(logits, num_splits=num_splits)
    return float(mean), float(std)


def reference_statistics(params: dict, source_dir: str, split: str = "test"
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of the classifier features of a real split (by default t10k, 10000 images)."""
    images, _ = classifier.load_split(source_dir, split)
    features, _ = classifier.extract(params, images)
    return feature_statistics(features)


def score_images(params: dict, images: np.ndarray, real_stats: tuple[np.ndarray, np.ndarray],
                 num_splits: int = 10) -> dict[str, float]:
    """Both metrics for images (N, 28, 28, 1) in [0, 1] against real statistics (mu, sigma).

    Returns {"frechet_classifier_distance", "classifier_score", "classifier_score_std"}.
    """
    mu_real, sigma_real = (np.asarray(a, np.float64) for a in real_stats)
    d = classifier.NUM_FEATURES
    if mu_real.shape != (d,) or sigma_real.shape != (d, d):
        raise ValueError(f"real_stats must be (mu ({d},), sigma ({d}, {d})), got shapes "
                         f"{mu_real.shape} and {sigma_real.shape}")
    if len(images) < 2:
        raise ValueError(f"need at least 2 images for a covariance, got {len(images)}")
    features, logits = classifier.extract(params, images)
    mu, sigma = feature_statistics(features)
    score, score_std = classifier_score(logits, num_splits)
    return {FCD_KEY: float(frechet_distance(mu_real, sigma_real, mu, sigma)),
            SCORE_KEY: score, SCORE_STD_KEY: score_std}
