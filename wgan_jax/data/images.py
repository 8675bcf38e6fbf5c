"""tf.data / TFDS input pipeline for the image datasets.

TensorFlow is imported lazily so that importing this module stays cheap and does not
touch accelerators; TensorFlow is told not to use GPUs before any pipeline is built, so
that all accelerator memory stays with JAX.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np

from wgan_jax import registry
from wgan_jax.data.tf_setup import hide_accelerators_from_tf

IMAGE_DATASETS = registry.IMAGE_DATASETS

_LOCAL_BUILD_HINT = (
    "run `python -m wgan_jax.data.local_tfds --dataset {name} --source {source} "
    "--data_dir {data_dir}`"
)


class DatasetNotFoundError(RuntimeError):
    """The requested dataset has not been prepared in the given data_dir."""


def _spec(dataset: str) -> registry.Dataset:
    if dataset not in IMAGE_DATASETS:
        raise ValueError(
            f"Unknown image dataset {dataset!r}; valid names: {', '.join(IMAGE_DATASETS)}."
        )
    return registry.DATASETS[dataset]


def preprocess(image, dataset: str):
    """Maps a uint8 image (H, W, C) from TFDS to a float32 tensor in the model's range (then
    padded with the range's low value, black, where the registry says `pad`)."""
    import tensorflow as tf

    spec = _spec(dataset)
    image = tf.cast(image, tf.float32)
    if spec.crop is not None:
        ch, cw = spec.crop
        h, w = tf.shape(image)[-3], tf.shape(image)[-2]
        image = tf.image.crop_to_bounding_box(image, (h - ch) // 2, (w - cw) // 2, ch, cw)
        image = tf.image.resize(image, spec.shape[:2], antialias=True)
    lo, hi = spec.value_range
    if (lo, hi) == (0.0, 1.0):
        image = image / 255.0
    else:
        image = image / 127.5 - 1.0
    # Resizing may leave float round-off just outside the range.
    image = tf.clip_by_value(image, lo, hi)
    if spec.pad:
        p = spec.pad
        image = tf.pad(image, [[p, p], [p, p], [0, 0]], constant_values=lo)
    return image


def prepare_if_missing(dataset: str, data_dir: str | None,
                       source_dir: str | None = None) -> bool:
    """Prepare `dataset` in `data_dir` from its original files when TFDS has not got it.

    Only for the sets wgan_jax builds offline (TFDS mnist, fashion_mnist): the files come from
    `source_dir`, or else the registry's `local_source` (Debian's dataset-fashion-mnist
    folder). Returns True when it prepared the set; False when there was nothing to do or no
    source (the pipeline then raises its usual DatasetNotFoundError saying how to get it).
    """
    import os

    from absl import logging

    from wgan_jax.data import local_tfds

    source = source_dir or _spec(dataset).local_source
    spec = _spec(dataset)
    if spec.tfds_name not in local_tfds.LOCAL_DATASETS or not source or not os.path.isdir(source):
        return False
    hide_accelerators_from_tf()
    import tensorflow_datasets as tfds

    target = data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
    if tfds.builder(spec.tfds_name, data_dir=os.path.expanduser(target)).is_prepared():
        return False
    logging.info("dataset %s is not prepared in %s: preparing it from the original files in %s "
                 "(once; later runs read it from there)", dataset, target, source)
    local_tfds.prepare(spec.tfds_name, source, target)
    return True


def check_available(dataset: str, data_dir: str | None, source_dir: str | None = None) -> None:
    """Raise DatasetNotFoundError, saying how to get it, if `dataset` is neither prepared in
    `data_dir` nor preparable here from its original files (`prepare_if_missing`'s sources)."""
    import os

    from wgan_jax.data import local_tfds

    spec = _spec(dataset)
    source = source_dir or spec.local_source
    if spec.tfds_name in local_tfds.LOCAL_DATASETS and source and os.path.isdir(source):
        return
    hide_accelerators_from_tf()
    import tensorflow_datasets as tfds

    builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
    try:  # as the pipeline finds out (TFDS's test doubles replace as_dataset, not is_prepared)
        builder.as_dataset(split="train")
    except AssertionError as e:
        if "could not find data" not in str(e):
            raise
        raise DatasetNotFoundError(
            _missing_message(dataset, spec.tfds_name, str(builder.data_dir))) from None


def load_images(dataset: str, split: str, *, data_dir: str | None, num: int) -> np.ndarray:
    """The first `num` images of `split` (TFDS order, no shuffling) as float32 in the model's
    range, (num, H, W, C): the real side of image-quality metrics. Fewer if the split is
    smaller; DatasetNotFoundError if it is not prepared."""
    spec = _spec(dataset)
    hide_accelerators_from_tf()
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as e:
        if "could not find data" not in str(e):
            raise
        raise DatasetNotFoundError(
            _missing_message(dataset, spec.tfds_name, str(builder.data_dir))) from None
    ds = ds.take(num).map(lambda ex: preprocess(ex["image"], dataset),
                          num_parallel_calls=tf.data.AUTOTUNE).batch(1000)
    parts = list(tfds.as_numpy(ds))
    if not parts:
        return np.zeros((0,) + spec.shape, np.float32)
    return np.concatenate(parts).astype(np.float32)


def _missing_message(dataset: str, tfds_name: str, where: str) -> str:
    if tfds_name in ("mnist", "fashion_mnist"):
        source = registry.dataset(dataset).local_source or "DIR_WITH_MNIST_IDX_FILES"
        fix = _LOCAL_BUILD_HINT.format(name=tfds_name, source=source, data_dir="DIR")
        if tfds_name == "fashion_mnist":
            fix += " (Debian: `apt-get install dataset-fashion-mnist`)"
        else:
            fix += " with the four original MNIST idx files in DIR_WITH_MNIST_IDX_FILES"
    else:
        fix = (
            f"run `tfds build {tfds_name} --data_dir DIR` on a machine with internet, "
            "or copy a prepared dataset there"
        )
    return (
        f"Dataset {dataset!r} (TFDS name {tfds_name!r}) is not prepared in {where}. "
        f"Downloading is disabled. To get it, {fix}, then pass data_dir=DIR."
    )


def _epochs(ds, seed: int, shuffle_buffer: int, start: int):
    """Endless epochs of `ds`, epoch e shuffled with seed (seed, e), from element `start` on."""
    import tensorflow as tf

    size = int(ds.cardinality().numpy())
    if size < 0:  # unknown: count once (cheap next to training; TFDS splits know their size)
        size = int(ds.reduce(np.int64(0), lambda n, *_: n + 1).numpy())
    if size == 0:
        raise ValueError("the dataset split is empty")
    first_epoch, offset = divmod(start, size)
    base = np.int64(seed) * np.int64(1_000_003)

    def one_epoch(epoch):
        return ds.shuffle(shuffle_buffer, seed=base + epoch, reshuffle_each_iteration=False)

    epochs = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max)
    return epochs.flat_map(one_epoch).skip(offset)


