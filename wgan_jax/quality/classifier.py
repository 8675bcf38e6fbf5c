"""A small CNN classifier for 28x28 grayscale images, the feature network of the offline metrics.

Inception-v3 features need weights that cannot be fetched offline and were trained on natural
images; this network is trained by `wgan_jax.quality.train_classifier` on the dataset itself and
its weights ship inside the package (`weights/<dataset>_classifier.npz`).

Layout (no dropout, no batch norm, so a sample's features never depend on the rest of its batch):

    conv 3x3 16, ReLU, max-pool 2   28x28 -> 14x14x16
    conv 3x3 32, ReLU, max-pool 2   14x14 -> 7x7x32
    conv 3x3 64, ReLU, max-pool 2    7x7  -> 3x3x64
    dense 128                        the features (N, 128), taken before the ReLU
    ReLU, dense 10                   the logits (N, 10)

Input: float images in [0, 1] (the project's range for MNIST and Fashion-MNIST), NHWC with one
channel; (N, 28, 28) is accepted as well.

Weights file: an uncompressed `.npz` of float32 arrays keyed by flattened Flax paths
('params/conv1/kernel', ...) plus 'metadata', a JSON string (dataset, test accuracy, the command
that trained it, ...).
"""
from __future__ import annotations

import functools
import json
import os
import zipfile
import zlib
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from wgan_jax.data.local_tfds import read_split
from wgan_jax.quality.batching import batched

IMAGE_SHAPE = (28, 28, 1)
CONV_WIDTHS = (16, 32, 64)
NUM_FEATURES = 128
NUM_CLASSES = 10
WEIGHTS_DIR = Path(__file__).parent / "weights"
METADATA_KEY = "metadata"
_RANGE_SLACK = 1e-3  # float round-off of generators that end in a sigmoid


class ClassifierWeightsError(ValueError):
    """Classifier weights that are missing, unreadable or not of this network's shapes."""


class Classifier(nn.Module):
    """The CNN above; returns (features, logits)."""

    precision: str | None = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        for i, width in enumerate(CONV_WIDTHS):
            x = nn.Conv(width, (3, 3), padding="SAME", precision=self.precision,
                        name=f"conv{i + 1}")(x)
            x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        # The features are taken before the ReLU: after it, units that never fire on the data
        # (about a third) are constant zeros and make the covariance singular.
        features = nn.Dense(NUM_FEATURES, precision=self.precision, name="features")(x)
        logits = nn.Dense(NUM_CLASSES, precision=self.precision, name="logits")(nn.relu(features))
        return features, logits


def init_params(key: jax.Array) -> dict:
    """Fresh variables `{"params": ...}` for `Classifier`."""
    return Classifier().init(key, jnp.zeros((1,) + IMAGE_SHAPE, jnp.float32))


@functools.cache
def variable_shapes() -> dict[str, tuple[int, ...]]:
    """Flattened variable name ('params/conv1/kernel', ...) -> shape."""
    shapes = jax.eval_shape(init_params, jax.random.key(0))
    return {k: tuple(v.shape) for k, v in flatten_variables(shapes).items()}


def flatten_variables(tree) -> dict:
    """`{"params": {"conv1": {"kernel": ...}}}` -> `{"params/conv1/kernel": ...}`."""
    return traverse_util.flatten_dict(tree, sep="/")


def unflatten_variables(flat: dict) -> dict:
    """Inverse of `flatten_variables`."""
    return traverse_util.unflatten_dict(flat, sep="/")


def _as_nhwc(images) -> tuple[int, ...]:
    shape = tuple(np.shape(images))
    if len(shape) == 3:
        shape = shape + (1,)
    if len(shape) != 4 or shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images must be (N, 28, 28, 1) or (N, 28, 28), got shape "
                         f"{tuple(np.shape(images))}")
    return shape


