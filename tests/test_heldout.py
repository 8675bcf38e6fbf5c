"""config.train_subset and the `heldout` evaluator: the subset is a fixed seeded part of the
training split, the pipeline reads only it, held-out reals never come from it, the estimates
are the critic's mean differences, and bad settings are one clear error."""
import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from configs import wgan_gp  # noqa: E402
from wgan_jax import evaluators  # noqa: E402
from wgan_jax.config import ConfigError, validate  # noqa: E402
from wgan_jax.data import images  # noqa: E402
from wgan_jax.data.images import DatasetNotFoundError  # noqa: E402
from wgan_jax.evaluators import heldout  # noqa: E402
from wgan_jax.method import Method  # noqa: E402

EXAMPLES = 24  # mock examples per split


def test_subset_indices_are_a_fixed_seeded_choice():
    a = images.subset_indices(100, 10, seed=0)
    assert len(set(a.tolist())) == 10 and a.min() >= 0 and a.max() < 100
    np.testing.assert_array_equal(a, np.sort(a))
    np.testing.assert_array_equal(a, images.subset_indices(100, 10, seed=0))
    assert not np.array_equal(a, images.subset_indices(100, 10, seed=1))
    # the first N of one permutation: a larger subset contains the smaller one
    assert set(a.tolist()) <= set(images.subset_indices(100, 30, seed=0).tolist())
    np.testing.assert_array_equal(images.subset_indices(5, 5, seed=3), np.arange(5))
    with pytest.raises(DatasetNotFoundError, match="train_subset=101 must be in 1..100"):
        images.subset_indices(100, 101, seed=0)


def _config(subset: int):
    c = wgan_gp.get_config("mnist")
    c.batch_size, c.train_subset, c.evals = 4, subset, ("heldout",)
    c.eval.heldout.num_samples = 6
    return c


@pytest.fixture(scope="module")
def built():
    c = _config(8)
    method = Method.from_config(c)
    reads, split_images = [], heldout.split_images

    def spy(dataset, split, data_dir, num, indices=None, with_labels=False):
        reads.append((split, None if indices is None else indices.tolist()))
        return split_images(dataset, split, data_dir, num, indices, with_labels)

    with tfds.testing.mock_data(num_examples=EXAMPLES), pytest.MonkeyPatch.context() as mp:
        mp.setattr(heldout, "split_images", spy)
        (ev,) = evaluators.build(c, method)
        evaluator_reads = list(reads)
        train_all = heldout.split_images("mnist", "train", None, EXAMPLES)
        subset = images.subset_indices(EXAMPLES, 8, c.seed)
        it = images.make_image_iterator("mnist", data_dir=None, global_batch_size=4,
                                        seed=c.seed, process_index=0, process_count=1,
                                        subset=8)
        try:
            streamed = np.concatenate([next(it) for _ in range(6)])  # 3 epochs of the subset
        finally:
            it.close()
    return c, method, ev, train_all, subset, streamed, evaluator_reads


def _rows(x):
    return {r.tobytes() for r in np.asarray(x, np.float32).reshape(len(x), -1)}


def test_pipeline_reads_only_the_subset_and_heldout_never_overlaps(built):
    c, method, ev, train_all, subset, streamed, reads = built
    assert _rows(streamed) == _rows(train_all[subset])  # every subset example, nothing else
    assert len(ev.train_real) == len(ev.test_real) == 6  # min(num_samples, subset)
    # (Mock data repeats one set of examples in every split, so provenance is checked by the
    # reads: held-out reals come from the test split only, trainset reals from the subset.)
    (train_split, train_idx), (test_split, test_idx) = reads
    assert (train_split, test_split, test_idx) == ("train", "test", None)
    assert len(train_idx) == 6 and set(train_idx) <= set(subset.tolist())
    np.testing.assert_array_equal(ev.train_real, train_all[train_idx])


def test_heldout_estimates_are_the_critics_mean_differences(built):
    c, method, ev, *_ = built
    state = method.init_state()
    got = ev.run(state)
    net = ev.networks
    d_fake = net.critic(state, net.generate(state, ev.z)).astype(np.float64).mean()
    assert got["em_distance_heldout"] == pytest.approx(
        net.critic(state, ev.test_real).astype(np.float64).mean() - d_fake, rel=1e-5)
    assert got["em_distance_trainset"] == pytest.approx(
        net.critic(state, ev.train_real).astype(np.float64).mean() - d_fake, rel=1e-5)


def test_bad_subset_settings_are_one_clear_error():
    c = _config(EXAMPLES + 1)
    with tfds.testing.mock_data(num_examples=EXAMPLES):
        with pytest.raises(DatasetNotFoundError, match="train_subset"):
            evaluators.build(c, Method.from_config(c))
    with pytest.raises(ConfigError, match="config.train_subset=.*toy"):
        t = wgan_gp.get_config()
        t.train_subset = 10
        validate(t)
    with pytest.raises(ConfigError, match="heldout.*needs an image dataset"):
        t = wgan_gp.get_config()
        t.evals = ("heldout",)
        validate(t)


def test_missing_test_split_is_one_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no 'validation' split"):
        heldout.open_split("fashion_mnist", "validation", None)
