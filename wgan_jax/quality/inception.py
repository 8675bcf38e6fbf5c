"""The FID Inception-v3 network (pytorch-fid's `fid_inception_v3`) in Flax linen, inference only.

Layout: torchvision's `Inception3` (Conv2d_1a_3x3 ... Mixed_7c, no aux logits, `fc` of 1008
classes) with pytorch-fid's patched blocks, which reproduce the TensorFlow graph
`inception-2015-12-05` used by the original FID code:

* Mixed_5b-d, Mixed_6b-e and Mixed_7b (FIDInceptionA, FIDInceptionC, FIDInceptionE_1) average-pool
  3x3 stride 1 with padding 1 *excluding* the padded zeros (TensorFlow's 'SAME' average pool);
* Mixed_7c (FIDInceptionE_2) max-pools 3x3 stride 1 with padding 1 instead;
* BasicConv2d is conv (no bias) + batch norm (eps 1e-3, running statistics) + ReLU.

Input: NHWC float images already resized to 299x299 and scaled to [-1, 1]. `InceptionV3` returns
every block's output under torchvision's module names plus "pool3" (N, 2048), the global average
pool that FID uses, and "logits" (N, 1008).

Variables (what `InceptionV3().apply` takes, and what `inception_features`/`extract` call
`params`): `{"params": ..., "batch_stats": ...}`, nested by module name as in the torch state
dict, e.g. `params/Mixed_5b/branch1x1/conv/kernel` (HWIO), `params/Mixed_5b/branch1x1/bn/scale`
and `bias`, `batch_stats/Mixed_5b/branch1x1/bn/mean` and `var`, `params/fc/kernel` (2048, 1008)
and `params/fc/bias`. `convert_inception` builds it from pytorch-fid's weights.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from wgan_jax.quality.batching import batched

INPUT_SIZE = 299
NUM_CLASSES = 1008
BN_EPS = 1e-3
BLOCKS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
          "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
          "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")
OUTPUTS = BLOCKS + ("pool3", "logits")


class InceptionWeightsError(ValueError):
    """A weights file that is missing, unreadable or not the FID Inception-v3."""


def avg_pool_3x3(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average pool, padding 1, padded zeros not counted (TensorFlow's 'SAME')."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                       count_include_pad=False)


def max_pool_3x3(x: jax.Array) -> jax.Array:
    """3x3 stride-1 max pool, padding 1 (FIDInceptionE_2's pool)."""
    return nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """3x3 stride-2 max pool without padding (torch `MaxPool2d(3, stride=2)`)."""
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class BasicConv2d(nn.Module):
    """Conv without bias + BatchNorm(eps=1e-3, running statistics) + ReLU."""

    features: int
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1
    padding: tuple[int, int] = (0, 0)
    precision: str | None = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ph, pw = self.padding
        x = nn.Conv(self.features, self.kernel, strides=(self.stride, self.stride),
                    padding=((ph, ph), (pw, pw)), use_bias=False, precision=self.precision,
                    name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name="bn")(x)
        return nn.relu(x)


class InceptionA(nn.Module):
    """FIDInceptionA (Mixed_5b-d)."""

    pool_features: int
    precision: str | None = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b1 = conv(64, name="branch1x1")(x)
        b5 = conv(48, name="branch5x5_1")(x)
        b5 = conv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
        b3 = conv(64, name="branch3x3dbl_1")(x)
        b3 = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
        b3 = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
        bp = conv(self.pool_features, name="branch_pool")(avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """torchvision InceptionB (Mixed_6a): 35x35 -> 17x17."""

    precision: str | None = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b3 = conv(384, (3, 3), stride=2, name="branch3x3")(x)
        bd = conv(64, name="branch3x3dbl_1")(x)
        bd = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = conv(96, (3, 3), stride=2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
    """FIDInceptionC (Mixed_6b-e)."""

    channels_7x7: int
    precision: str | None = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        c7 = self.channels_7x7
        b1 = conv(192, name="branch1x1")(x)
        b7 = conv(c7, name="branch7x7_1")(x)
        b7 = conv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = conv(c7, name="branch7x7dbl_1")(x)
        bd = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = conv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = conv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = conv(192, name="branch_pool")(avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """torchvision InceptionD (Mixed_7a): 17x17 -> 8x8."""

    precision: str | None = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b3 = conv(192, name="branch3x3_1")(x)
        b3 = conv(320, (3, 3), stride=2, name="branch3x3_2")(b3)
        b7 = conv(192, name="branch7x7x3_1")(x)
        b7 = conv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = conv(192, (3, 3), stride=2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
    """FIDInceptionE_1 (Mixed_7b, pool="avg") and FIDInceptionE_2 (Mixed_7c, pool="max")."""

    pool: str
    precision: str | None = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.pool not in ("avg", "max"):
            raise ValueError(f"InceptionE pool must be 'avg' or 'max', got {self.pool!r}")
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b1 = conv(320, name="branch1x1")(x)
        b3 = conv(384, name="branch3x3_1")(x)
        b3 = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                              conv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], -1)
        bd = conv(448, name="branch3x3dbl_1")(x)
        bd = conv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                              conv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], -1)
        pooled = avg_pool_3x3(x) if self.pool == "avg" else max_pool_3x3(x)
        bp = conv(192, name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
    """pytorch-fid's FID Inception-v3: NHWC images in [-1, 1] -> dict of block outputs.

    `outputs` limits what is returned (and so what XLA keeps alive); the default is all of
    `OUTPUTS`. `precision="highest"` keeps float32 convolutions exact on GPU/TPU (no TF32).
    """

    outputs: Sequence[str] = OUTPUTS
    precision: str | None = "highest"

    @nn.compact
    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected NHWC RGB images (N, H, W, 3), got shape {x.shape}")
        unknown = sorted(set(self.outputs) - set(OUTPUTS))
        if unknown:
            raise ValueError(f"unknown Inception outputs {unknown}; known: {OUTPUTS}")
        p = self.precision
        conv = functools.partial(BasicConv2d, precision=p)
        layers = [
            conv(32, (3, 3), stride=2, name="Conv2d_1a_3x3"),
            conv(32, (3, 3), name="Conv2d_2a_3x3"),
            conv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3"),
            max_pool_3x3_s2,
            conv(80, name="Conv2d_3b_1x1"),
            conv(192, (3, 3), name="Conv2d_4a_3x3"),
            max_pool_3x3_s2,
            InceptionA(32, p, name="Mixed_5b"),
            InceptionA(64, p, name="Mixed_5c"),
            InceptionA(64, p, name="Mixed_5d"),
            InceptionB(p, name="Mixed_6a"),
            InceptionC(128, p, name="Mixed_6b"),
            InceptionC(160, p, name="Mixed_6c"),
            InceptionC(160, p, name="Mixed_6d"),
            InceptionC(192, p, name="Mixed_6e"),
            InceptionD(p, name="Mixed_7a"),
            InceptionE("avg", p, name="Mixed_7b"),
            InceptionE("max", p, name="Mixed_7c"),
        ]
        out = {}
        for name, layer in zip(BLOCKS, layers, strict=True):
            x = layer(x)
            out[name] = x
        out["pool3"] = jnp.mean(x, axis=(1, 2))
        out["logits"] = nn.Dense(NUM_CLASSES, precision=p, name="fc")(out["pool3"])
        return {k: out[k] for k in self.outputs}


@functools.cache
def variable_shapes() -> dict[str, tuple[int, ...]]:
    """Flattened variable paths ('params/Mixed_5b/branch1x1/conv/kernel') -> shapes."""
    # Shapes do not depend on the image size; 75x75 (the smallest valid input) traces faster.
    shapes = jax.eval_shape(InceptionV3().init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, 75, 75, 3), jnp.float32))
    flat = flatten_variables(shapes)
    return {k: tuple(v.shape) for k, v in flat.items()}


