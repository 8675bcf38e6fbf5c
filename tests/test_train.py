"""End-to-end runs of train_and_evaluate: toy, mock tfds images, resume, errors."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import wgan, wgan_gp
from wgan_jax import checkpoint, train
from wgan_jax.method import Method, config_with, critic_iterations
from wgan_jax.metrics import NonFiniteError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_toy(steps=4, **overrides):
    c = wgan_gp.get_config()
    c.num_train_steps = steps
    c.batch_size = 16
    c.model.toy_hidden = 16
    c.log_every_steps = 1
    c.eval.toy.every_steps = c.eval.samples.every_steps = c.checkpoint_every_steps = 2
    c.eval.toy.num_samples = 200
    c.eval.toy.w1_samples = 100
    return config_with(overrides, base=c)


def restored(config, workdir):
    mngr = checkpoint.manager(os.path.join(workdir, "checkpoints"))
    return checkpoint.restore_latest(mngr, Method.from_config(config).init_state())


def stop_resume_matches_uninterrupted(cfg, tmp_path, stop: int, end: int, rtol: float) -> None:
    """Train `cfg(end)` straight through, and `cfg(stop)` then `cfg(end)` in another workdir
    (a stop and a resume); both must end at step `end` with the same state."""
    full, split = str(tmp_path / "full"), str(tmp_path / "split")
    train.train_and_evaluate(cfg(end), full)
    train.train_and_evaluate(cfg(stop), split)  # "stopped" after step `stop`
    train.train_and_evaluate(cfg(end), split)  # resumes from `stop`
    a, step_a = restored(cfg(end), full)
    b, step_b = restored(cfg(end), split)
    assert step_a == step_b == end
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=1e-6)


EVAL_METRICS = ("modes_covered", "high_quality_fraction", "exact_w1", "em_distance_heldout",
                "exact_w1_floor")


def test_toy_end_to_end(tmp_path):
    out = train.train_and_evaluate(tiny_toy(), str(tmp_path))
    for k in ("em_distance", "em_distance_last", "gradient_penalty", "critic_loss",
              "generator_loss", "grad_norm_mean", "grad_norm_min", "grad_norm_max", "d_real",
              "d_fake", "critic_grad_norm", "generator_grad_norm", "modes_covered",
              "high_quality_fraction", "exact_w1", "em_distance_heldout"):
        values = out.eval if k in EVAL_METRICS else out.train
        assert k in values and np.isfinite(values[k]), k
    assert set(out.eval) == set(EVAL_METRICS)  # evaluation kept apart from training metrics
    # The EM estimate is the negated critic loss without the penalty.
    t = out.train
    assert t["critic_loss"] == pytest.approx(-t["em_distance"] + t["gradient_penalty"],
                                             rel=1e-4, abs=1e-5)
    assert 0 <= out.eval["modes_covered"] <= 25 and 0 <= out.eval["high_quality_fraction"] <= 1
    names = os.listdir(tmp_path)
    assert any(n.startswith("events.out.tfevents") for n in names)
    assert sorted(os.listdir(tmp_path / "samples")) == ["step_0000002.png", "step_0000004.png"]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "4"]
    final = json.loads((tmp_path / "final_metrics.json").read_text())
    assert final["step"] == 4 and final["eval"] == out.eval and final["train"] == out.train
    state, step = restored(tiny_toy(), str(tmp_path))
    assert step == 4 and int(state.step) == 4


def test_resume_continues_at_the_right_step_and_matches_an_uninterrupted_run(tmp_path):
    # A constant learning rate: a decay schedule depends on num_train_steps.
    cfg = lambda steps: tiny_toy(steps=steps, **{"optimizer.lr_schedule": "constant"})  # noqa
    stop_resume_matches_uninterrupted(cfg, tmp_path, stop=4, end=6, rtol=1e-6)


def test_weight_clipping_run_keeps_critic_in_bounds(tmp_path):
    c = wgan.get_config()
    c.num_train_steps, c.batch_size, c.model.toy_hidden = 3, 16, 16
    c.eval.toy.num_samples, c.eval.toy.w1_samples = 100, 100
    c.critic_warmup = True  # 100 critic iterations in these first steps
    train.train_and_evaluate(c, str(tmp_path))
    state, _ = restored(c, str(tmp_path))
    leaves = jax.tree.leaves(state.d_params)
    bound = 0.01 + np.spacing(np.float32(0.01))
    assert all(np.all(np.abs(np.asarray(p)) <= bound) for p in leaves)
    # Adam-free RMSProp state counts 3 * 100 critic updates is not exposed; check the schedule.
    assert [critic_iterations(s, 5, True) for s in (0, 24, 25, 499, 500, 1000)] == \
        [100, 100, 5, 5, 100, 100]
    assert critic_iterations(0, 5, False) == 5
    m = Method.from_config(c)
    assert m.critic_iterations_before(3) == 300 and m.critic_iterations(2) == 100


def test_non_finite_loss_stops_with_clear_error_and_keeps_last_checkpoint(tmp_path):
    # At lr 100 the toy's metrics first overflow at step 3 (steps 1 and 2 are finite and saved).
    bad = tiny_toy(steps=6, **{"optimizer.learning_rate": 100.0, "optimizer.lr_schedule":
                               "constant"})
    bad.checkpoint_every_steps = 1
    with pytest.raises(NonFiniteError, match=r"non-finite .* in the training metrics at step 3"):
        train.train_and_evaluate(bad, str(tmp_path))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
    state, step = restored(bad, str(tmp_path))
    assert step == 2
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state.d_params))


def test_corrupted_checkpoint_gives_clear_error_and_deletes_nothing(tmp_path):
    train.train_and_evaluate(tiny_toy(steps=2), str(tmp_path))
    ckpt_dir = tmp_path / "checkpoints" / "2"
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    for p in ckpt_dir.rglob("*"):
        if p.is_file() and p.stat().st_size > 0 and "manifest" in p.name:
            p.write_bytes(b"garbage")
    for p in (ckpt_dir / "default" / "d").iterdir():
        p.write_bytes(b"garbage")
    with pytest.raises(checkpoint.CheckpointError, match="checkpoint of step 2 .* is damaged"):
        train.train_and_evaluate(tiny_toy(steps=4), str(tmp_path))
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert before == after


def test_checkpoint_of_another_model_is_refused(tmp_path):
    train.train_and_evaluate(tiny_toy(steps=2), str(tmp_path))
    with pytest.raises(checkpoint.CheckpointError, match="different config"):
        train.train_and_evaluate(tiny_toy(steps=4, **{"model.toy_hidden": 8}), str(tmp_path))


def test_workdir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep me")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        train.train_and_evaluate(tiny_toy(steps=1), str(f))
    assert f.read_text() == "keep me"


def test_mock_tfds_mnist_end_to_end(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    c = wgan_gp.get_config("mnist")
    c.num_train_steps, c.batch_size, c.n_critic = 2, 8, 2
    c.log_every_steps = c.eval.samples.every_steps = c.checkpoint_every_steps = 1
    c.eval.samples.num_images = 4
    c.shuffle_buffer = 10
    with tfds.testing.mock_data(num_examples=40):
        out = train.train_and_evaluate(c, str(tmp_path))
    assert np.isfinite(out.train["em_distance"]) and np.isfinite(out.train["gradient_penalty"])
    assert out.eval == {}  # image runs have no toy evaluator
    assert sorted(os.listdir(tmp_path / "samples")) == ["step_0000001.png", "step_0000002.png"]


def test_seed_mlp_wgan_on_mock_mnist(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    c = wgan.get_config("mnist_mlp")
    c.num_train_steps, c.batch_size = 2, 8
    c.log_every_steps = c.eval.samples.every_steps = c.checkpoint_every_steps = 1
    c.eval.samples.num_images = 4
    c.shuffle_buffer = 10
    with tfds.testing.mock_data(num_examples=40):
        out = train.train_and_evaluate(c, str(tmp_path))
    assert np.isfinite(out.train["em_distance"]) and "gradient_penalty" not in out.train
    state, _ = restored(c, str(tmp_path))
    assert all(np.all(np.abs(np.asarray(p)) <= 0.01 + 1e-9)
               for p in jax.tree.leaves(state.d_params))


def test_mock_tfds_resume_continues_the_data_stream(tmp_path):
    # An image run stopped and resumed sees the same batches as one that never stopped, so its
    # final state matches (15 mock images, 4 per critic step: epochs end mid-batch).
    tfds = pytest.importorskip("tensorflow_datasets")

    def cfg(steps):
        c = wgan_gp.get_config("mnist")
        c.model.arch = "mlp"  # the data stream is under test: the smallest image model
        c.num_train_steps, c.batch_size, c.n_critic = steps, 4, 2
        c.optimizer.lr_schedule = "constant"
        c.log_every_steps = c.eval.samples.every_steps = c.eval.toy.every_steps = 100
        c.checkpoint_every_steps = 2
        c.eval.samples.num_images = 4
        c.shuffle_buffer = 15
        return c

    with tfds.testing.mock_data(num_examples=15):
        stop_resume_matches_uninterrupted(cfg, tmp_path, stop=2, end=5, rtol=1e-5)


def test_run_py_subprocess(tmp_path):
    cache = tmp_path / "xla_cache"
    cmd = [sys.executable, "run.py", "--config=configs/wgan_gp.py", f"--workdir={tmp_path}",
           "--config.num_train_steps=2", "--config.batch_size=16", "--config.model.toy_hidden=8",
           "--config.eval.toy.num_samples=100", "--config.eval.toy.w1_samples=100",
           f"--config.compilation_cache_dir={cache}"]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "devices" in r.stderr and "config" in r.stderr
    final = json.loads((tmp_path / "final_metrics.json").read_text())
    assert final["step"] == 2 and "exact_w1" in final["eval"]
    assert len(os.listdir(cache)) > 0  # the compiled programs were stored
    bad = subprocess.run(cmd[:3] + ["--config.n_critic=-1"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "config.n_critic=-1 is invalid" in bad.stderr


DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION),
                    reason="needs Debian's dataset-fashion-mnist (installed by .ci/run)")
def test_fashion_mnist_from_debian_files(tmp_path, caplog):
    # No preparation by hand: the run finds Debian's original files and prepares the TFDS set.
    data_dir = str(tmp_path / "tfds")
    c = wgan_gp.get_config("fashion_mnist")
    c.data_dir = data_dir
    c.num_train_steps, c.batch_size, c.n_critic = 2, 8, 1
    c.log_every_steps = c.eval.samples.every_steps = c.checkpoint_every_steps = 2
    c.eval.samples.num_images = 4
    c.shuffle_buffer = 100
    # The default evaluators, the classifier's on few images (it has tests of its own).
    assert "classifier" in c.evals
    c.eval.classifier.num_samples, c.eval.reference_num_samples = 100, 200
    c.eval.stats_dir = str(tmp_path / "stats")
    with caplog.at_level("INFO"):
        out = train.train_and_evaluate(c, str(tmp_path / "run"))
    assert np.isfinite(out.train["em_distance"])
    assert np.isfinite(out.eval["frechet_classifier_distance"])
    assert os.path.exists(tmp_path / "run" / "samples" / "step_0000002.png")
    assert any("preparing it from the original files" in r.getMessage() for r in caplog.records)
    assert os.path.isdir(tmp_path / "tfds" / "fashion_mnist")


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION),
                    reason="needs Debian's dataset-fashion-mnist (installed by .ci/run)")
def test_source_dir_config_prepares_from_that_folder(tmp_path):
    import shutil

    from wgan_jax.data import images
    src = tmp_path / "idx"
    shutil.copytree(DEBIAN_FASHION, src)
    data_dir = str(tmp_path / "tfds")
    assert images.prepare_if_missing("fashion_mnist", data_dir, str(src))
    assert not images.prepare_if_missing("fashion_mnist", data_dir, str(src))  # once only
    assert not images.prepare_if_missing("cifar10", data_dir)  # no original files known


def test_missing_dataset_error_says_how_to_get_it(tmp_path):
    # MNIST's original files are not on the machine (no source): the clear error stays.
    from wgan_jax.data.images import DatasetNotFoundError
    c = wgan_gp.get_config("mnist")
    c.data_dir = str(tmp_path / "empty")
    c.batch_size = 8
    with pytest.raises(DatasetNotFoundError, match="local_tfds"):
        train.train_and_evaluate(c, str(tmp_path / "run"))
