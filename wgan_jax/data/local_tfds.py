"""Builds the TFDS ``mnist`` / ``fashion_mnist`` datasets from local idx files, offline.

TFDS normally downloads the four idx files and verifies their checksums. Distribution
packages (Debian's ``dataset-fashion-mnist``) ship the same files re-gzipped, so the
checksums differ and TFDS refuses them as a manual dir. The builders here subclass TFDS's
own ``MNIST``/``FashionMNIST`` builders, keeping name, version and features, and only
replace where the files come from. The result is indistinguishable on disk from a normal
download: afterwards ``tfds.load("fashion_mnist", data_dir=DIR, download=False)`` works.

Usage::

    python -m wgan_jax.data.local_tfds --dataset fashion_mnist \
        --source /usr/share/datasets/fashion-mnist --data_dir ~/tensorflow_datasets
"""

from __future__ import annotations

import argparse
import functools
import gzip
import os
import struct
import sys

import numpy as np

from wgan_jax.data.tf_setup import hide_accelerators_from_tf
from wgan_jax.registry import DEBIAN_FASHION_MNIST

LOCAL_DATASETS = ("mnist", "fashion_mnist")

_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dims
_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dim
_SIDE = 28

# split -> (images file, labels file), the names used by both MNIST and Fashion-MNIST.
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class IdxFileError(ValueError):
    """A source idx file is missing, truncated or not in the expected format."""


def _find_file(source_dir: str, base: str) -> str:
    # Accept the canonical gzipped name, an uncompressed copy, and the dotted variant
    # ("train-images.idx3-ubyte") some archives unpack to.
    dotted = base.replace("-idx", ".idx")
    candidates = [base + ".gz", base, dotted + ".gz", dotted]
    for name in candidates:
        path = os.path.join(source_dir, name)
        if os.path.isfile(path):
            return path
    raise IdxFileError(
        f"Missing file {base}.gz (or uncompressed {base}) in {source_dir}; expected the four "
        f"original idx files: {', '.join(f + '.gz' for pair in _FILES.values() for f in pair)}."
    )


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    try:
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:
        raise IdxFileError(
            f"{path}: cannot decompress ({e}); the file is truncated or corrupt."
        ) from e


def read_idx_images(path: str) -> np.ndarray:
    """Reads an idx3-ubyte image file (gzipped or not) into uint8 (N, 28, 28, 1)."""
    data = _read_bytes(path)
    if len(data) < 16:
        raise IdxFileError(f"{path}: {len(data)} bytes, too short for an idx3 header (16 bytes).")
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != _IMAGES_MAGIC:
        raise IdxFileError(
            f"{path}: magic number {magic:#010x}, expected {_IMAGES_MAGIC:#010x} (idx3 images)."
        )
    if (rows, cols) != (_SIDE, _SIDE):
        raise IdxFileError(f"{path}: images are {rows}x{cols}, expected {_SIDE}x{_SIDE}.")
    expected = 16 + n * rows * cols
    if len(data) != expected:
        raise IdxFileError(
            f"{path}: {len(data)} bytes, expected {expected} for {n} images of {rows}x{cols}; "
            "the file is truncated or corrupt."
        )
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols, 1)


def read_idx_labels(path: str) -> np.ndarray:
    """Reads an idx1-ubyte label file (gzipped or not) into int64 (N,)."""
    data = _read_bytes(path)
    if len(data) < 8:
        raise IdxFileError(f"{path}: {len(data)} bytes, too short for an idx1 header (8 bytes).")
    magic, n = struct.unpack(">II", data[:8])
    if magic != _LABELS_MAGIC:
        raise IdxFileError(
            f"{path}: magic number {magic:#010x}, expected {_LABELS_MAGIC:#010x} (idx1 labels)."
        )
    if len(data) != 8 + n:
        raise IdxFileError(
            f"{path}: {len(data)} bytes, expected {8 + n} for {n} labels; "
            "the file is truncated or corrupt."
        )
    labels = np.frombuffer(data, np.uint8, offset=8).astype(np.int64)
    if labels.size and labels.max() > 9:
        raise IdxFileError(f"{path}: label {labels.max()} found, expected labels in 0..9.")
    return labels


