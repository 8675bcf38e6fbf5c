import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax.data import toy

N = 100_000


@pytest.mark.parametrize("name", toy.TOY_DATASETS)
def test_shape_dtype(name):
    x = toy.sample(name, jax.random.key(0), 123)
    assert x.shape == (123, 2)
    assert x.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(x)))


@pytest.mark.parametrize("name", toy.TOY_DATASETS)
def test_batches_shape(name):
    b = toy.batches(name, jax.random.key(1), 5, 16)
    assert b.shape == (5, 16, 2)
    assert b.dtype == jnp.float32
    # Each critic iteration gets its own points.
    assert not np.allclose(b[0], b[1])


@pytest.mark.parametrize("name", toy.TOY_DATASETS)
def test_deterministic_and_jittable(name):
    key = jax.random.key(7)
    a = toy.sample(name, key, 64)
    b = toy.sample(name, key, 64)
    np.testing.assert_array_equal(a, b)
    jitted = jax.jit(toy.sample, static_argnums=(0, 2))
    np.testing.assert_allclose(jitted(name, key, 64), a, rtol=1e-6, atol=1e-6)
    c = toy.sample(name, jax.random.key(8), 64)
    assert not np.allclose(a, c)


def test_usable_inside_jit_with_closure():
    @jax.jit
    def step(key):
        return toy.batches("8gaussians", key, 2, 8).mean()

    assert step(jax.random.key(0)).shape == ()


@pytest.mark.parametrize(
    "name, k, std",
    [("8gaussians", 8, 0.02 / 1.414), ("25gaussians", 25, 0.05 / 2.828)],
)
def test_mixture_statistics(name, k, std):
    centers = toy.mode_centers(name)
    assert centers.shape == (k, 2)
    assert toy.mode_std(name) == pytest.approx(std)

    x = np.asarray(toy.sample(name, jax.random.key(42), N), np.float64)
    d2 = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    assign = d2.argmin(1)
    # Components are > 30 std apart, so nearest-centre assignment is exact in practice.
    assert d2.min(1).max() < (8 * std) ** 2

    counts = np.bincount(assign, minlength=k)
    p = 1.0 / k
    sd_count = math.sqrt(N * p * (1 - p))
    assert np.all(np.abs(counts - N * p) < 5 * sd_count), counts

    for j in range(k):
        pts = x[assign == j]
        m = len(pts)
        np.testing.assert_allclose(pts.mean(0), centers[j], atol=5 * std / math.sqrt(m))
        # Pooled over both coordinates: relative std error of the std is ~1/sqrt(4m).
        s = np.sqrt(((pts - centers[j]) ** 2).mean())
        assert abs(s / std - 1) < 5 / math.sqrt(4 * m)


def test_exact_centres():
    c8 = toy.mode_centers("8gaussians")
    r = 2 / 1.414
    assert np.allclose(np.linalg.norm(c8, axis=1), r)
    assert any(np.allclose(c, [r, 0]) for c in c8)
    c25 = toy.mode_centers("25gaussians")
    assert np.allclose(np.unique(c25[:, 0]), np.array([-4, -2, 0, 2, 4]) / 2.828)


def test_swissroll_noise_free_spiral():
    x = np.asarray(toy._swissroll(jax.random.key(3), 10_000, noise=0.0), np.float64) * 7.5
    t = np.linalg.norm(x, axis=1)
    assert t.min() >= 1.5 * np.pi - 1e-3 and t.max() <= 4.5 * np.pi + 1e-3
    # Angle equals radius modulo 2*pi: (x, z) = t (cos t, sin t).
    dphi = np.angle(np.exp(1j * (np.arctan2(x[:, 1], x[:, 0]) - t)))
    assert np.abs(dphi).max() < 1e-3
    # t is uniform on [1.5 pi, 4.5 pi].
    hist, _ = np.histogram(t, bins=10, range=(1.5 * np.pi, 4.5 * np.pi))
    assert np.all(np.abs(hist - 1000) < 5 * math.sqrt(1000 * 0.9))


def test_swissroll_moments():
    # t ~ U[a, b], a = 1.5 pi, b = 4.5 pi:
    #   E[t cos t] = [t sin t + cos t]_a^b / (b - a) = 6 pi / 3 pi = 2
    #   E[t sin t] = [-t cos t + sin t]_a^b / (b - a) = 2 / (3 pi)
    #   E[t^2] = (b^3 - a^3) / (3 (b - a)), and the noise adds 2 * 0.25^2.
    a, b = 1.5 * np.pi, 4.5 * np.pi
    x = np.asarray(toy.sample("swissroll", jax.random.key(5), N), np.float64) * 7.5
    r2 = (x**2).sum(1)
    se = x.std(0) / math.sqrt(N)
    np.testing.assert_allclose(x.mean(0), [2.0, 2.0 / (3 * np.pi)], atol=5 * se.max())
    expected_r2 = (b**3 - a**3) / (3 * (b - a)) + 2 * 0.25**2
    assert abs(r2.mean() - expected_r2) < 5 * r2.std() / math.sqrt(N)


def test_swissroll_has_no_modes():
    with pytest.raises(ValueError, match="no modes"):
        toy.mode_centers("swissroll")
    with pytest.raises(ValueError, match="no modes"):
        toy.mode_std("swissroll")


def test_bad_name():
    with pytest.raises(ValueError, match="8gaussians, 25gaussians, swissroll"):
        toy.sample("moons", jax.random.key(0), 4)
    with pytest.raises(ValueError, match="valid names"):
        toy.mode_centers("moons")
