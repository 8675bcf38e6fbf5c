"""Preprocessing for Inception: quantization, grey->RGB, the two bilinear resizes against
TensorFlow and hand-computed values, and the final scaling of each mode."""
import jax
import numpy as np
import pytest

from wgan_jax.quality.preprocess import (
    DEFAULT_MODE,
    PREPROCESSING_MODES,
    grey_to_rgb,
    inception_input,
    quantize_uint8,
    resize_bilinear,
)


@pytest.fixture(scope="module")
def tf():
    tf = pytest.importorskip("tensorflow")
    tf.config.set_visible_devices([], "GPU")
    return tf


def _tf_resize(tf, x, size, mode):
    if mode == "tf1":
        out = tf.compat.v1.image.resize_bilinear(x, size, align_corners=False,
                                                 half_pixel_centers=False)
    else:  # TF2's resize has half-pixel centres, like torch's align_corners=False
        out = tf.image.resize(x, size, method="bilinear", antialias=False)
    return out.numpy()


# ---- quantize_uint8 / grey_to_rgb ---------------------------------------------------------------

def test_quantize_unit_range_exact_values():
    x = np.array([0.0, 1.0, 0.4 / 255, 0.6 / 255, 100.0 / 255, 0.5, -0.2, 1.3], np.float32)
    got = np.asarray(quantize_uint8(x, (0, 1)))
    assert got.dtype == np.float32
    # 0.5 * 255 = 127.5 rounds half to even: 128.
    np.testing.assert_array_equal(got, [0, 255, 0, 1, 100, 128, 0, 255])


def test_quantize_symmetric_range_exact_values():
    x = np.array([-1.0, 1.0, 0.0, 2 * 200 / 255 - 1, -3.0, 3.0], np.float32)
    np.testing.assert_array_equal(np.asarray(quantize_uint8(x, (-1, 1))),
                                  [0, 255, 128, 200, 0, 255])


def test_quantize_agrees_with_uint8_pixels_in_either_range():
    u = np.arange(256, dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(quantize_uint8(u / 255, (0, 1))), u)
    np.testing.assert_array_equal(np.asarray(quantize_uint8(u / 127.5 - 1, (-1, 1))), u)


@pytest.mark.parametrize("bad", [(1, 0), (0.5, 0.5)])
def test_quantize_bad_range_raises(bad):
    with pytest.raises(ValueError, match="value_range"):
        quantize_uint8(np.zeros(3), bad)


def test_grey_to_rgb():
    grey = np.arange(6, dtype=np.float32).reshape(1, 2, 3, 1)
    rgb = np.asarray(grey_to_rgb(grey))
    assert rgb.shape == (1, 2, 3, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], grey[..., 0])
    colour = np.random.default_rng(0).uniform(size=(2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(grey_to_rgb(colour)), colour)


@pytest.mark.parametrize("channels", [2, 4])
def test_grey_to_rgb_other_channel_counts_raise(channels):
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(RGB\\)"):
        grey_to_rgb(np.zeros((1, 4, 4, channels)))


# ---- resize_bilinear ----------------------------------------------------------------------------

def test_resize_hand_computed_1x2_to_1x4():
    x = np.array([0.0, 100.0], np.float32).reshape(1, 1, 2, 1)
    # tf1: source x = 0, 0.5, 1, 1.5 (clamped to the last pixel).
    np.testing.assert_allclose(np.asarray(resize_bilinear(x, (1, 4), "tf1")).ravel(),
                               [0, 50, 100, 100])
    # pytorch: source x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (last pixel).
    np.testing.assert_allclose(np.asarray(resize_bilinear(x, (1, 4), "pytorch")).ravel(),
                               [0, 25, 75, 100])


def test_resize_hand_computed_2x2_is_separable():
    x = np.array([[0.0, 100.0], [40.0, 200.0]], np.float32).reshape(1, 2, 2, 1)
    got = np.asarray(resize_bilinear(x, 4, "pytorch"))[0, ..., 0]
    w = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])  # pytorch weights from above
    np.testing.assert_allclose(got, w @ x[0, ..., 0] @ w.T, rtol=1e-6)


@pytest.mark.parametrize("mode", ["tf1", "pytorch"])
@pytest.mark.parametrize("shape,size", [((2, 28, 28, 1), (299, 299)), ((2, 32, 32, 3), (299, 299)),
                                        ((1, 64, 48, 2), (20, 37)), ((1, 5, 7, 1), (13, 3))])