def flatten_variables(tree) -> dict:
    """Nested variables -> {'params/a/b/kernel': leaf}."""
    return traverse_util.flatten_dict(tree, sep="/")


def unflatten_variables(flat: dict) -> dict:
    """{'params/a/b/kernel': leaf} -> nested dicts."""
    return traverse_util.unflatten_dict(flat, sep="/")


def _check_images(shape: tuple[int, ...]) -> None:
    if len(shape) != 4 or tuple(shape[1:]) != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ValueError(f"expected images of shape (N, {INPUT_SIZE}, {INPUT_SIZE}, 3) scaled to "
                         f"[-1, 1], got {tuple(shape)}")


@jax.jit
def inception_features(params: dict, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(pool3 (N, 2048), logits (N, 1008)) of 299x299 NHWC images in [-1, 1]."""
    _check_images(images.shape)
    out = InceptionV3(outputs=("pool3", "logits")).apply(params, images)
    return out["pool3"], out["logits"]


def extract(params: dict, images: np.ndarray, batch_size: int = 100
            ) -> tuple[np.ndarray, np.ndarray]:
    """`inception_features` over a numpy array in batches; the last batch is zero-padded so that
    one program is compiled. Returns numpy (pool3, logits) in float32."""
    _check_images(images.shape)
    n = images.shape[0]
    if n and (np.min(images) < -1.001 or np.max(images) > 1.001):
        raise ValueError(f"images must be scaled to [-1, 1], got values in "
                         f"[{np.min(images):.3g}, {np.max(images):.3g}]")
    return batched(lambda b: inception_features(params, b), images, batch_size,
                   (2048, NUM_CLASSES))
