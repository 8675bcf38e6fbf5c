"""Reference statistics cache: computed once, keyed by every argument, written atomically, and
a damaged file reported (never deleted)."""
import os
import re

import numpy as np
import pytest

from wgan_jax.quality import reference
from wgan_jax.quality.metrics import feature_statistics
from wgan_jax.quality.reference import (
    ReferenceCacheError,
    cache_key,
    default_cache_dir,
    load_or_compute,
)

ARGS = ("mnist", "test", "tf1", "inception_v3_pool3", 10000)


class Counter:
    def __init__(self, features):
        self.features, self.calls = features, 0

    def __call__(self):
        self.calls += 1
        return self.features


@pytest.fixture
def features():
    return np.random.default_rng(0).normal(size=(20, 6))


def test_computes_once_then_reads_the_cache(tmp_path, features):
    compute, key = Counter(features), cache_key(*ARGS)
    first = load_or_compute(tmp_path, key, compute)
    second = load_or_compute(tmp_path, key, compute)
    assert compute.calls == 1
    assert first["features"].dtype == np.float32 and first["mu"].dtype == np.float64
    mu, sigma = feature_statistics(features.astype(np.float32))
    for stats in (first, second):
        np.testing.assert_array_equal(stats["mu"], mu)
        np.testing.assert_array_equal(stats["sigma"], sigma)
        np.testing.assert_array_equal(stats["features"], features.astype(np.float32))
    assert sorted(os.listdir(tmp_path)) == [key]  # no temporary files left behind


def test_creates_the_cache_dir(tmp_path, features):
    cache_dir = tmp_path / "a" / "b"
    load_or_compute(cache_dir, "k", Counter(features))
    assert os.listdir(cache_dir) == ["k.npz"]


def test_key_changes_with_each_argument_and_is_filesystem_safe():
    base = cache_key(*ARGS)
    changed = [("fashion_mnist", *ARGS[1:]), (ARGS[0], "train[:10000]", *ARGS[2:]),
               (*ARGS[:2], "pytorch", *ARGS[3:]), (*ARGS[:3], "classifier", ARGS[4]),
               (*ARGS[:4], 5000), (*ARGS[:4], None)]
    keys = {cache_key(*args) for args in changed} | {base}
    assert len(keys) == len(changed) + 1
    assert cache_key(*ARGS) == base
    for key in keys:
        assert re.fullmatch(r"[A-Za-z0-9._-]+\.npz", key), key
    assert base.startswith("mnist_test_tf1_inception_v3_pool3_n10000_")


def test_keys_that_sanitise_alike_still_differ():
    assert cache_key("d", "train[:10]", "tf1", "net", 5) != cache_key("d", "train(:10)", "tf1",
                                                                     "net", 5)


@pytest.mark.parametrize("bad", [{"num_samples": 0}, {"num_samples": 2.5}, {"dataset": ""},
                                 {"split": None}])
def test_key_rejects_bad_arguments(bad):
    args = dict(zip(("dataset", "split", "preprocessing", "network", "num_samples"), ARGS,
                    strict=True))
    with pytest.raises(ValueError, match="must be"):
        cache_key(**{**args, **bad})


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing_entry"])
def test_damaged_file_gives_one_clear_error_and_is_kept(tmp_path, features, damage):
    key = cache_key(*ARGS)
    path = tmp_path / key
    load_or_compute(tmp_path, key, Counter(features))
    if damage == "garbage":
        path.write_bytes(b"not an npz file")
    elif damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        np.savez(path, mu=np.zeros(3), sigma=np.eye(3))
    compute = Counter(features)
    with pytest.raises(ReferenceCacheError, match="delete it") as err:
        load_or_compute(tmp_path, key, compute)
    assert str(path) in str(err.value)
    assert path.exists() and compute.calls == 0


def test_failed_write_leaves_no_files(tmp_path, features, monkeypatch):
    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(reference.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        load_or_compute(tmp_path, "k.npz", Counter(features))
    assert os.listdir(tmp_path) == []


def test_bad_compute_result_is_not_cached(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        load_or_compute(tmp_path, "k", Counter(np.zeros((1, 4))))
    assert not os.listdir(tmp_path)


def test_key_must_be_a_plain_file_name(tmp_path, features):
    with pytest.raises(ValueError, match="plain file name"):
        load_or_compute(tmp_path, "../escape.npz", Counter(features))


def test_default_cache_dir_is_next_to_the_data(monkeypatch):
    assert default_cache_dir("/data/tfds") == "/data/tfds/wgan_jax_reference_stats"
    monkeypatch.setenv("TFDS_DATA_DIR", "/elsewhere")
    assert default_cache_dir() == "/elsewhere/wgan_jax_reference_stats"
    monkeypatch.delenv("TFDS_DATA_DIR")
    assert default_cache_dir() == os.path.expanduser("~/tensorflow_datasets/"
                                                     "wgan_jax_reference_stats")
