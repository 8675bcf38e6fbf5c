"""Real batches for the training step, placed sharded over the device mesh."""
from __future__ import annotations

import jax
import numpy as np

from wgan_jax.data import toy
from wgan_jax.method import Method
from wgan_jax.parallel import batch_sharding

TOY_DATA_KEY = 0xDA7A  # folded into PRNGKey(seed): the toy stream, apart from the step's keys


class RealBatches:
    """`batch(step, n_critic)`: [n_critic, global_batch, ...] real data for generator step
    `step` (1-based), sharded over `mesh`. Toy data is drawn on the device from the step number,
    image data streams through TFDS from the position the steps before `start_step` reached, so
    a resumed run continues the stream."""

    def __init__(self, method: Method, mesh, start_step: int, *, data_dir: str | None = None,
                 source_dir: str | None = None, shuffle_buffer: int = 10_000,
                 train_subset: int = 0):
        self.sharding = batch_sharding(mesh)
        self.dataset = method.dataset
        self.batch_size = method.batch_size
        self._images = None
        if method.data.is_toy:
            self._key = jax.random.fold_in(jax.random.PRNGKey(method.seed), TOY_DATA_KEY)
            self._toy = jax.jit(toy.batches, static_argnums=(0, 2, 3),
                                out_shardings=self.sharding)
        else:
            from wgan_jax.data import images  # TensorFlow only when images are used
            images.prepare_if_missing(method.dataset, data_dir, source_dir)
            self._images = images.make_image_iterator(
                method.dataset, data_dir=data_dir, global_batch_size=method.batch_size,
                seed=method.seed, shuffle_buffer=shuffle_buffer,
                skip_batches=method.critic_iterations_before(start_step), subset=train_subset)

    def close(self) -> None:
        """Stop the input pipeline (an open tf.data iterator can hang interpreter exit)."""
        if self._images is not None and hasattr(self._images, "close"):
            self._images.close()

    def batch(self, step: int, n_critic: int) -> jax.Array:
        if self._images is None:
            return self._toy(self.dataset, jax.random.fold_in(self._key, step), n_critic,
                             self.batch_size)
        local = np.stack([next(self._images) for _ in range(n_critic)])
        return jax.make_array_from_process_local_data(self.sharding, local)
