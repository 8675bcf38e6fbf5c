"""The metric formulas against independent computations: closed forms, eigendecompositions,
direct loops, scipy.stats.entropy and scipy.spatial.distance.cdist."""
import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
from scipy.spatial.distance import cdist

from wgan_jax.quality.metrics import (
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)


def _random_covariance(rng, d, n):
    return np.cov(rng.normal(size=(n, d)) @ rng.normal(size=(d, d)), rowvar=False)


def _fid_by_sqrtm(mu1, s1, mu2, s2):
    # pytorch-fid's calculate_frechet_distance: scipy's general matrix square root.
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real


# ---- feature_statistics -------------------------------------------------------------------------

def test_feature_statistics_is_float64_mean_and_unbiased_covariance():
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    mu, sigma = feature_statistics(x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0))
    centred = x.astype(np.float64) - mu
    np.testing.assert_allclose(sigma, centred.T @ centred / 29)


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((1, 3)), np.full((4, 2), np.nan)])
def test_feature_statistics_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        feature_statistics(bad)


# ---- frechet_distance ---------------------------------------------------------------------------

def test_fid_diagonal_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_fid_commuting_covariances_closed_form():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    a, b = rng.uniform(0.1, 3, size=8), rng.uniform(0.1, 3, size=8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_fid_matches_pytorch_fids_sqrtm_and_is_symmetric():
    rng = np.random.default_rng(3)
    mu1, s1 = rng.normal(size=16), _random_covariance(rng, 16, 100)
    mu2, s2 = rng.normal(size=16), _random_covariance(rng, 16, 100)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(_fid_by_sqrtm(mu1, s1, mu2, s2), rel=1e-9)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(got, rel=1e-9)


def test_fid_zero_for_identical_statistics():
    mu, sigma = feature_statistics(np.random.default_rng(4).normal(size=(50, 10)))
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9


def test_fid_singular_covariances_fewer_samples_than_dims():
    rng = np.random.default_rng(5)
    mu1, s1 = feature_statistics(rng.normal(size=(5, 20)))
    mu2, s2 = feature_statistics(rng.normal(size=(5, 20)) + 0.3)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(got)
    assert got == pytest.approx(_fid_by_sqrtm(mu1, s1, mu2, s2), abs=1e-5)


def test_fid_of_float32_features_at_inception_width_matches_sqrtm():
    # Features as the Inception evaluator makes them: float32, 2048 wide; fewer samples than
    # features on one side (a singular covariance, where pytorch-fid may retry with an offset).
    rng = np.random.default_rng(6)
    mix = rng.normal(size=(256, 256)).astype(np.float32) / 16
    x = rng.normal(size=(600, 256)).astype(np.float32) @ mix
    y = rng.normal(size=(200, 256)).astype(np.float32) @ mix + 0.05
    (mu1, s1), (mu2, s2) = feature_statistics(x), feature_statistics(y)
    assert np.linalg.matrix_rank(s2) < 256
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_fid_by_sqrtm(mu1, s1, mu2, s2),
                                                               rel=1e-6)


@pytest.mark.parametrize("bad", [np.diag([1.0, -1.0]), np.array([[1.0, 0.5], [0.0, 1.0]])])
def test_fid_of_an_invalid_covariance_raises(bad):
    with pytest.raises(ValueError, match="not positive semi-definite|not symmetric"):
        frechet_distance(np.zeros(2), bad, np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), bad)


@pytest.mark.parametrize("shapes", [((3,), (3, 3), (4,), (3, 3)), ((3,), (3, 3), (3,), (4, 4)),
                                    ((3,), (2, 2), (3,), (3, 3))])
def test_fid_shape_mismatch_raises(shapes):
    m1, s1, m2, s2 = shapes
    with pytest.raises(ValueError, match="must"):
        frechet_distance(np.zeros(m1), np.eye(s1[0]), np.zeros(m2), np.eye(s2[0]))


# ---- kernel_inception_distance -----------------------------------------------------------------

def _mmd2_loop(x, y):
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (sum(float(ai) * float(bi) for ai, bi in zip(a, b, strict=True)) / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_whole_sets_match_direct_loop():
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(12, 4)), rng.normal(0.5, 1.2, size=(12, 4))
    mean, std = kernel_inception_distance(real, fake, num_subsets=3, subset_size=12)
    assert mean == pytest.approx(_mmd2_loop(real, fake), rel=1e-10)
    assert std < 1e-12  # every subset is the whole set, reordered


def test_kid_subsets_match_direct_loop_with_the_same_draws():
    rng = np.random.default_rng(8)
    real, fake = rng.normal(size=(15, 3)), rng.normal(0.3, 1.0, size=(13, 3))
    draws = np.random.RandomState(5)
    expected = []
    for _ in range(4):
        f = fake[draws.choice(13, 8, replace=False)]
        r = real[draws.choice(15, 8, replace=False)]
        expected.append(_mmd2_loop(r, f))
    mean, std = kernel_inception_distance(real, fake, num_subsets=4, subset_size=8, seed=5)
    assert mean == pytest.approx(np.mean(expected), rel=1e-10)
    assert std == pytest.approx(np.std(expected), rel=1e-8)