def subset_indices(size: int, n: int, seed: int) -> np.ndarray:
    """The examples (indices in TFDS order) of a training subset: the first `n` of a fixed
    permutation of `size` seeded by `seed`, sorted."""
    if not 0 < n <= size:
        raise DatasetNotFoundError(f"the training split has {size} examples: "
                                   f"config.train_subset={n} must be in 1..{size}")
    return np.sort(np.random.default_rng(seed).permutation(size)[:n])


def make_image_iterator(
    dataset: str,
    *,
    data_dir: str | None,
    split: str = "train",
    global_batch_size: int,
    seed: int,
    shuffle_buffer: int = 10_000,
    process_index: int | None = None,
    process_count: int | None = None,
    skip_batches: int = 0,
    with_labels: bool = False,
    subset: int = 0,
) -> Iterator[np.ndarray] | Iterator[tuple[np.ndarray, np.ndarray]]:
    """Infinite iterator of float32 batches (global_batch_size // process_count, H, W, C), or
    with `with_labels` of pairs (that batch, its int32 class labels), which travel with their
    images through shuffling, process splits and `skip_batches`.

    Each process reads its own disjoint slice of ``split``. ``data_dir`` may be a local or
    gs:// path, or None for the TFDS default; nothing is ever downloaded.

    Epoch e is shuffled with a seed derived from (``seed``, e) alone, so the stream is a fixed
    sequence and ``skip_batches=k`` starts it at its k-th array (a resumed run continues where
    it stopped): it starts at the right epoch and skips only within that epoch. Exact for
    datasets stored in one file per host split (mnist, fashion_mnist, cifar10); for sharded
    ones (celeb_a) TFDS reshuffles the file order per pass, so a resumed epoch visits the same
    examples in another order.
    """
    spec = _spec(dataset)
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if global_batch_size < 1 or global_batch_size % process_count:
        raise ValueError(
            f"global_batch_size={global_batch_size} must be a positive multiple of the "
            f"number of processes ({process_count})."
        )
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} not in [0, {process_count}).")
    if skip_batches < 0:
        raise ValueError(f"skip_batches must be >= 0, got {skip_batches}.")
    per_process_batch = global_batch_size // process_count

    hide_accelerators_from_tf()
    import tensorflow as tf
    import tensorflow_datasets as tfds

    tfds_name = spec.tfds_name
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    options = tf.data.Options()
    options.deterministic = True
    read_config = tfds.ReadConfig(shuffle_seed=seed, options=options)
    host_split = tfds.split_for_jax_process(
        split, process_index=process_index, process_count=process_count
    )
    if subset:  # index order is TFDS order: read the whole split unshuffled, then slice
        host_split = split
    try:
        ds = builder.as_dataset(split=host_split, shuffle_files=not subset,
                                read_config=read_config)
    except AssertionError as e:
        # TFDS signals "not prepared" with an AssertionError; anything else is a real bug.
        if "could not find data" not in str(e):
            raise
        where = str(builder.data_dir)
        raise DatasetNotFoundError(_missing_message(dataset, tfds_name, where)) from None

    if subset:
        keep = np.zeros(int(ds.cardinality()), bool)  # the whole split: TFDS knows its size
        keep[subset_indices(len(keep), subset, seed)] = True
        ds = ds.enumerate().filter(lambda i, _: tf.gather(keep, i)).map(lambda _, ex: ex)
        ds = ds.shard(process_count, process_index)
    if with_labels:
        if "label" not in builder.info.features:
            raise ValueError(f"dataset {dataset!r} has no labels (TFDS {tfds_name!r})")
        ds = ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32)),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda ex: ex["image"], num_parallel_calls=tf.data.AUTOTUNE)
    if spec.cache:
        # Small datasets: keep decoded uint8 images in memory instead of re-decoding PNGs.
        ds = ds.cache()
    ds = _epochs(ds, seed, shuffle_buffer, skip_batches * per_process_batch)
    if with_labels:
        ds = ds.map(lambda image, label: (preprocess(image, dataset), label),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(functools.partial(preprocess, dataset=dataset),
                    num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(per_process_batch, drop_remainder=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ds = ds.with_options(options)
    return iter(tfds.as_numpy(ds))
