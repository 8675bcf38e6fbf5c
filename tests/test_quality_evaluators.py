"""The image-quality evaluators in the loop: wiring, cached reference statistics, skipping
without weights, config errors, and the standalone `wgan_jax.score` command."""
import logging
import os

import numpy as np
import pytest

from configs import wgan_gp
from wgan_jax import evaluators
from wgan_jax.config import ConfigError
from wgan_jax.method import Method
from wgan_jax.quality import metrics, reference

tfds = pytest.importorskip("tensorflow_datasets")

N = 8  # samples per side: tiny, a 299x299 Inception forward is slow on 2 cores


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """pytorch-fid's layout with random weights, converted as a user would convert the real."""
    from wgan_jax.quality import convert_inception
    d = tmp_path_factory.mktemp("weights")
    np.savez(d / "random.npz", **convert_inception.random_fid_state_dict(0))
    convert_inception.convert(d / "random.npz", d / "inception.npz")
    return str(d / "inception.npz")


@pytest.fixture(scope="module")
def stats_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("stats")


@pytest.fixture(scope="module")
def built(random_weights, stats_dir):
    """One Inception evaluator on mock mnist (its reference statistics cached in stats_dir)."""
    c = _config(None, weights=random_weights)
    c.eval.stats_dir = str(stats_dir)
    method = Method.from_config(c)
    with tfds.testing.mock_data(num_examples=40):
        (ev,) = evaluators.build(c, method)
    return c, method, ev


def _config(tmp_path, **eval_fields):
    c = wgan_gp.get_config("mnist")
    c.batch_size = 4
    c.evals = ("inception",)
    c.eval.inception.num_samples = c.eval.reference_num_samples = N
    c.eval.inception.kid_subset_size, c.eval.inception.kid_num_subsets = 6, 3
    c.eval.inception.is_num_splits = 2
    if tmp_path is not None:
        c.eval.stats_dir = str(tmp_path / "stats")
    for k, v in eval_fields.items():  # fields of the inception evaluator's block
        c.eval.inception[k] = v
    return c


def test_inception_evaluator_matches_the_formulas_on_its_features(built, stats_dir, monkeypatch):
    c, method, ev = built
    state = method.init_state()
    fake = ev.networks.generate(state, ev.z)
    assert fake.shape == (N, 28, 28, 1)
    pool, logits = ev.features(fake)
    # FID's formula has its own tests (test_quality_metrics.py); this checks what the evaluator
    # feeds it and what it reports.
    fid_calls = []

    def frechet_distance(*args):
        fid_calls.append((args, real_fid(*args)))
        return fid_calls[-1][1]

    real_fid = metrics.frechet_distance
    monkeypatch.setattr(metrics, "frechet_distance", frechet_distance)
    got = ev.run(state)
    assert set(got) == {"fid", "kid", "kid_std", "inception_score", "inception_score_std",
                        "precision", "recall"}
    mu, sigma = metrics.feature_statistics(pool)
    ((args, fid),) = fid_calls
    for a, want in zip(args, (ev.real["mu"], ev.real["sigma"], mu, sigma), strict=True):
        np.testing.assert_allclose(a, want, rtol=1e-6, atol=1e-9)
    assert got["fid"] == fid
    assert got["inception_score"] == pytest.approx(metrics.inception_score(logits, 2)[0],
                                                   rel=1e-6)
    # IS from pool3 @ W without the fc bias, as the improved-GAN code
    kernel = np.asarray(ev.features.params["params"]["fc"]["kernel"], np.float64)
    np.testing.assert_allclose(logits, pool.astype(np.float64) @ kernel, rtol=1e-5, atol=1e-5)
    assert (got["precision"], got["recall"]) == pytest.approx(
        metrics.precision_recall(ev.real["features"], pool))
    # The real side is cached once, keyed by dataset/split/preprocessing/network/size.
    files = os.listdir(stats_dir)
    assert len(files) == 1 and "mnist" in files[0] and "tf1" in files[0]
    with tfds.testing.mock_data(num_examples=40):
        again = evaluators.build(c, method)[0]  # reads the cache instead of the data
    np.testing.assert_array_equal(again.real["mu"], ev.real["mu"])


def test_inception_metrics_are_skipped_with_one_line_without_weights(tmp_path, caplog):
    c = _config(tmp_path)
    with caplog.at_level(logging.WARNING):
        (ev,) = evaluators.build(c, Method.from_config(c))
    assert ev.run(None) == {}
    lines = [r.getMessage() for r in caplog.records if "inception" in r.getMessage()]
    assert len(lines) == 1 and "config.eval.inception.weights" in lines[0]


@pytest.mark.parametrize("fields,match", [
    ({"weights": "/no/such/file.npz"}, "eval.inception.weights"),
    ({"kid_subset_size": 50}, "eval.inception.kid_subset_size"),
    ({"resize": "bicubic"}, "eval.inception.resize"),
    ({"pr_k": 12}, "eval.inception.pr_k"),
    ({"is_num_splits": 9}, "eval.inception.is_num_splits"),
])
def test_quality_settings_errors(tmp_path, fields, match):
    with pytest.raises(ConfigError, match=match):
        Method.from_config(_config(tmp_path, **fields))


def test_classifier_evaluator_needs_committed_weights_for_the_dataset(tmp_path):
    c = _config(tmp_path)
    c.evals = ("classifier",)  # mnist: no committed classifier
    with pytest.raises(ConfigError, match="no committed classifier"):
        Method.from_config(c)
    c = wgan_gp.get_config()
    c.evals = ("inception",)
    with pytest.raises(ConfigError, match="needs an image dataset"):
        Method.from_config(c)


def test_too_small_reference_split_is_a_clear_error(tmp_path, random_weights):
    c = _config(tmp_path, weights=random_weights)
    with tfds.testing.mock_data(num_examples=5):
        with pytest.raises(ValueError, match="reference_num_samples"):
            evaluators.build(c, Method.from_config(c))


def test_missing_real_data_is_the_dataset_error(tmp_path, random_weights):
    from wgan_jax.data.images import DatasetNotFoundError
    c = _config(tmp_path, weights=random_weights)
    c.data_dir = str(tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match="not prepared"):
        evaluators.build(c, Method.from_config(c))
    assert not os.path.exists(tmp_path / "stats")  # nothing cached from a failed computation


def test_reference_cache_keys_differ_by_preprocessing():
    a = reference.cache_key("mnist", "train", "tf1", "inception-2015-12-05", 10)
    b = reference.cache_key("mnist", "train", "pytorch", "inception-2015-12-05", 10)
    assert a != b


def test_score_command_on_a_folder_of_images(tmp_path, built, random_weights, stats_dir,
                                             capsys):
    from PIL import Image

    from wgan_jax import score
    rng = np.random.default_rng(0)
    for i in range(N):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
            tmp_path / f"{i:03d}.png")
    with tfds.testing.mock_data(num_examples=40):
        rc = score.main(["--images", str(tmp_path), "--dataset", "mnist", "--evals",
                         "inception", "--inception_weights", random_weights,
                         "--num_samples", str(N), "--reference_num_samples", str(N),
                         "--stats_dir", str(stats_dir)])
    assert rc == 0
    import json
    out = json.loads(capsys.readouterr().out)
    assert np.isfinite(out["fid"]) and 0 <= out["precision"] <= 1
    assert score.main(["--images", str(tmp_path / "none"), "--dataset", "mnist",
                       "--evals", "inception"]) == 2  # one clear error, exit status 2

