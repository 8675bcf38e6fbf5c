"""Evaluators of conditional runs: one sample row per class, and the classifier's
conditional accuracy (checked on the real test split, whose accuracy the classifier's weights
record)."""

import os

import jax
import numpy as np
import pytest

from wgan_jax import registry
from wgan_jax.evaluators import quality
from wgan_jax.evaluators.base import Networks, class_labels
from wgan_jax.evaluators.samples import SamplePictures
from wgan_jax.models import Models
from wgan_jax.models.mlp import MLPCritic, MLPGenerator
from wgan_jax.state import create_train_state


def _conditional_networks(num_classes=10):
    gen = MLPGenerator(hidden=8, depth=1, out_shape=(28, 28, 1), latent_dim=4,
                       output="sigmoid", conditioning="projection", num_classes=num_classes)
    critic = MLPCritic(hidden=8, depth=1, conditioning="projection", num_classes=num_classes)
    models = Models(gen, critic, 4, (28, 28, 1), "none", "projection", num_classes)
    import optax
    state = create_train_state(models, optax.sgd(0.1), optax.sgd(0.1), jax.random.PRNGKey(0))
    # The label embedding decides the class: make it large, so rows visibly differ.
    emb = state.g_ema["label_embedding"]["embedding"]
    state = state.replace(g_ema={**state.g_ema, "label_embedding": {"embedding": 5.0 * emb}})
    return Networks(models), state


def test_sample_grid_has_one_row_per_class(tmp_path):
    networks, state = _conditional_networks()
    ev = SamplePictures(networks, "fashion_mnist", "mnist", every_steps=1, seed=3,
                        num_images=64)
    grid = ev.run(state)["samples"]
    per_class = 64 // 10
    assert grid.shape == (10 * 28, per_class * 28, 3)
    z = np.asarray(ev.z[:per_class])
    for k in range(10):
        want = networks.generate(state, z, np.full(per_class, k, np.int32))
        want = np.round(np.clip(want, 0, 1) * 255).astype(np.uint8)[..., 0]
        for j in range(per_class):
            tile = grid[k * 28:(k + 1) * 28, j * 28:(j + 1) * 28, 0]
            np.testing.assert_array_equal(tile, want[j])
    # rows of different classes differ (the labels reach the generator)
    assert not np.array_equal(grid[:28], grid[28:56])
    # the PNG written to the run directory holds exactly these pixels
    from PIL import Image

    from wgan_jax import visualize
    path = os.path.join(str(tmp_path), "samples", "step_1.png")
    visualize.save_png(grid, path)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), grid)


def test_class_labels_cover_every_class_equally():
    y = class_labels(10_000, 10)
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 1000))
    assert class_labels(5, 0) is None


DEBIAN = registry.DEBIAN_FASHION_MNIST


@pytest.mark.skipif(not os.path.isdir(DEBIAN), reason="Debian's dataset-fashion-mnist absent")
def test_conditional_accuracy_of_real_test_images_is_the_classifiers_accuracy(monkeypatch,
                                                                           tmp_path):
    """The real test split 'generated for' its true labels scores the test accuracy recorded
    with the committed weights (90.2%); the padded 32x32 set scores the same after the crop."""
    from wgan_jax.quality import classifier
    images, labels = classifier.load_split(DEBIAN, "test")
    expected = classifier.classifier_metadata("fashion_mnist")["test_accuracy"]
    networks, _ = _conditional_networks()
    results = {}
    for dataset in ("fashion_mnist", "fashion_mnist32"):
        spec = registry.dataset(dataset)
        x = images
        if spec.pad:
            x = np.pad(2.0 * images - 1.0, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1)
        assert x.shape[1:] == spec.shape
        monkeypatch.setattr(quality, "real_images", lambda *a, x=x: x[2000:4000])
        ev = quality.ClassifierEvaluator(
            networks, dataset, every_steps=1, seed=0, num_samples=10, reference_split="test",
            reference_num_samples=2000, is_num_splits=2, data_dir=None,
            stats_dir=str(tmp_path))
        results[dataset] = ev.score(x[:2000], labels[:2000])
        assert "conditional_accuracy" not in ev.score(x[:100])
    # The whole split once, through the crop and rescaling of the padded set.
    accuracy = ev.score(x, labels)["conditional_accuracy"]
    assert accuracy == pytest.approx(expected, abs=2e-4)
    for key in ("frechet_classifier_distance", "classifier_score", "conditional_accuracy"):
        assert results["fashion_mnist32"][key] == pytest.approx(results["fashion_mnist"][key],
                                                                rel=1e-4)


def test_heldout_and_w1_critic_on_a_conditional_run():
    """The held-out evaluators of a conditional run: reals are scored with their own labels
    (read back from TFDS here), fakes with balanced labels; the fresh critic's generator draws
    labelled samples."""
    tfds = pytest.importorskip("tensorflow_datasets")
    from wgan_jax import evaluators
    from wgan_jax.method import Method, config_with
    from wgan_jax.models import apply_critic
    from wgan_jax.models.apply import critic_values

    c = config_with({"dataset": "mnist", "model.arch": "mlp", "conditioning": "projection",
                     "batch_size": 4,
                     "evals": ("heldout", "w1_critic"), "eval.heldout.num_samples": 12,
                     "eval.w1_critic.steps": 3, "eval.w1_critic.batch_size": 4,
                     "eval.w1_critic.num_samples": 8, "eval.w1_critic.train_samples": 16})
    method = Method.from_config(c)
    with tfds.testing.mock_data(num_examples=20):
        heldout_ev, w1_ev = evaluators.build(c, method)
        test = next(iter(tfds.as_numpy(tfds.load("mnist", split="test", batch_size=12,
                                                 shuffle_files=False))))
    np.testing.assert_array_equal(heldout_ev.test_labels, test["label"])
    state = method.init_state()
    got = heldout_ev.run(state)

    models = method.model.build()

    def mean_d(x, y):
        out, _ = apply_critic(models, state.d_params, state.d_vars, x, False, y)
        return np.asarray(critic_values(out), np.float64).mean()

    fake = heldout_ev.networks.generate(state, heldout_ev.z, heldout_ev.y)
    np.testing.assert_array_equal(np.bincount(heldout_ev.y, minlength=10)[:2], [2, 2])
    d_fake = mean_d(fake, heldout_ev.y)
    assert got["em_distance_heldout"] == pytest.approx(
        mean_d(heldout_ev.test_real, test["label"]) - d_fake, rel=1e-5, abs=1e-6)
    assert got["em_distance_trainset"] == pytest.approx(
        mean_d(heldout_ev.train_real, heldout_ev.train_labels) - d_fake, rel=1e-5, abs=1e-6)
    # Labels change a projection critic's values: the labelled estimate is not the unlabelled.
    assert mean_d(fake, heldout_ev.y) != mean_d(fake, (heldout_ev.y + 1) % 10)
    out = w1_ev.run(state)
    assert np.isfinite(out["w1_heldout"]) and out["w1_heldout_stderr"] > 0