@jax.jit
def features_and_logits(params: dict, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Features (N, 128) and logits (N, 10) of images (N, 28, 28, 1) in [0, 1]."""
    if images.ndim == 3:
        images = images[..., None]
    return Classifier().apply(params, images.astype(jnp.float32))


def extract(params: dict, images: np.ndarray, batch_size: int = 500
            ) -> tuple[np.ndarray, np.ndarray]:
    """`features_and_logits` over a numpy array in batches; the last batch is zero-padded so that
    one program is compiled. Returns numpy (features, logits) in float32."""
    shape = _as_nhwc(images)
    images = np.asarray(images).reshape(shape)
    n = shape[0]
    if n:
        lo, hi = float(np.min(images)), float(np.max(images))
        if lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK:
            raise ValueError(f"images must be scaled to [0, 1], got values in [{lo:.3g}, {hi:.3g}]"
                             " (uint8 pixels: divide by 255)")
    return batched(lambda b: features_and_logits(params, b), images, batch_size,
                   (NUM_FEATURES, NUM_CLASSES))


def load_split(source_dir: str, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28, 1) float32 in [0, 1] and int32 labels of an idx split ("train",
    "test") read from the original files."""
    images, labels = read_split(source_dir, split)
    return images.astype(np.float32) / 255.0, labels.astype(np.int32)


def weights_path(dataset: str) -> Path:
    """Where the committed weights for `dataset` live (whether or not the file exists)."""
    return WEIGHTS_DIR / f"{dataset}_classifier.npz"


def available_datasets() -> tuple[str, ...]:
    """Datasets with committed classifier weights."""
    suffix = "_classifier.npz"
    if not WEIGHTS_DIR.is_dir():
        return ()
    return tuple(sorted(p.name[:-len(suffix)] for p in WEIGHTS_DIR.glob(f"*{suffix}")))


def save_weights(path: str | os.PathLike, params: dict, metadata: dict) -> None:
    """Writes variables as float32 plus `metadata` (JSON-serialisable) to an `.npz`."""
    flat = {k: np.asarray(v, np.float32) for k, v in flatten_variables(params).items()}
    flat[METADATA_KEY] = np.array(json.dumps(metadata, sort_keys=True))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # a file object: np.savez would append '.npz' to a bare path
        np.savez(f, **flat)


def _read_npz(path: Path) -> tuple[dict, dict]:
    try:
        with np.load(path, allow_pickle=False) as data:
            flat = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ClassifierWeightsError(f"{path}: cannot read the weights ({e}); the file is "
                                     "truncated or corrupt.") from e
    if METADATA_KEY not in flat:
        raise ClassifierWeightsError(f"{path}: no '{METADATA_KEY}' entry; not a classifier "
                                     "weights file.")
    try:
        metadata = json.loads(str(flat.pop(METADATA_KEY)))
    except json.JSONDecodeError as e:
        raise ClassifierWeightsError(f"{path}: metadata is not valid JSON ({e}).") from e
    return flat, metadata


def load_weights(path: str | os.PathLike) -> tuple[dict, dict]:
    """Reads and checks a weights file; returns (variables, metadata)."""
    path = Path(path)
    if not path.is_file():
        raise ClassifierWeightsError(f"{path}: no such weights file.")
    flat, metadata = _read_npz(path)
    expected = variable_shapes()
    missing = sorted(set(expected) - set(flat))
    extra = sorted(set(flat) - set(expected))
    if missing or extra:
        raise ClassifierWeightsError(f"{path}: variables do not match the classifier; missing "
                                     f"{missing}, unexpected {extra}.")
    for name, shape in expected.items():
        value = flat[name]
        if value.shape != shape:
            raise ClassifierWeightsError(f"{path}: {name} has shape {value.shape}, expected "
                                         f"{shape}.")
        if value.dtype != np.float32:
            raise ClassifierWeightsError(f"{path}: {name} is {value.dtype}, expected float32.")
        if not np.all(np.isfinite(value)):
            raise ClassifierWeightsError(f"{path}: {name} holds non-finite values.")
    params = jax.tree_util.tree_map(jnp.asarray, unflatten_variables(flat))
    return params, metadata


def _committed(dataset: str) -> Path:
    path = weights_path(dataset)
    if not path.is_file():
        have = ", ".join(available_datasets()) or "none"
        raise ClassifierWeightsError(
            f"No committed classifier weights for dataset {dataset!r} (expected {path}); "
            f"datasets with weights: {have}. Train them with `python -m "
            f"wgan_jax.quality.train_classifier --dataset {dataset} --source DIR --out {path}`.")
    return path


def load_classifier(dataset: str) -> dict:
    """The committed classifier variables for `dataset` ('fashion_mnist', ...)."""
    return load_weights(_committed(dataset))[0]


def classifier_metadata(dataset: str) -> dict:
    """The metadata recorded with the committed weights (test accuracy, command, ...)."""
    return load_weights(_committed(dataset))[1]
