"""Real batches for the training step, placed sharded over the device mesh."""
from __future__ import annotations

import functools

import jax
import numpy as np

from wgan_jax.data import toy
from wgan_jax.method import Method
from wgan_jax.parallel import batch_sharding

TOY_DATA_KEY = 0xDA7A  # folded into PRNGKey(seed): the toy stream, apart from the step's keys
DEQUANTIZE_KEY = 0xDE0  # folded into PRNGKey(seed): the dequantization noise


def dequantize(images: jax.Array, key: jax.Array, width: float,
               value_range: tuple[float, float]) -> jax.Array:
    """gan_cifar_resnet.py's dequantization of images in `value_range` that hold 8-bit values.

    The pipeline maps a byte q to lo + (hi - lo) * q / 255; the official code maps it to
    lo + (hi - lo) * q / 256 (for [-1, 1]: 2 * (q / 256 - 0.5)) and adds U(0, width) noise,
    which for width = (hi - lo) / 256 (1/128 on [-1, 1]) fills each byte's bin, so values stay
    in [lo, hi). This does the same to the pipeline's values.
    """
    lo, _ = value_range
    noise = jax.random.uniform(key, images.shape, images.dtype, 0.0, width)
    return lo + (images - lo) * (255.0 / 256.0) + noise


class RealBatches:
    """`batch(step, n_critic)`: [n_critic, global_batch, ...] real data for generator step
    `step` (1-based), sharded over `mesh`; for a conditional method the pair (images, int32
    labels [n_critic, global_batch]). Toy data is drawn on the device from the step number,
    image data (and labels) stream through TFDS from the position the steps before `start_step`
    reached, so a resumed run continues the stream. With `method.dequantize` > 0 the images get
    `dequantize`'s noise, drawn for the global batch from (seed, step): the same on any number of
    devices and after a resume."""

    def __init__(self, method: Method, mesh, start_step: int, *, data_dir: str | None = None,
                 source_dir: str | None = None, shuffle_buffer: int = 10_000,
                 train_subset: int = 0):
        self.sharding = batch_sharding(mesh)
        self.dataset = method.dataset
        self.batch_size = method.batch_size
        self.with_labels = method.conditional
        self._images = None
        self._dequantize = None
        key = jax.random.PRNGKey(method.seed)
        if method.data.is_toy:
            self._key = jax.random.fold_in(key, TOY_DATA_KEY)
            self._toy = jax.jit(toy.batches, static_argnums=(0, 2, 3),
                                out_shardings=self.sharding)
        else:
            from wgan_jax.data import images  # TensorFlow only when images are used
            images.prepare_if_missing(method.dataset, data_dir, source_dir)
            self._images = images.make_image_iterator(
                method.dataset, data_dir=data_dir, global_batch_size=method.batch_size,
                seed=method.seed, shuffle_buffer=shuffle_buffer,
                skip_batches=method.critic_iterations_before(start_step), subset=train_subset,
                with_labels=self.with_labels)
        if method.dequantize > 0:
            self._key = jax.random.fold_in(key, DEQUANTIZE_KEY)
            self._dequantize = jax.jit(
                functools.partial(dequantize, width=method.dequantize,
                                  value_range=method.data.value_range),
                out_shardings=self.sharding)

    def close(self) -> None:
        """Stop the input pipeline (an open tf.data iterator can hang interpreter exit)."""
        if self._images is not None and hasattr(self._images, "close"):
            self._images.close()

    def batch(self, step: int, n_critic: int):
        if self._images is None:
            return self._toy(self.dataset, jax.random.fold_in(self._key, step), n_critic,
                             self.batch_size)
        parts = [next(self._images) for _ in range(n_critic)]
        if self.with_labels:
            images = np.stack([p[0] for p in parts])
            labels = np.stack([p[1] for p in parts]).astype(np.int32)
        else:
            images, labels = np.stack(parts), None
        images = jax.make_array_from_process_local_data(self.sharding, images)
        if self._dequantize is not None:
            images = self._dequantize(images, jax.random.fold_in(self._key, step))
        if labels is None:
            return images
        return images, jax.make_array_from_process_local_data(self.sharding, labels)