def test_kid_is_unbiased_for_equal_distributions():
    rng = np.random.default_rng(9)
    m, d, trials = 20, 6, 300
    unbiased, biased = [], []
    for t in range(trials):
        x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
        unbiased.append(kernel_inception_distance(x, y, num_subsets=1, subset_size=m, seed=t)[0])
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        biased.append((kxx.sum() + kyy.sum() - 2 * kxy.sum()) / m**2)
    unbiased, biased = np.array(unbiased), np.array(biased)
    standard_error = unbiased.std() / np.sqrt(trials)
    assert abs(unbiased.mean()) < 3 * standard_error
    # The test has power: the biased V-statistic sits far above 0 on the same data.
    assert biased.mean() > 10 * standard_error


def test_kid_positive_for_different_distributions():
    rng = np.random.default_rng(10)
    mean, std = kernel_inception_distance(rng.normal(size=(60, 5)), rng.normal(1.0, 1, (60, 5)),
                                          num_subsets=10, subset_size=30)
    assert mean > 3 * std > 0


def test_kid_too_few_samples_says_what_to_lower():
    rng = np.random.default_rng(11)
    message = r"subset_size=1000 .* 500 real and 1200 fake.*lower `subset_size`"
    with pytest.raises(ValueError, match=message):
        kernel_inception_distance(rng.normal(size=(500, 2)), rng.normal(size=(1200, 2)))


def test_kid_feature_size_mismatch_raises():
    with pytest.raises(ValueError, match="feature sizes"):
        kernel_inception_distance(np.zeros((10, 3)), np.zeros((10, 4)), subset_size=5)


# ---- inception_score ---------------------------------------------------------------------------

def test_is_uniform_predictions_give_one():
    mean, std = inception_score(np.zeros((40, 7)), num_splits=4)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("scale", [50.0, 1e4])  # 1e4: the other classes underflow to exactly 0
def test_is_one_hot_spread_over_classes_gives_class_count(scale):
    classes, splits = 5, 10
    labels = np.arange(100) % classes  # every contiguous split holds each class twice
    mean, std = inception_score(scale * np.eye(classes)[labels], num_splits=splits)
    assert mean == pytest.approx(classes, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_is_matches_scipy_entropy_with_uneven_splits():
    rng = np.random.default_rng(12)
    logits, splits = rng.normal(scale=3.0, size=(23, 7)), 5
    p = scipy.special.softmax(logits, axis=1)
    scores = []
    for i in range(splits):
        part = p[i * 23 // splits:(i + 1) * 23 // splits]
        p_y = part.mean(axis=0)
        scores.append(np.exp(np.mean([scipy.stats.entropy(row, p_y) for row in part])))
    mean, std = inception_score(logits, num_splits=splits)
    assert mean == pytest.approx(np.mean(scores), rel=1e-10)
    assert std == pytest.approx(np.std(scores), rel=1e-8)


def test_is_fewer_samples_than_splits_raises():
    with pytest.raises(ValueError, match="num_splits=10"):
        inception_score(np.zeros((9, 3)))


# ---- precision_recall ---------------------------------------------------------------------------

def _precision_recall_brute(real, fake, k):
    def inside(points, centres):
        radii = np.sort(cdist(centres, centres), axis=1)[:, k]  # column 0 is the point itself
        return np.mean(np.any(cdist(points, centres) <= radii[None, :], axis=1))

    return inside(fake, real), inside(real, fake)


@pytest.mark.parametrize("k", [1, 3])
def test_precision_recall_matches_brute_force(k):
    rng = np.random.default_rng(13)
    real, fake = rng.normal(size=(40, 5)), rng.normal(1.2, 0.8, size=(35, 5))
    got = precision_recall(real, fake, k=k)
    expected = _precision_recall_brute(real, fake, k)
    assert got == pytest.approx(expected, abs=0)
    assert 0 < got[0] < 1 and 0 < got[1] < 1  # a case where the balls matter


def test_precision_recall_identical_and_disjoint_sets():
    x = np.random.default_rng(14).normal(size=(30, 4))
    assert precision_recall(x, x.copy()) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)


def test_precision_recall_independent_of_batch_size():
    rng = np.random.default_rng(15)
    real, fake = rng.normal(size=(50, 6)), rng.normal(0.5, 1.0, size=(45, 6))
    results = {precision_recall(real, fake, batch_size=b) for b in (1, 7, 50, 1000)}
    assert len(results) == 1


def test_precision_recall_errors():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="more than k"):
        precision_recall(x, np.ones((10, 2)), k=3)
    with pytest.raises(ValueError, match="k must"):
        precision_recall(x, x, k=0)
    with pytest.raises(ValueError, match="feature sizes"):
        precision_recall(np.zeros((10, 2)), np.zeros((10, 3)))
