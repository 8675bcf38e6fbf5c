"""Images -> Inception-v3 input, in the named preprocessing modes of the reference FID/IS code.

The reference codes all see images as files (uint8 pixels), repeat grey to RGB, resize
bilinearly to 299x299 and scale to about [-1, 1], but they differ in the resize and the scaling,
which changes FID noticeably; so each mode is named after the code it reproduces, and numbers
are only comparable within one mode (`PREPROCESSING_MODES`).

The TensorFlow graph `inception-2015-12-05` (TTUR's FID, the improved-GAN Inception Score) takes
0..255 pixels and does, inside the graph: ResizeBilinear to 299x299 (TF1 legacy,
align_corners=False, no half-pixel centres), Sub 128, Mul 0.0078125 (= 1/128). torch-fidelity
reproduces exactly this (`interpolate_bilinear_2d_like_tensorflow1x`, then `(x - 128) / 128`, with
the comment that the graph really does `(x - 128) * 0.0078125`); TensorFlow's own examples that
feed the graph's "Mul" tensor directly likewise use input_mean = input_std = 128. pytorch-fid
resizes with `F.interpolate(mode='bilinear', align_corners=False)` (half-pixel centres) and
scales by `2 * x / 255 - 1` instead.

All functions are jit-able; `value_range`, `size` and `mode` are static Python values.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

INCEPTION_SIZE = 299
DEFAULT_MODE = "tf1"


@dataclasses.dataclass(frozen=True)
class PreprocessingMode:
    """One named way of turning images into Inception input."""

    resize: str
    scaling: str
    comparable_with: str


PREPROCESSING_MODES = {
    "tf1": PreprocessingMode(
        resize="TF1 tf.compat.v1.image.resize_bilinear(align_corners=False, "
               "half_pixel_centers=False): source pixel = dst * in / out",
        scaling="(x - 128) / 128 on 0..255 pixels, as the inception-2015-12-05 graph does",
        comparable_with="TTUR's original TensorFlow FID code (e.g. the WGAN-GP paper and most "
                        "GAN papers up to ~2020), the improved-GAN Inception Score code, and "
                        "torch-fidelity"),
    "pytorch": PreprocessingMode(
        resize="torch.nn.functional.interpolate(mode='bilinear', align_corners=False): "
               "half-pixel centres, source pixel = (dst + 0.5) * in / out - 0.5, clamped at 0",
        scaling="x / 255 * 2 - 1",
        comparable_with="pytorch-fid (mseitzer/pytorch-fid) and code built on it"),
}


def _check_mode(mode: str) -> None:
    if mode not in PREPROCESSING_MODES:
        raise ValueError(f"unknown preprocessing mode {mode!r}; choose one of "
                         f"{sorted(PREPROCESSING_MODES)}")


def quantize_uint8(images: jax.Array, value_range: tuple[float, float]) -> jax.Array:
    """Float images in `value_range` -> the 0..255 values a PNG of them holds, as float32.

    round(clip((x - lo) / (hi - lo), 0, 1) * 255), as `wgan_jax.visualize.image_grid` writes
    PNGs. The rounding is numpy's/XLA's round-half-to-even; torchvision's `save_image` rounds
    halves up instead, which differs only for values exactly halfway between two levels.
    """
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with low < high, e.g. (0, 1) or "
                         f"(-1, 1), got {value_range}")
    images = jnp.asarray(images, jnp.float32)
    unit = jnp.clip((images - lo) / (hi - lo), 0.0, 1.0)
    return jnp.round(unit * 255.0)


def grey_to_rgb(images: jax.Array) -> jax.Array:
    """NHWC with 1 channel -> 3 channels by repetition; 3 channels are returned unchanged."""
    channels = images.shape[-1]
    if channels == 3:
        return images
    if channels == 1:
        return jnp.repeat(images, 3, axis=-1)
    raise ValueError(f"images must be NHWC with 1 (grey) or 3 (RGB) channels, got shape "
                     f"{images.shape}")


def _axis_weights(in_size: int, out_size: int, mode: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper source indices and the lerp weight of each output pixel on one axis.

    Computed in float32 as the reference kernels do, so that floor() lands on the same pixel.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    dst = np.arange(out_size, dtype=np.float32)
    if mode == "tf1":
        src = dst * scale
    else:
        src = np.maximum((dst + np.float32(0.5)) * scale - np.float32(0.5), np.float32(0))
    floor = np.floor(src)
    lower = np.clip(floor.astype(np.int64), 0, in_size - 1)
    upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    return lower, upper, (src - floor).astype(np.float32)


def _resize_axis(x: jax.Array, axis: int, out_size: int, mode: str) -> jax.Array:
    if x.shape[axis] == out_size:
        return x
    lower, upper, lerp = _axis_weights(x.shape[axis], out_size, mode)
    shape = [1] * x.ndim
    shape[axis] = out_size
    a, b = jnp.take(x, lower, axis=axis), jnp.take(x, upper, axis=axis)
    return a + (b - a) * jnp.asarray(lerp.reshape(shape))


def resize_bilinear(images: jax.Array, size: int | tuple[int, int], mode: str) -> jax.Array:
    """Bilinear resize of NHWC float images to `size` (int or (height, width)), no antialiasing.

    mode "tf1": TF1's `tf.compat.v1.image.resize_bilinear(align_corners=False,
    half_pixel_centers=False)` (source = dst * in / out). mode "pytorch":
    `torch.nn.functional.interpolate(mode='bilinear', align_corners=False)` (half-pixel
    centres). Width is interpolated first, then height, as TensorFlow's kernel does.
    """
    _check_mode(mode)
    if images.ndim != 4:
        raise ValueError(f"images must be NHWC (N, H, W, C), got shape {images.shape}")
    height, width = (size, size) if np.ndim(size) == 0 else tuple(size)
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"size must be a positive int or (height, width), got {size}")
    height, width = int(height), int(width)
    x = jnp.asarray(images, jnp.float32)
    x = _resize_axis(x, 2, width, mode)
    return _resize_axis(x, 1, height, mode)


@functools.partial(jax.jit, static_argnames=("value_range", "resize_mode"))
def _inception_input(images, value_range, resize_mode):
    x = grey_to_rgb(quantize_uint8(images, value_range))
    x = resize_bilinear(x, INCEPTION_SIZE, resize_mode)
    if resize_mode == "tf1":
        # 0.0078125 = 1/128 is a power of two, so this is bit-exact with the graph's Mul.
        return (x - 128.0) * 0.0078125
    return x / 255.0 * 2.0 - 1.0


def inception_input(images: jax.Array, value_range: tuple[float, float],
                    resize_mode: str = DEFAULT_MODE) -> jax.Array:
    """NHWC images (1 or 3 channels) in `value_range` -> float32 (N, 299, 299, 3) in [-1, 1].

    Quantizes to uint8 values, repeats grey to RGB, resizes to 299x299 and scales:
    "tf1" by (x - 128) / 128 (the inception-2015-12-05 graph's own Sub/Mul; 255 -> 0.9921875),
    "pytorch" by x / 255 * 2 - 1 (pytorch-fid's normalize_input). See `PREPROCESSING_MODES`.
    """
    _check_mode(resize_mode)
    if np.ndim(images) != 4:
        raise ValueError(f"images must be NHWC (N, H, W, C), got shape {np.shape(images)}")
    lo, hi = value_range
    return _inception_input(images, (float(lo), float(hi)), resize_mode)
