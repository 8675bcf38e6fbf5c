"""The shared batched runner of the feature networks."""
import numpy as np
import pytest

from wgan_jax.quality.batching import batched


def test_batched_equals_one_call_and_compiles_one_shape():
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    shapes = []

    def fn(b):
        shapes.append(b.shape)
        return b.sum(axis=1, keepdims=True), b * 2
    s, d = batched(fn, x, 3, (1, 3))
    np.testing.assert_allclose(s, x.sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(d, x * 2)
    assert set(shapes) == {(3, 3)}  # the last batch of 1 was padded to 3
    empty = batched(fn, x[:0], 3, (1, 3))
    assert [e.shape for e in empty] == [(0, 1), (0, 3)]
    with pytest.raises(ValueError, match="batch_size"):
        batched(fn, x, 0, (1, 3))
