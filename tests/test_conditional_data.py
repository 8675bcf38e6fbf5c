"""Labels in the input pipeline (they follow their images through shuffling, process splits,
resumes and device sharding), the padded fashion_mnist32 set, and dequantization."""

import contextlib

import jax
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from wgan_jax import registry  # noqa: E402
from wgan_jax.data import feed, images  # noqa: E402
from wgan_jax.method import Method, config_with  # noqa: E402
from wgan_jax.parallel import make_mesh  # noqa: E402

N = 10  # examples in the mocked split


@contextlib.contextmanager
def _labelled(dataset="fashion_mnist", **kwargs):
    kwargs.setdefault("data_dir", None)
    kwargs.setdefault("seed", 0)
    with tfds.testing.mock_data(num_examples=N):
        it = images.make_image_iterator(dataset, with_labels=True, **kwargs)
        try:
            yield it
        finally:
            it.close()


def _truth(dataset="fashion_mnist"):
    """image bytes -> label, read from the mocked split in storage order."""
    spec = registry.dataset(dataset)
    with tfds.testing.mock_data(num_examples=N):
        ds = tfds.builder(spec.tfds_name).as_dataset(split="train", shuffle_files=False)
        ds = ds.map(lambda ex: (images.preprocess(ex["image"], dataset), ex["label"]))
        pairs = [(x.tobytes(), int(y)) for x, y in tfds.as_numpy(ds)]
    truth = dict(pairs)
    assert len(truth) == N  # every image distinct, so an image names its example
    assert len(set(truth.values())) > 1
    return truth


def _check_pairs(batches, truth):
    for x, y in batches:
        assert x.dtype == np.float32 and y.dtype == np.int32 and y.shape == x.shape[:1]
        for xi, yi in zip(x, y, strict=True):
            assert truth[xi.tobytes()] == yi


def test_labels_follow_their_images_through_shuffling_splits_and_resume():
    truth = _truth()
    kwargs = dict(global_batch_size=6, shuffle_buffer=N)
    with _labelled(process_index=0, process_count=1, **kwargs) as it:
        full = [next(it) for _ in range(7)]  # 42 examples: four epochs, each reshuffled
    _check_pairs(full, truth)
    seen = {x.tobytes() for b in full for x in b[0]}
    assert len(seen) == N
    # A resumed stream continues with the same (image, label) pairs.
    with _labelled(process_index=0, process_count=1, skip_batches=3, **kwargs) as it:
        rest = [next(it) for _ in range(4)]
    for (x, y), (fx, fy) in zip(rest, full[3:], strict=True):
        np.testing.assert_array_equal(x, fx)
        np.testing.assert_array_equal(y, fy)
    # Two processes read disjoint halves, each pair intact; the images are those of an
    # unlabelled read.
    for index in (0, 1):
        with _labelled(process_index=index, process_count=2, skip_batches=2, **kwargs) as it:
            part = [next(it) for _ in range(3)]
        _check_pairs(part, truth)
        with tfds.testing.mock_data(num_examples=N):
            plain = images.make_image_iterator("fashion_mnist", data_dir=None, seed=0,
                                               process_index=index, process_count=2,
                                               skip_batches=2, **kwargs)
            for x, _ in part:
                np.testing.assert_array_equal(next(plain), x)
            plain.close()


def test_real_batches_shard_labels_like_images(monkeypatch):
    monkeypatch.setattr(images, "prepare_if_missing", lambda *a, **k: False)
    truth = _truth("fashion_mnist32")
    config = config_with({"dataset": "fashion_mnist32", "model.arch": "resnet32",
                          "conditioning": "projection", "batch_size": 4, "n_critic": 2,
                          "gp_weight": 10.0,
                          "evals": ("samples",), "shuffle_buffer": N})
    method = Method.from_config(config, num_devices=4)
    mesh = make_mesh(jax.devices()[:4])
    with tfds.testing.mock_data(num_examples=N):
        data = feed.RealBatches(method, mesh, start_step=2, shuffle_buffer=N)
        try:
            x, y = data.batch(3, 2)
        finally:
            data.close()
    assert x.shape == (2, 4, 32, 32, 1) and y.shape == (2, 4)
    assert x.sharding == y.sharding == feed.batch_sharding(mesh)
    for shard_x, shard_y in zip(x.addressable_shards, y.addressable_shards, strict=True):
        assert shard_x.index[:2] == shard_y.index  # the same examples on each device
        xs, ys = np.asarray(shard_x.data), np.asarray(shard_y.data)
        _check_pairs(zip(xs, ys, strict=True), truth)
    # Resumed at step 2 of n_critic 2: the stream from its 4th batch of 4 (skip 2 steps x 2).
    with _labelled("fashion_mnist32", global_batch_size=4, shuffle_buffer=N,
                   process_index=0, process_count=1, skip_batches=4) as it:
        first = next(it)
    np.testing.assert_array_equal(np.asarray(x)[0], first[0])
    np.testing.assert_array_equal(np.asarray(y)[0], first[1])


def test_fashion_mnist32_pads_with_black_in_minus_one_to_one():
    q = np.random.default_rng(0).integers(0, 256, (28, 28, 1)).astype(np.uint8)
    small = images.preprocess(tf.constant(q), "fashion_mnist").numpy()
    big = images.preprocess(tf.constant(q), "fashion_mnist32").numpy()
    assert big.shape == (32, 32, 1) == registry.dataset("fashion_mnist32").shape
    np.testing.assert_allclose(big[2:30, 2:30], q / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_allclose(big[2:30, 2:30], 2.0 * small - 1.0, atol=1e-6)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert np.all(big[border] == -1.0)


def test_dequantize_is_the_official_mapping_plus_noise_in_one_bin():
    q = np.arange(256, dtype=np.float64)
    x = jax.numpy.asarray((q / 127.5 - 1.0).astype(np.float32))
    width = 1.0 / 128
    out = np.asarray(feed.dequantize(x, jax.random.PRNGKey(0), width, (-1.0, 1.0)), np.float64)
    official = 2.0 * (q / 256.0 - 0.5)  # gan_cifar_resnet.py before its U(0, 1/128) noise
    noise = out - official
    assert np.all(noise >= -1e-6) and np.all(noise < width + 1e-6)
    assert noise.std() > width / 5  # noise, not a constant
    assert out.min() >= -1.0 - 1e-6 and out.max() < 1.0
    # Draws for the global batch: the same values on 1 and 4 devices.
    x4 = jax.numpy.broadcast_to(x, (2, 4, 256))
    mesh = make_mesh(jax.devices()[:4])
    sharded = jax.jit(lambda a, k: feed.dequantize(a, k, width, (-1.0, 1.0)),
                      out_shardings=feed.batch_sharding(mesh))(x4, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(
        np.asarray(sharded), np.asarray(feed.dequantize(x4, jax.random.PRNGKey(1), width,
                                                        (-1.0, 1.0))))
