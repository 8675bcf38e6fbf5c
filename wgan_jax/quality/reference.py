"""Reference (real-data) feature statistics, computed once and cached as `.npz` files.

A cache file holds `mu` (D,) and `sigma` (D, D) in float64 for FID and the `features` (N, D) in
float32 for KID and precision/recall; the statistics are those of the stored float32 features,
so a later read gives the same numbers. Files live next to the data by default
(`default_cache_dir`) and are named by `cache_key` after everything that changes them.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable

import numpy as np
from absl import logging

from wgan_jax.quality.metrics import feature_statistics

CACHE_SUBDIR = "wgan_jax_reference_stats"
_KEYS = ("mu", "sigma", "features")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ReferenceCacheError(ValueError):
    """A reference statistics cache file that cannot be read or is not consistent."""


def default_cache_dir(data_dir: str | None = None) -> str:
    """`<data_dir>/wgan_jax_reference_stats`, with TFDS's default data dir when `data_dir` is
    None ($TFDS_DATA_DIR, else ~/tensorflow_datasets)."""
    base = data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
    return os.path.join(os.path.expanduser(base), CACHE_SUBDIR)


def cache_key(dataset: str, split: str, preprocessing: str, network: str,
              num_samples: int | None) -> str:
    """A filesystem-safe `.npz` file name naming every argument, with a short hash of their
    exact values (so that names that read alike after sanitising still differ).

    `num_samples` None means the whole split.
    """
    if num_samples is not None and (isinstance(num_samples, bool) or
                                    not isinstance(num_samples, int) or num_samples < 1):
        raise ValueError(f"num_samples must be a positive int or None (whole split), got "
                         f"{num_samples!r}")
    parts = (dataset, split, preprocessing, network)
    for name, value in zip(("dataset", "split", "preprocessing", "network"), parts, strict=True):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    count = "all" if num_samples is None else f"n{num_samples}"
    digest = hashlib.sha256(repr((*parts, num_samples)).encode()).hexdigest()[:10]
    readable = "_".join(_UNSAFE.sub("-", p).strip("-._") or "x" for p in parts)
    return f"{readable}_{count}_{digest}.npz"


def _path(cache_dir: str | os.PathLike, key: str) -> str:
    if not key or os.path.basename(key) != key or key in (".", ".."):
        raise ValueError(f"key must be a plain file name (see cache_key), got {key!r}")
    if not key.endswith(".npz"):
        key += ".npz"
    return os.path.join(os.fspath(cache_dir), key)


def _corrupt(path: str, why: str) -> ReferenceCacheError:
    return ReferenceCacheError(f"reference statistics cache {path} is corrupt or truncated "
                               f"({why}); delete it and it will be recomputed")


def _read(path: str) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            stats = {k: data[k] for k in _KEYS if k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise _corrupt(path, f"{type(e).__name__}: {e}") from e
    missing = [k for k in _KEYS if k not in stats]
    if missing:
        raise _corrupt(path, f"missing {missing}")
    mu, sigma, features = stats["mu"], stats["sigma"], stats["features"]
    d = mu.shape[0] if mu.ndim == 1 else -1
    if d < 1 or sigma.shape != (d, d) or features.ndim != 2 or features.shape[1] != d:
        raise _corrupt(path, f"inconsistent shapes mu {mu.shape}, sigma {sigma.shape}, "
                             f"features {features.shape}")
    return {"mu": mu.astype(np.float64), "sigma": sigma.astype(np.float64),
            "features": features.astype(np.float32)}


def _write_atomic(path: str, stats: dict) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    # Same directory, so os.replace is an atomic rename: readers see the old file or the new one.
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **stats)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_or_compute(cache_dir: str | os.PathLike, key: str,
                    compute: Callable[[], np.ndarray]) -> dict:
    """{"mu", "sigma", "features"} read from `cache_dir/key`, or computed from
    `compute()` -> features (N, D), cached there, and returned.

    A file that exists but cannot be read raises ReferenceCacheError naming it (it is never
    deleted here).
    """
    path = _path(cache_dir, key)
    if os.path.exists(path):
        logging.info("reading reference statistics from %s", path)
        return _read(path)
    features = np.asarray(compute())
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"compute() must return features (N, D) with N >= 2, got shape "
                         f"{features.shape}")
    features = features.astype(np.float32)
    mu, sigma = feature_statistics(features)
    stats = {"mu": mu, "sigma": sigma, "features": features}
    _write_atomic(path, stats)
    logging.info("cached reference statistics of %d samples in %s", features.shape[0], path)
    return stats
