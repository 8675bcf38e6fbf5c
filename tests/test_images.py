import contextlib

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from wgan_jax import registry  # noqa: E402
from wgan_jax.data import images  # noqa: E402


def _take(it, k):
    """k consecutive batches stacked: what one step of k critic iterations reads."""
    return np.stack([next(it) for _ in range(k)])


@contextlib.contextmanager
def _iterator(dataset, num_examples=10, **kwargs):
    kwargs.setdefault("data_dir", None)
    kwargs.setdefault("seed", 0)
    with tfds.testing.mock_data(num_examples=num_examples):
        it = images.make_image_iterator(dataset, **kwargs)
        try:
            yield it
        finally:
            # mock_data feeds tf.data from a Python generator; an infinite pipeline over it
            # left to interpreter shutdown can deadlock, so close it here.
            it.close()


@pytest.mark.parametrize("dataset", ["mnist", "cifar10", "celeba64"])
def test_iterator_shapes_and_range(dataset):
    spec = registry.dataset(dataset)
    lo, hi = spec.value_range
    # 10 examples, 8 per step: 5 steps cross several epochs.
    kwargs = dict(global_batch_size=4, process_index=0, process_count=1)
    with _iterator(dataset, **kwargs) as it:
        for _ in range(5):
            x = _take(it, 2)
            assert isinstance(x, np.ndarray)
            assert x.shape == (2, 4, *spec.shape)
            assert x.dtype == np.float32
            assert x.min() >= lo and x.max() <= hi
    assert x.max() > x.min()


def test_iterator_per_process_batch():
    kwargs = dict(global_batch_size=8, process_index=1, process_count=2)
    with _iterator("mnist", **kwargs) as it:
        x = _take(it, 3)
    assert x.shape == (3, 4, 28, 28, 1)


def test_iterator_defaults_to_jax_processes():
    with _iterator("cifar10", global_batch_size=6) as it:
        x = next(it)
    assert x.shape == (6, 32, 32, 3)


def test_iterator_deterministic_for_seed():
    def take(seed):
        with _iterator("mnist", global_batch_size=4, seed=seed) as it:
            return np.stack([_take(it, 2) for _ in range(3)])

    a, b, c = take(1), take(1), take(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batch_not_divisible_by_processes():
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        images.make_image_iterator(
            "mnist", data_dir=None, global_batch_size=5, seed=0,
            process_index=0, process_count=2,
        )


def test_unknown_dataset():
    with pytest.raises(ValueError, match="valid names"):
        images.make_image_iterator(
            "imagenet", data_dir=None, global_batch_size=4, seed=0
        )


@pytest.mark.parametrize(
    "dataset, fix",
    [
        ("fashion_mnist", "python -m wgan_jax.data.local_tfds --dataset fashion_mnist"),
        ("mnist", "python -m wgan_jax.data.local_tfds --dataset mnist"),
        ("cifar10", "tfds build cifar10"),
    ],
)
def test_missing_dataset_error(tmp_path, dataset, fix):
    with pytest.raises(images.DatasetNotFoundError) as exc:
        images.make_image_iterator(
            dataset, data_dir=str(tmp_path), global_batch_size=4, seed=0
        )
    msg = str(exc.value)
    assert repr(dataset) in msg
    assert str(tmp_path) in msg
    assert fix in msg
    if dataset == "fashion_mnist":
        assert "apt-get install dataset-fashion-mnist" in msg
    # Nothing was downloaded or prepared.
    assert not any(tmp_path.rglob("*.tfrecord*"))


def test_preprocess_mnist_values():
    img = np.array([[0, 51, 255]], np.uint8).reshape(1, 3, 1)
    for dataset in ("mnist", "fashion_mnist"):
        out = images.preprocess(tf.constant(img), dataset).numpy()
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.ravel(), [0.0, 0.2, 1.0], rtol=0, atol=1e-7)


def test_preprocess_cifar_values():
    img = np.array([[[0, 255, 51]]], np.uint8)
    out = images.preprocess(tf.constant(img), "cifar10").numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), [-1.0, 1.0, 51 / 127.5 - 1], rtol=0, atol=1e-6)


def test_preprocess_celeba_constant_border_removed():
    # Only the central 178 rows are white: a correct centre crop sees a constant image.
    img = np.zeros((218, 178, 3), np.uint8)
    img[20:198] = 255
    out = images.preprocess(tf.constant(img), "celeba64").numpy()
    assert out.shape == (64, 64, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-5)

    const = np.full((218, 178, 3), 100, np.uint8)
    out = images.preprocess(tf.constant(const), "celeba64").numpy()
    np.testing.assert_allclose(out, 100 / 127.5 - 1, atol=1e-5)


def test_preprocess_celeba_vertical_gradient():
    # Pixel value = original row index. Away from the borders the antialiased resize
    # reproduces a linear ramp sampled at the output pixel centres, up to the kernel's
    # discretisation (< 0.1 grey level); a wrong crop offset would be 20 levels off.
    rows = np.arange(218, dtype=np.uint8)
    img = np.broadcast_to(rows[:, None, None], (218, 178, 3)).copy()
    out = images.preprocess(tf.constant(img), "celeba64").numpy()
    k = np.arange(64)
    expected_row = (k + 0.5) * 178 / 64 - 0.5 + 20
    expected = expected_row / 127.5 - 1
    interior = slice(3, 61)
    np.testing.assert_allclose(out[interior, 32, 0], expected[interior], atol=0.1 / 127.5)
    # Columns are untouched by the crop: every column sees the same ramp.
    np.testing.assert_allclose(out[:, 0], out[:, 63], atol=1e-6)


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, wgan_jax.data.images; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_skip_batches_continues_the_same_stream():
    # 10 examples in batches of 3: batch 4 onwards crosses epoch boundaries at element 10, 20.
    kwargs = dict(global_batch_size=3, process_index=0, process_count=1,
                  shuffle_buffer=10)
    with _iterator("mnist", **kwargs) as it:
        full = np.stack([next(it) for _ in range(9)])
    for k in (1, 4, 7):
        with _iterator("mnist", skip_batches=k, **kwargs) as it:
            rest = np.stack([next(it) for _ in range(9 - k)])
        np.testing.assert_array_equal(rest, full[k:])
    # every epoch is a permutation of the same 10 images, shuffled differently
    flat = full.reshape(27, -1)
    epochs = [flat[0:10], flat[10:20]]
    assert {e.tobytes() for e in epochs[0]} == {e.tobytes() for e in epochs[1]}
    assert not np.array_equal(epochs[0], epochs[1])


def test_skip_batches_rejects_negative():
    with pytest.raises(ValueError, match="skip_batches"):
        with _iterator("mnist", global_batch_size=2, skip_batches=-1):
            pass
