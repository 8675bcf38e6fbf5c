"""The current critic's estimate on held-out data next to the same estimate on training data.

`em_distance_heldout` = mean D(test reals) - mean D(generated), `em_distance_trainset` = mean
D(training-subset reals) - mean D(the same generated), with the same number of reals on both
sides. A critic that memorises its training examples scores them higher than unseen ones: the
two curves separate (the WGAN-GP paper's overfitting test, sec. 5).
"""
from __future__ import annotations

import ml_collections
import numpy as np

from wgan_jax import registry
from wgan_jax.evaluators.base import Networks, class_labels, fixed_latents
from wgan_jax.evaluators.spec import EvaluatorSpec, check_positive_ints
from wgan_jax.state import TrainState


def open_split(dataset: str, split: str, data_dir: str | None):
    """`split` of the prepared dataset, unshuffled (TFDS order), and its size; one clear error
    if the dataset is not prepared or has no such split."""
    from wgan_jax.data import images
    images.hide_accelerators_from_tf()
    import tensorflow_datasets as tfds
    builder = tfds.builder(registry.dataset(dataset).tfds_name, data_dir=data_dir)
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as e:
        if "could not find data" not in str(e):
            raise
        raise images.DatasetNotFoundError(
            f"dataset {dataset!r} is not prepared in {builder.data_dir}") from None
    except (ValueError, KeyError) as e:
        if "split" not in str(e).lower():
            raise
        raise images.DatasetNotFoundError(
            f"dataset {dataset!r} has no {split!r} split ({e}); the held-out evaluators "
            "('heldout', 'w1_critic') need one: drop them from config.evals") from None
    size = int(ds.cardinality())
    if size < 0:  # unknown: count once
        size = sum(1 for _ in ds)
    return ds, size


def split_images(dataset: str, split: str, data_dir: str | None, num: int,
                 indices: np.ndarray | None = None, with_labels: bool = False):
    """Images of `split` in the model's range: the first `num`, or those at `indices` (TFDS
    order) when given; with `with_labels`, the pair (images, int32 class labels)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from wgan_jax.data import images
    ds, size = open_split(dataset, split, data_dir)
    if indices is not None:
        keep = np.zeros(size, bool)
        keep[indices] = True
        ds = ds.enumerate().filter(lambda i, _: tf.gather(keep, i)).map(lambda _, ex: ex)
        num = len(indices)
    ds = ds.take(num).map(lambda ex: (images.preprocess(ex["image"], dataset),
                                      tf.cast(ex["label"], tf.int32) if with_labels else 0))
    parts = list(tfds.as_numpy(ds.batch(1000)))
    out = (np.concatenate([p[0] for p in parts]) if parts else np.zeros((0,))).astype(np.float32)
    if len(out) < num:
        raise images.DatasetNotFoundError(
            f"the {split!r} split of {dataset!r} has {size} examples, fewer than the {num} "
            "asked for; lower the evaluator's num_samples")
    if with_labels:
        return out, np.concatenate([p[1] for p in parts]).astype(np.int32)
    return out


class HeldoutEvaluator:
    """`em_distance_heldout` and `em_distance_trainset` of the run's current critic."""

    name = "heldout"

    def __init__(self, networks: Networks, dataset: str, *, every_steps: int, seed: int,
                 num_samples: int, train_subset: int, data_dir: str | None):
        from wgan_jax.data import images
        self.networks, self.every_steps = networks, every_steps
        _, size = open_split(dataset, "train", data_dir)
        subset = images.subset_indices(size, train_subset or size, seed)
        n = min(num_samples, len(subset))
        # The first n of the run's subset, in the subset's own (permuted) order.
        order = np.random.default_rng(seed).permutation(size)[:len(subset)][:n]
        # A conditional critic scores reals with their own labels, fakes with balanced ones.
        self.train_labels = self.test_labels = None
        if networks.models.conditional:
            self.train_real, self.train_labels = split_images(
                dataset, "train", data_dir, n, np.sort(order), with_labels=True)
            self.test_real, self.test_labels = split_images(dataset, "test", data_dir, n,
                                                            with_labels=True)
        else:
            self.train_real = split_images(dataset, "train", data_dir, n, np.sort(order))
            self.test_real = split_images(dataset, "test", data_dir, n)
        self.z = fixed_latents(seed + 11, n, networks.models.latent_dim)
        self.y = class_labels(n, networks.models.num_classes)

    def run(self, state: TrainState) -> dict[str, float]:
        fake = self.networks.generate(state, self.z, self.y)
        d_fake = self.networks.critic(state, fake, self.y).astype(np.float64).mean()
        d_test, d_train = (self.networks.critic(state, x, y).astype(np.float64).mean()
                           for x, y in ((self.test_real, self.test_labels),
                                        (self.train_real, self.train_labels)))
        return {"em_distance_heldout": float(d_test - d_fake),
                "em_distance_trainset": float(d_train - d_fake)}


def _defaults() -> ml_collections.ConfigDict:
    b = ml_collections.ConfigDict()
    b.every_steps = 100
    b.num_samples = 1000  # reals on each side (at most the training subset's size)
    return b


def _validate(block, config, fail, active) -> None:
    del config, active
    check_positive_ints(block, "eval.heldout", fail, "every_steps", "num_samples")


def _build(config, method, networks) -> HeldoutEvaluator:
    b = config.eval.heldout
    return HeldoutEvaluator(networks, method.dataset, every_steps=b.every_steps,
                            seed=config.seed, num_samples=b.num_samples,
                            train_subset=config.train_subset, data_dir=config.data_dir)


SPEC = EvaluatorSpec(needs="image", defaults=_defaults, build=_build, validate=_validate)