def test_resize_matches_tensorflow(tf, mode, shape, size):
    x = np.random.default_rng(1).integers(0, 256, size=shape).astype(np.float32)
    np.testing.assert_allclose(np.asarray(resize_bilinear(x, size, mode)),
                               _tf_resize(tf, x, size, mode), atol=1e-4, rtol=0)


def test_resize_modes_differ_a_lot_at_32_to_299():
    # A sharp edge, as in digit strokes: the modes sample it 0.45 input pixels apart.
    edge = np.zeros((1, 32, 32, 1), np.float32)
    edge[:, :, 16:] = 255.0
    for x in (edge, np.random.default_rng(2).integers(0, 256, (1, 32, 32, 3)).astype(np.float32)):
        tf1 = np.asarray(resize_bilinear(x, 299, "tf1"))
        torch_like = np.asarray(resize_bilinear(x, 299, "pytorch"))
        assert np.abs(tf1 - torch_like).max() > 10


def test_resize_same_size_is_identity_and_jits():
    x = np.random.default_rng(3).uniform(size=(1, 6, 5, 3)).astype(np.float32)
    for mode in PREPROCESSING_MODES:
        np.testing.assert_array_equal(np.asarray(resize_bilinear(x, (6, 5), mode)), x)
    jitted = jax.jit(lambda a: resize_bilinear(a, 11, "tf1"))
    np.testing.assert_allclose(np.asarray(jitted(x)), np.asarray(resize_bilinear(x, 11, "tf1")),
                               rtol=1e-6)


def test_resize_errors():
    with pytest.raises(ValueError, match="unknown preprocessing mode 'torch'"):
        resize_bilinear(np.zeros((1, 4, 4, 1)), 8, "torch")
    with pytest.raises(ValueError, match="NHWC"):
        resize_bilinear(np.zeros((4, 4, 1)), 8, "tf1")
    with pytest.raises(ValueError, match="size must be"):
        resize_bilinear(np.zeros((1, 4, 4, 1)), (0, 8), "tf1")
    assert resize_bilinear(np.zeros((1, 4, 4, 1)), np.int64(6), "tf1").shape == (1, 6, 6, 1)


# ---- inception_input ----------------------------------------------------------------------------

def test_modes_are_described_and_tf1_is_default():
    assert DEFAULT_MODE == "tf1"
    assert set(PREPROCESSING_MODES) == {"tf1", "pytorch"}
    assert "torch-fidelity" in PREPROCESSING_MODES["tf1"].comparable_with
    assert "pytorch-fid" in PREPROCESSING_MODES["pytorch"].comparable_with


@pytest.mark.parametrize("pixel,tf1,pytorch", [(0, -1.0, -1.0), (255, 127 / 128, 1.0),
                                               (200, 72 / 128, 200 / 255 * 2 - 1)])
def test_inception_input_scaling_of_each_mode(pixel, tf1, pytorch):
    x = np.full((1, 3, 3, 1), pixel / 255, np.float32)
    for mode, expected in (("tf1", tf1), ("pytorch", pytorch)):
        out = np.asarray(inception_input(x, (0, 1), mode))
        assert out.shape == (1, 299, 299, 3) and out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_inception_input_default_mode_is_tf1():
    x = np.random.default_rng(4).uniform(size=(1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(inception_input(x, (0, 1))),
                                  np.asarray(inception_input(x, (0, 1), "tf1")))


def test_inception_input_pipeline_steps_and_ranges():
    u = np.random.default_rng(5).integers(0, 256, size=(2, 28, 28, 1)).astype(np.float32)
    for mode in PREPROCESSING_MODES:
        grey = np.asarray(inception_input(u / 255, (0, 1), mode))
        signed = np.asarray(inception_input(u / 127.5 - 1, (-1, 1), mode))
        rgb = np.asarray(inception_input(np.repeat(u, 3, -1) / 255, (0, 1), mode))
        np.testing.assert_array_equal(grey, signed)
        np.testing.assert_array_equal(grey, rgb)
        assert -1.0 <= grey.min() and grey.max() <= 1.0
        resized = np.asarray(resize_bilinear(np.repeat(u, 3, -1), 299, mode))
        scaled = (resized - 128) / 128 if mode == "tf1" else resized / 255 * 2 - 1
        np.testing.assert_allclose(grey, scaled, atol=1e-6)


def test_inception_input_errors():
    with pytest.raises(ValueError, match="unknown preprocessing mode"):
        inception_input(np.zeros((1, 4, 4, 1)), (0, 1), "bicubic")
    with pytest.raises(ValueError, match="NHWC"):
        inception_input(np.zeros((4, 4)), (0, 1))
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(RGB\\)"):
        inception_input(np.zeros((1, 4, 4, 2)), (0, 1))