def read_split(source_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads and cross-checks the images and labels of one split ("train" or "test")."""
    images_file, labels_file = _FILES[split]
    images_path = _find_file(source_dir, images_file)
    labels_path = _find_file(source_dir, labels_file)
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise IdxFileError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; expected the same number."
        )
    return images, labels


def _encode_pngs(images: np.ndarray):
    """Yields PNG bytes for uint8 images (N, H, W, C).

    Same op and settings as TFDS's Image feature (tf.image.encode_png), so the written
    records are byte-identical to a normal TFDS build; running it in tf.data avoids the
    feature's one graph call per image.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(images)
    ds = ds.map(tf.image.encode_png, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    for png in ds.batch(1024).as_numpy_iterator():
        yield from png


@functools.cache
def _builder_classes():
    """Defined lazily so that importing this module does not import TFDS/TensorFlow."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.image_classification import mnist as tfds_mnist

    def _local_builder(base):
        # skip_registration: TFDS already registers `base` under the same name; the
        # subclass is only ever instantiated directly, by `prepare`.
        class LocalBuilder(base, skip_registration=True):
            name = base.name
            # Metadata files (citations, README) live next to the original builder.
            pkg_dir_path = base._get_pkg_dir_path()

            def __init__(self, *, source_dir: str, **kwargs):
                self._source_dir = source_dir
                super().__init__(**kwargs)

            def _split_generators(self, dl_manager):
                del dl_manager  # Nothing to download.
                return [
                    tfds.core.SplitGenerator(name=split, gen_kwargs={"split": split})
                    for split in (tfds.Split.TRAIN, tfds.Split.TEST)
                ]

            def _generate_examples(self, split):
                images, labels = read_split(self._source_dir, str(split))
                pngs = _encode_pngs(images)
                for index, (png, label) in enumerate(zip(pngs, labels, strict=True)):
                    yield index, {"image": png, "label": label}

        LocalBuilder.__name__ = LocalBuilder.__qualname__ = f"Local{base.__name__}"
        return LocalBuilder

    return {
        "mnist": _local_builder(tfds_mnist.MNIST),
        "fashion_mnist": _local_builder(tfds_mnist.FashionMNIST),
    }


def prepare(dataset: str, source_dir: str, data_dir: str) -> str:
    """Prepares TFDS ``dataset`` in ``data_dir`` from the idx files in ``source_dir``.

    Returns the prepared dataset directory (``data_dir/NAME/VERSION``). Does nothing if the
    dataset is already prepared there.
    """
    if dataset not in LOCAL_DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; valid names: {', '.join(LOCAL_DATASETS)}.")
    import tensorflow_datasets as tfds

    hide_accelerators_from_tf()
    data_dir = os.path.expanduser(data_dir)
    builder = _builder_classes()[dataset](source_dir=source_dir, data_dir=data_dir)
    if builder.data_path.exists() and builder.is_prepared():
        return os.fspath(builder.data_dir)
    # Validate every file before TFDS starts writing, so a bad source fails fast and
    # leaves no partial dataset behind.
    for split in _FILES:
        read_split(source_dir, split)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    return os.fspath(builder.data_dir)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m wgan_jax.data.local_tfds",
        description="Prepare TFDS mnist/fashion_mnist offline from local idx files.",
    )
    parser.add_argument("--dataset", choices=LOCAL_DATASETS, default="fashion_mnist")
    parser.add_argument(
        "--source",
        default=DEBIAN_FASHION_MNIST,
        help="folder with the four idx files, gzipped or not (default: %(default)s)",
    )
    parser.add_argument(
        "--data_dir",
        default=os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"),
        help="TFDS data dir to write into (default: $TFDS_DATA_DIR or %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        path = prepare(args.dataset, args.source, args.data_dir)
    except IdxFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
