"""Metric writers without TensorFlow: event files TensorBoard reads, log lines, progress."""
import glob
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from wgan_jax import writers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_event_file_holds_scalars_images_and_hparams(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator
    w = writers.create_writer(str(tmp_path))
    w.write_hparams({"lr": 1e-3, "arch": "toy"})
    w.write_scalars(1, {"em_distance": 0.5, "gp": 2.0})
    w.write_scalars(2, {"em_distance": 0.25})
    picture = np.random.default_rng(0).integers(0, 256, (1, 6, 4, 3), dtype=np.uint8)
    w.write_images(2, {"samples": picture})
    w.close()
    (path,) = glob.glob(str(tmp_path / "events.out.tfevents.*"))
    acc = event_accumulator.EventAccumulator(path, size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    from wgan_jax.experiments.em_vs_quality import read_scalar
    steps, em = read_scalar(str(tmp_path), "em_distance")
    assert steps.tolist() == [1, 2] and em.tolist() == [0.5, 0.25]
    (img,) = acc.Images("samples")
    assert (img.step, img.height, img.width) == (2, 6, 4)
    import io

    from PIL import Image
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(img.encoded_image_string))),
                                  picture[0])
    tags = acc.Tags()
    assert "_hparams_/session_start_info" in tags["tensors"] + tags["scalars"]


def test_log_lines_and_just_logging(tmp_path, caplog):
    w = writers.create_writer(str(tmp_path / "none"), just_logging=True)
    with caplog.at_level(logging.INFO):
        w.write_scalars(7, {"b": 2.0, "a": 1})
    assert "[7] a=1, b=2" in caplog.text
    assert not os.path.exists(tmp_path / "none")  # processes other than 0 write no files


def test_progress_reports_rate_and_uptime():
    class Recorder:
        def __init__(self):
            self.calls = []

        def write_scalars(self, step, scalars):
            self.calls.append((step, scalars))

    rec = Recorder()
    p = writers.Progress(100, rec, every_seconds=0.0)
    p(1)
    p(3)
    (step, values), = rec.calls
    assert step == 3 and values["steps_per_sec"] > 0 and values["uptime"] >= 0


def test_a_toy_run_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from wgan_jax import train\n"
        "from wgan_jax.method import config_with\n"
        "c = config_with({'num_train_steps': 1, 'batch_size': 8, 'model.toy_hidden': 8,\n"
        "                 'eval.toy.num_samples': 50, 'eval.toy.w1_samples': 50})\n"
        f"train.train_and_evaluate(c, {str(tmp_path)!r})\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert glob.glob(str(tmp_path / "events.out.tfevents.*"))


@pytest.mark.parametrize("kind", ["image"])
def test_image_pipeline_still_keeps_tensorflow_off_accelerators(kind):
    from wgan_jax.data import images
    images.hide_accelerators_from_tf()  # idempotent, and the one place TF meets devices
    import tensorflow as tf
    assert tf.config.get_visible_devices("GPU") == []
