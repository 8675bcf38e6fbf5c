"""Tests of the offline metrics' classifier (wgan_jax.quality.classifier, train_classifier) and of
the metrics on its features (wgan_jax.quality.offline).

The committed Fashion-MNIST weights are checked on the real t10k split read from Debian's
dataset-fashion-mnist folder; those tests skip when the folder is absent. The Fréchet distance is
checked for its sanity order: two disjoint real halves are close, and far closer than real images
against uniform noise, a blurred copy or a shifted copy.
"""
from __future__ import annotations

import gzip
import json
import os
import struct

import numpy as np
import pytest
from scipy import ndimage, special

from wgan_jax.quality import classifier, offline, train_classifier
from wgan_jax.quality.classifier import ClassifierWeightsError
from wgan_jax.quality.metrics import feature_statistics, frechet_distance, inception_score

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
needs_data = pytest.mark.skipif(
    not os.path.isdir(FASHION_MNIST),
    reason=f"{FASHION_MNIST} is absent (Debian package dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def params():
    return classifier.load_classifier("fashion_mnist")


@pytest.fixture(scope="module")
def test_split():
    return classifier.load_split(FASHION_MNIST, "test")


@pytest.fixture(scope="module")
def real_outputs(params, test_split):
    """Features and logits of the whole t10k split (10000 images)."""
    return classifier.extract(params, test_split[0])


def test_committed_weights_load_with_expected_shapes(params):
    flat = classifier.flatten_variables(params)
    assert {k: tuple(v.shape) for k, v in flat.items()} == classifier.variable_shapes()
    assert all(v.dtype == np.float32 for v in flat.values())
    assert "fashion_mnist" in classifier.available_datasets()
    path = classifier.weights_path("fashion_mnist")
    assert path.stat().st_size < 1_000_000


def test_metadata_records_accuracy_and_command():
    meta = classifier.classifier_metadata("fashion_mnist")
    assert meta["dataset"] == "fashion_mnist"
    assert meta["test_accuracy"] >= 0.9
    assert meta["command"].startswith("python -m wgan_jax.quality.train_classifier")
    assert "--dataset fashion_mnist" in meta["command"]


@needs_data
def test_classifies_real_test_images_at_recorded_accuracy(params, test_split):
    images, labels = test_split
    _, logits = classifier.extract(params, images[:2000])
    acc = float(np.mean(np.argmax(logits, axis=1) == labels[:2000]))
    recorded = classifier.classifier_metadata("fashion_mnist")["test_accuracy"]
    assert acc >= 0.88
    assert abs(acc - recorded) < 0.03


@needs_data
def test_features_do_not_depend_on_batching(params, test_split):
    images = test_split[0][:7]
    f_small, lg_small = classifier.extract(params, images, batch_size=3)
    f_one, lg_one = classifier.extract(params, images[..., 0], batch_size=500)  # (N, 28, 28)
    assert f_small.shape == (7, classifier.NUM_FEATURES)
    assert lg_small.shape == (7, classifier.NUM_CLASSES)
    np.testing.assert_allclose(f_small, f_one, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lg_small, lg_one, rtol=1e-5, atol=1e-5)


@needs_data
def test_frechet_distance_sanity_order(params, test_split, real_outputs):
    images = test_split[0]
    features = real_outputs[0]
    half_a, half_b = features[:5000], features[5000:]
    rng = np.random.default_rng(0)
    other = images[5000:]
    variants = {
        "noise": rng.uniform(size=other.shape).astype(np.float32),
        "blur": ndimage.gaussian_filter(other, sigma=(0, 1.0, 1.0, 0)),
        "shift": np.pad(other, ((0, 0), (0, 0), (4, 0), (0, 0)))[:, :, :28],
    }
    real = offline.frechet_classifier_distance(half_a, half_b)
    fake = {k: offline.frechet_classifier_distance(half_a, classifier.extract(params, v)[0])
            for k, v in variants.items()}
    assert 0 <= real < 1.0
    for name, d in fake.items():
        assert d > 10 * real, (name, d, real)
    assert fake["noise"] > fake["blur"] and fake["noise"] > fake["shift"]


@needs_data
def test_classifier_score_on_real_data(real_outputs):
    logits = real_outputs[1].astype(np.float64)
    mean, std = offline.classifier_score(logits)
    assert 5.0 < mean <= 10.0
    assert 0 <= std < 0.5
    assert (mean, std) == inception_score(logits, num_splits=10)
    # The formula by hand: per split of 1000, exp(mean KL(p(y|x) || p(y))).
    p = special.softmax(logits, axis=1)
    scores = []
    for part in np.split(p, 10):
        kl = (part * (np.log(part) - np.log(part.mean(axis=0)))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    np.testing.assert_allclose([mean, std], [np.mean(scores), np.std(scores)], rtol=1e-9)


@needs_data
def test_score_images_matches_the_parts(params, test_split, real_outputs):
    real_stats = feature_statistics(real_outputs[0][:5000])
    fake = test_split[0][5000:6000]
    scores = offline.score_images(params, fake, real_stats)
    assert set(scores) == {offline.FCD_KEY, offline.SCORE_KEY, offline.SCORE_STD_KEY}
    features, logits = real_outputs[0][5000:6000], real_outputs[1][5000:6000]
    assert scores[offline.FCD_KEY] == pytest.approx(
        frechet_distance(*real_stats, *feature_statistics(features)), rel=1e-4)
    assert scores[offline.SCORE_KEY] == pytest.approx(
        offline.classifier_score(logits)[0], rel=1e-4)
    with pytest.raises(ValueError, match="real_stats"):
        offline.score_images(params, fake, (real_stats[0][:10], real_stats[1]))


@needs_data
def test_reference_statistics_are_those_of_the_test_split(params, real_outputs):
    mu, sigma = offline.reference_statistics(params, FASHION_MNIST)
    ref_mu, ref_sigma = feature_statistics(real_outputs[0])
    np.testing.assert_allclose(mu, ref_mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sigma, ref_sigma, rtol=1e-4, atol=1e-6)


def test_missing_weights_name_the_available_datasets():
    with pytest.raises(ClassifierWeightsError, match="cifar10.*fashion_mnist"):
        classifier.load_classifier("cifar10")
    with pytest.raises(ValueError, match="no such weights file"):
        classifier.load_weights("/nonexistent/classifier.npz")


def test_corrupt_or_wrong_weights_are_rejected(tmp_path, params):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip archive")
    with pytest.raises(ClassifierWeightsError, match="corrupt"):
        classifier.load_weights(garbage)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(classifier.weights_path("fashion_mnist").read_bytes()[:5000])
    with pytest.raises(ClassifierWeightsError, match="corrupt"):
        classifier.load_weights(truncated)

    flat = classifier.flatten_variables(params)
    flat["params/features/kernel"] = np.zeros((576, 64), np.float32)
    wrong = tmp_path / "wrong.npz"
    classifier.save_weights(wrong, classifier.unflatten_variables(flat), {})
    with pytest.raises(ClassifierWeightsError, match=r"params/features/kernel.*\(576, 64\)"):
        classifier.load_weights(wrong)
    del flat["params/features/kernel"]
    classifier.save_weights(wrong, classifier.unflatten_variables(flat), {})
    with pytest.raises(ClassifierWeightsError, match="missing"):
        classifier.load_weights(wrong)


def test_extract_rejects_bad_images(params):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        classifier.extract(params, np.full((2, 28, 28, 1), 255, np.uint8))
    with pytest.raises(ValueError, match="shape"):
        classifier.extract(params, np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        classifier.extract(params, np.zeros((2, 28, 28, 1), np.float32), batch_size=0)
    with pytest.raises(ValueError, match=r"\(N, 10\)"):
        offline.classifier_score(np.zeros((20, 128)))


def _write_idx(folder, split_files, images, labels):
    img_name, lbl_name = split_files
    with gzip.open(folder / f"{img_name}.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), 28, 28) + images.tobytes())
    with gzip.open(folder / f"{lbl_name}.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)) + labels.tobytes())


def test_training_script_writes_loadable_weights(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for files, n in ((("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), 64),
                     (("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), 20)):
        _write_idx(tmp_path, files, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                   rng.integers(0, 10, n, dtype=np.uint8))
    out = tmp_path / "w.npz"
    argv = ["--dataset", "mnist", "--source", str(tmp_path), "--out", str(out), "--epochs", "1",
            "--batch_size", "32"]
    train_classifier.main(argv)
    printed = capsys.readouterr().out
    assert "epoch 1/1: train loss" in printed and "test accuracy" in printed
    loaded, meta = classifier.load_weights(out)
    assert classifier.flatten_variables(loaded).keys() == classifier.variable_shapes().keys()
    assert meta["dataset"] == "mnist" and meta["test_size"] == 20 and meta["seed"] == 0
    assert 0.0 <= meta["test_accuracy"] <= 1.0
    assert meta["command"].endswith("--batch_size 32")
    json.dumps(meta)
