import gzip
import os
import struct

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from wgan_jax.data import local_tfds  # noqa: E402
from wgan_jax.data.images import make_image_iterator  # noqa: E402

N_TRAIN, N_TEST = 12, 5


def _write_idx(path, header, payload, compress=True):
    data = header + payload.tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def _write_split(folder, prefix, images, labels, compress=True):
    ext = ".gz" if compress else ""
    n = len(images)
    _write_idx(
        os.path.join(folder, f"{prefix}-images-idx3-ubyte{ext}"),
        struct.pack(">IIII", 0x803, n, 28, 28),
        images,
        compress,
    )
    _write_idx(
        os.path.join(folder, f"{prefix}-labels-idx1-ubyte{ext}"),
        struct.pack(">II", 0x801, n),
        labels,
        compress,
    )


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("idx")
    data = {}
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        _write_split(folder, prefix, images, labels)
        data["train" if prefix == "train" else "test"] = (images, labels)
    return str(folder), data


def _as_sorted_pairs(images, labels):
    pairs = [(img.tobytes(), int(lab)) for img, lab in zip(images, labels, strict=True)]
    return sorted(pairs)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_prepare_tiny_roundtrip(tiny_source, tmp_path, dataset):
    source, data = tiny_source
    out = local_tfds.prepare(dataset, source, str(tmp_path))
    assert out == os.path.join(str(tmp_path), dataset, "3.0.1")
    assert os.path.isfile(os.path.join(out, "dataset_info.json"))

    builder = tfds.builder(dataset, data_dir=str(tmp_path))
    # The stock TFDS builder reads what was written, as if it had been downloaded.
    assert type(builder).__module__.startswith("tensorflow_datasets.")
    assert builder.info.splits["train"].num_examples == N_TRAIN
    assert builder.info.splits["test"].num_examples == N_TEST
    for split in ("train", "test"):
        ds = tfds.load(
            dataset, split=split, data_dir=str(tmp_path), download=False, batch_size=-1
        )
        got = tfds.as_numpy(ds)
        assert got["image"].shape == (len(data[split][0]), 28, 28, 1)
        images, labels = data[split]
        assert _as_sorted_pairs(got["image"][..., 0], got["label"]) == _as_sorted_pairs(
            images, labels
        )

    # Already prepared: no-op, and the source is not even read.
    assert local_tfds.prepare(dataset, "/nonexistent", str(tmp_path)) == out


def test_uncompressed_source_and_cli(tiny_source, tmp_path):
    _, data = tiny_source
    src = tmp_path / "raw"
    src.mkdir()
    _write_split(src, "train", *data["train"], compress=False)
    _write_split(src, "t10k", *data["test"], compress=False)
    rc = local_tfds.main(
        ["--dataset", "mnist", "--source", str(src), "--data_dir", str(tmp_path / "tfds")]
    )
    assert rc == 0
    builder = tfds.builder("mnist", data_dir=str(tmp_path / "tfds"))
    assert builder.info.splits["train"].num_examples == N_TRAIN


def test_per_process_splits_are_disjoint(tiny_source, tmp_path):
    source, data = tiny_source
    local_tfds.prepare("mnist", source, str(tmp_path))
    seen = []
    for index in range(2):
        it = make_image_iterator(
            "mnist", data_dir=str(tmp_path), global_batch_size=4, seed=0,
            process_index=index, process_count=2,
        )
        # 3 steps of 2 images = exactly this process's 6 examples, each once.
        batch = np.concatenate([next(it) for _ in range(3)])
        it.close()
        assert batch.shape == (6, 28, 28, 1)
        seen.append({np.round(b * 255).astype(np.uint8).tobytes() for b in batch})
    assert len(seen[0]) == len(seen[1]) == 6
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == {img.tobytes() for img in data["train"][0][..., None]}


def _corrupt_source(tmp_path, tiny_source, kind):
    _, data = tiny_source
    src = tmp_path / "src"
    src.mkdir()
    _write_split(src, "train", *data["train"])
    _write_split(src, "t10k", *data["test"])
    target = src / "train-images-idx3-ubyte.gz"
    if kind == "missing":
        target.unlink()
    elif kind == "truncated_gzip":
        target.write_bytes(target.read_bytes()[:-40])
    elif kind == "short_payload":
        images, _ = data["train"]
        _write_idx(target, struct.pack(">IIII", 0x803, len(images), 28, 28), images[:-1])
    elif kind == "bad_magic":
        images, _ = data["train"]
        _write_idx(target, struct.pack(">IIII", 0x801, len(images), 28, 28), images)
    elif kind == "count_mismatch":
        _, labels = data["train"]
        _write_idx(
            src / "train-labels-idx1-ubyte.gz", struct.pack(">II", 0x801, len(labels) - 1),
            labels[:-1],
        )
    return str(src)


@pytest.mark.parametrize(
    "kind, pattern",
    [
        ("missing", r"Missing file train-images-idx3-ubyte\.gz"),
        ("truncated_gzip", r"train-images-idx3-ubyte\.gz.*truncated or corrupt"),
        ("short_payload", r"train-images-idx3-ubyte\.gz.*expected .* for 12 images"),
        ("bad_magic", r"train-images-idx3-ubyte\.gz: magic number 0x00000801, expected 0x00000803"),
        ("count_mismatch", r"12 images but .*train-labels-idx1-ubyte\.gz holds 11 labels"),
    ],
)
def test_corrupt_source_errors(tmp_path, tiny_source, kind, pattern):
    src = _corrupt_source(tmp_path, tiny_source, kind)
    data_dir = tmp_path / "tfds"
    with pytest.raises(local_tfds.IdxFileError, match=pattern):
        local_tfds.prepare("fashion_mnist", src, str(data_dir))
    assert not (data_dir / "fashion_mnist").exists()


def test_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="valid names: mnist, fashion_mnist"):
        local_tfds.prepare("cifar10", str(tmp_path), str(tmp_path))


@pytest.mark.skipif(
    not os.path.isdir(local_tfds.DEBIAN_FASHION_MNIST),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_prepare_real_fashion_mnist(tmp_path):
    out = local_tfds.prepare("fashion_mnist", local_tfds.DEBIAN_FASHION_MNIST, str(tmp_path))
    builder = tfds.builder("fashion_mnist", data_dir=str(tmp_path))
    assert os.fspath(builder.data_dir) == out
    assert builder.info.splits["train"].num_examples == 60000
    assert builder.info.splits["test"].num_examples == 10000
    it = make_image_iterator(
        "fashion_mnist", data_dir=str(tmp_path), global_batch_size=64, seed=0,
        shuffle_buffer=1000, process_index=0, process_count=1,
    )
    x = np.stack([next(it) for _ in range(5)])
    it.close()
    assert x.shape == (5, 64, 28, 28, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x.max() > 0.9 and x.min() == 0.0
