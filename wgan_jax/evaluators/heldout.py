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
from wgan_jax.evaluators.base import Networks, fixed_latents
from wgan_jax.evaluators.spec import EvaluatorSpec, check_positive_ints
from wgan_jax.state import TrainState

BATCH = 500  # examples per generator / critic call


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
                 indices: np.ndarray | None = None) -> np.ndarray:
    """Images of `split` in the model's range: the first `num`, or those at `indices` (TFDS
    order) when given."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from wgan_jax.data import images
    ds, size = open_split(dataset, split, data_dir)
    if indices is not None:
        keep = np.zeros(size, bool)
        keep[indices] = True
        ds = ds.enumerate().filter(lambda i, _: tf.gather(keep, i)).map(lambda _, ex: ex)
        num = len(indices)
    ds = ds.take(num).map(lambda ex: images.preprocess(ex["image"], dataset)).batch(1000)
    parts = list(tfds.as_numpy(ds))
    out = (np.concatenate(parts) if parts else np.zeros((0,))).astype(np.float32)
    if len(out) < num:
        raise images.DatasetNotFoundError(
            f"the {split!r} split of {dataset!r} has {size} examples, fewer than the {num} "
            "asked for; lower the evaluator's num_samples")
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
        self.train_real = split_images(dataset, "train", data_dir, n, np.sort(order))
        self.test_real = split_images(dataset, "test", data_dir, n)
        self.z = fixed_latents(seed + 11, n, networks.models.latent_dim)

    def _critic(self, state, x) -> np.ndarray:
        return np.concatenate([self.networks.critic(state, x[i:i + BATCH])
                               for i in range(0, len(x), BATCH)]).astype(np.float64)

    def run(self, state: TrainState) -> dict[str, float]:
        fake = np.concatenate([self.networks.generate(state, self.z[i:i + BATCH])
                               for i in range(0, len(self.z), BATCH)])
        d_fake = self._critic(state, fake).mean()
        return {"em_distance_heldout": float(self._critic(state, self.test_real).mean() - d_fake),
                "em_distance_trainset": float(self._critic(state, self.train_real).mean()
                                              - d_fake)}


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
