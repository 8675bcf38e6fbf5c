"""Convolutions of the official DCGAN models, written so that every derivative is fast.

The official WGAN-GP models use 5x5 stride-2 'SAME' convolutions (critic) and 5x5 stride-2
'SAME' transposed convolutions (generator); the WGAN paper's DCGAN uses 4x4 ones (padding 1).
The gradient penalty differentiates the critic twice, and on XLA:CPU every derivative that
carries input (lhs) dilation leaves the fast path (the weight gradient of `lax.conv_transpose`
and d/dW of a strided conv's input gradient run 30x slower).

`impl="matmul"` computes the same function as patches + one matrix multiply per output phase:
the patches are cut from a space-to-depth view of the input with stride-1 slices, so forward,
first and second derivatives are all dense matmuls, pads and slices, at the exact FLOP count of
the convolution (no zero taps). `impl="lax"` is the plain XLA convolution (the reference, and
the better choice on GPU/TPU where cuDNN/XLA convolutions have no such slow path).

Parameters keep the official TensorFlow layouts: conv kernels HWIO `(5, 5, cin, cout)`,
transposed-conv kernels `(5, 5, cout, cin)`, so weights and initialisation match the paper's code.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wgan_jax.bf16_dot import bf16_dot

DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
CONV_IMPLS = ("matmul", "lax")
COMPUTE_DTYPES = ("float32", "bfloat16")


def matmul(a: jax.Array, b: jax.Array, compute_dtype: str = "float32") -> jax.Array:
    """`a @ b` (b 2-D) in the compute dtype: float32, or bfloat16 operands with float32
    accumulation and a float32 result: the form GPUs, TPUs and CPUs with bf16 dot units run at
    their bfloat16 rate. In bfloat16 every derivative is a product of that form too
    (`bf16_dot`: cotangents rounded to bfloat16, accumulated in float32); matrix-vector
    products (a side under `bf16_dot.SKINNY`) stay float32."""
    if compute_dtype == "float32":
        return a @ b
    if compute_dtype != "bfloat16":
        raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got {compute_dtype!r}")
    # float32 operands: the rounding happens inside the product, so the cotangent of `a` (e.g.
    # the patches) comes back in float32 without a convert of its own
    y = bf16_dot(a.reshape(-1, a.shape[-1]), b)
    return y.reshape(a.shape[:-1] + (b.shape[1],))


def default_conv_impl() -> str:
    """`matmul` on CPU (avoids XLA:CPU's slow dilated convolutions), `lax` elsewhere."""
    return "matmul" if jax.default_backend() == "cpu" else "lax"


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF/XLA 'SAME' padding (before, after) for one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _check_impl(impl: str) -> None:
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv impl must be one of {CONV_IMPLS}, got {impl!r}")


def _check_channels(x, kernel, in_axis: int, odd: bool = False) -> None:
    """Shapes are static under jit: a mismatch is a clear error at trace time (an `assert`
    would vanish under `python -O`)."""
    if x.shape[-1] != kernel.shape[in_axis] or (odd and kernel.shape[0] % 2 == 0):
        raise ValueError(f"input of shape {x.shape} does not fit kernel of shape {kernel.shape}"
                         f"{' (this layer needs an odd kernel size)' if odd else ''}")


def conv_stride2(x: jax.Array, kernel: jax.Array, impl: str = "matmul",
                 compute_dtype: str = "float32") -> jax.Array:
    """k x k stride-2 'SAME' convolution, NHWC input, HWIO kernel, no bias.

    k = 5 is the official TF models' layer; k = 4 on an even input pads (1, 1), i.e. PyTorch's
    `Conv2d(k=4, stride=2, padding=1)` of the WGAN paper's DCGAN. `compute_dtype` as `matmul`.
    """
    _check_impl(impl)
    if impl == "lax":
        return _lax_conv(x, kernel, (2, 2), compute_dtype)
    _check_channels(x, kernel, 2)
    k, _, _, cout = kernel.shape
    b, h, w, c = x.shape
    oh, ow = -(-h // 2), -(-w // 2)
    half = (k + 1) // 2  # taps per phase along one axis, after space-to-depth
    ph, pw = same_padding(h, k, 2), same_padding(w, k, 2)
    lh, lw = 2 * (oh + half - 1), 2 * (ow + half - 1)  # even lengths covering every tap
    xp = jnp.pad(x, ((0, 0), (ph[0], lh - h - ph[0]), (pw[0], lw - w - pw[0]), (0, 0)))
    # Output (r, s), tap (i, j) reads padded pixel (2r + i, 2s + j). Cut the taps in two stages
    # from a space-to-depth view with stride-1 slices: k row slices, then k column slices of
    # each, concatenated once. Kept per row tap, the transposes (col2im in the backward and in
    # the GP's double backward) sum k small pads per row tap and never materialise k
    # full-size padded copies.
    xs = xp.reshape(b, lh // 2, 2, lw, c)
    rows = [xs[:, i // 2:i // 2 + oh, i % 2].reshape(b, oh, lw // 2, 2, c) for i in range(k)]
    patches = jnp.concatenate([r[:, :, j // 2:j // 2 + ow, j % 2] for j in range(k) for r in rows],
                              axis=-1)
    # features ordered (j, i, c): match with the kernel's (j, i, c) rows
    w2 = jnp.transpose(kernel, (1, 0, 2, 3)).reshape(k * k * c, cout)
    y = matmul(patches.reshape(b * oh * ow, k * k * c), w2, compute_dtype)
    return y.reshape(b, oh, ow, cout)


def _lax_conv(x, kernel, strides, compute_dtype: str) -> jax.Array:
    if compute_dtype == "float32":
        return lax.conv_general_dilated(x, kernel, strides, "SAME",
                                        dimension_numbers=DIMENSION_NUMBERS)
    return lax.conv_general_dilated(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16),
                                    strides, "SAME", dimension_numbers=DIMENSION_NUMBERS,
                                    preferred_element_type=jnp.float32)


def _deconv_taps(k: int) -> dict[int, list[tuple[int, int]]]:
    """For output phase r (output pixel 2m + r): the (tap, input offset d) pairs reading m + d.

    The official transposed conv is the adjoint of the 'SAME' stride-2 conv from 2H to H, so
    input pixel i and tap t land on output pixel 2i + t - p, with p that conv's leading pad.
    """
    p = same_padding(2 * 8, k, 2)[0]  # leading pad of the 2H -> H conv; same for every even 2H
    taps: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    for t in range(k):
        r = (t - p) % 2
        taps[r].append((t, (r + p - t) // 2))
    return taps


def deconv_stride2(x: jax.Array, kernel: jax.Array, impl: str = "matmul",
                   compute_dtype: str = "float32") -> jax.Array:
    """Transposed k x k stride-2 'SAME' conv (TF conv2d_transpose), out = 2x input, no bias.

    `kernel` has TF's transposed-conv layout `(k, k, cout, cin)`. Input pixel i and tap t land on
    output pixel 2i + t - 1 for k = 5 and k = 4 (for k = 4 this is PyTorch's
    `ConvTranspose2d(k=4, stride=2, padding=1)` with its weight (cin, cout, k, k) transposed).
    """
    _check_impl(impl)
    if impl == "lax":
        if compute_dtype == "float32":
            return lax.conv_transpose(x, kernel, (2, 2), "SAME",
                                      dimension_numbers=DIMENSION_NUMBERS, transpose_kernel=True)
        return lax.conv_transpose(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16),
                                  (2, 2), "SAME", dimension_numbers=DIMENSION_NUMBERS,
                                  transpose_kernel=True, preferred_element_type=jnp.float32)
    _check_channels(x, kernel, 3)
    k, _, cout, _ = kernel.shape
    b, h, w, c = x.shape
    taps = _deconv_taps(k)
    lo = -min(d for r in taps for _, d in taps[r])
    hi = max(d for r in taps for _, d in taps[r])
    xp = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
    wt = jnp.swapaxes(kernel, 2, 3)  # (k, k, cin, cout)
    phases = []
    for rh in (0, 1):
        row = []
        for rw in (0, 1):
            cols, mats = [], []
            for th, dh in taps[rh]:
                for tw, dw in taps[rw]:
                    cols.append(xp[:, lo + dh:lo + dh + h, lo + dw:lo + dw + w, :])
                    mats.append(wt[th, tw])
            patches = jnp.concatenate(cols, axis=-1).reshape(b * h * w, len(cols) * c)
            y = matmul(patches, jnp.concatenate(mats, axis=0), compute_dtype)
            row.append(y.reshape(b, h, w, cout))
        phases.append(jnp.stack(row, axis=3))  # (b, h, w, 2[rw], cout)
    y = jnp.stack(phases, axis=2)  # (b, h, 2[rh], w, 2[rw], cout)
    return y.reshape(b, 2 * h, 2 * w, cout)


def conv_stride1(x: jax.Array, kernel: jax.Array, impl: str = "matmul",
                 compute_dtype: str = "float32") -> jax.Array:
    """k x k stride-1 'SAME' convolution (odd k), NHWC input, HWIO kernel, no bias."""
    _check_impl(impl)
    if impl == "lax":
        return _lax_conv(x, kernel, (1, 1), compute_dtype)
    _check_channels(x, kernel, 2, odd=True)
    k, _, _, cout = kernel.shape
    b, h, w, c = x.shape
    p = k // 2
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    rows = [xp[:, i:i + h] for i in range(k)]  # per row tap, as in `conv_stride2`
    patches = jnp.concatenate([r[:, :, j:j + w] for j in range(k) for r in rows], axis=-1)
    w2 = jnp.transpose(kernel, (1, 0, 2, 3)).reshape(k * k * c, cout)
    return matmul(patches.reshape(b * h * w, k * k * c), w2, compute_dtype).reshape(b, h, w, cout)


def uniform_init(scale: float):
    """The official code's init: U(-scale*sqrt(3), scale*sqrt(3)), i.e. std `scale`."""
    bound = float(scale * np.sqrt(3.0))

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def leaky_relu(x: jax.Array, slope: float = 0.2) -> jax.Array:
    """max(slope*x, x) as a mask product: its second derivative sends no zero tensor back."""
    return x * jnp.where(x > 0, 1.0, slope).astype(x.dtype)


def relu(x: jax.Array) -> jax.Array:
    """ReLU as a mask product (see `leaky_relu`)."""
    return x * (x > 0).astype(x.dtype)


def mean_pool2(x: jax.Array) -> jax.Array:
    """Mean of each 2x2 block, NHWC with even H and W: the official ResNets'
    `add_n(x[::2, ::2], x[1::2, ::2], x[::2, 1::2], x[1::2, 1::2]) / 4`. Written as a reshape and
    a sum, so its derivative is a broadcast (strided slices transpose to interior-padded pads)."""
    b, h, w, c = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"mean_pool2 needs an even height and width, got shape {x.shape}")
    return jnp.sum(x.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4)) * 0.25


def upsample2(x: jax.Array) -> jax.Array:
    """The official `UpsampleConv`'s resampling: `depth_to_space(concat([x] * 4, channels), 2)`,
    i.e. every pixel repeated into a 2x2 block (nearest-neighbour), NHWC. A broadcast and a
    reshape, so its derivative is a sum over each block."""
    b, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c)).reshape(
        b, 2 * h, 2 * w, c)
