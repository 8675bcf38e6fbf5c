"""Data: toy 2-D distributions, TFDS image pipelines and offline TFDS builders."""

from wgan_jax.data import toy
from wgan_jax.data.images import (
    IMAGE_DATASETS,
    DatasetNotFoundError,
    make_image_iterator,
    preprocess,
)
from wgan_jax.data.toy import TOY_DATASETS

__all__ = [
    "IMAGE_DATASETS",
    "TOY_DATASETS",
    "DatasetNotFoundError",
    "make_image_iterator",
    "preprocess",
    "toy",
]
