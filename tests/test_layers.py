"""Tests of wgan_jax.layers: the matmul convolutions against XLA's, numpy references and the
official tap convention, through first and second derivatives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import layers

K = 5
CIN, COUT = 2, 3
# 'SAME' stride-2 pads (before, after) from the reference table, written out by hand.
CONV_PADS = {28: (1, 2), 14: (1, 2), 7: (2, 2), 32: (1, 2), 16: (1, 2), 8: (1, 2)}
DECONV_SIZES = [4, 7, 8, 14, 16, 32]


def _arr(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _close(a, b, rel=1e-5):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(float(np.max(np.abs(b))), 1e-30)
    assert scale > 1e-6, "degenerate reference (all zeros)"
    np.testing.assert_allclose(a, b, rtol=rel, atol=rel * scale)


def _np_conv(x, w, pads, stride=2):
    """Direct correlation with explicit pads: out[r,s] = sum_ij xp[sr+i, ss+j] @ w[i,j]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    k = w.shape[0]
    b, h, _, _ = x.shape
    oh = -(-h // stride)
    xp = np.pad(x, ((0, 0), pads, pads, (0, 0)))
    out = np.zeros((b, oh, oh, w.shape[3]))
    for i in range(k):
        for j in range(k):
            out += xp[:, i:i + stride * oh:stride, j:j + stride * oh:stride, :] @ w[i, j]
    return out


def _np_deconv(x, w):
    """Scatter form of TF conv2d_transpose 'SAME' stride 2: input i, tap t -> output 2i+t-1.

    `w` has TF's transposed-conv layout (k, k, cout, cin)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    k = w.shape[0]
    b, h, _, _ = x.shape
    out = np.zeros((b, 2 * h + k, 2 * h + k, w.shape[2]))  # offset 1: index 2i + t
    for a in range(k):
        for c in range(k):
            out[:, a:a + 2 * h:2, c:c + 2 * h:2, :] += x @ w[a, c].T
    return out[:, 1:1 + 2 * h, 1:1 + 2 * h, :]


def _derivatives(fn, x, w, v, u, dx, dw):
    """Forward value, first derivatives (VJP), the gradient-penalty second derivative and the
    JVP of the VJP, all in one compiled program."""

    def all_(x, w):
        y, vjp = jax.vjp(fn, x, w)
        gx, gw = vjp(v)

        def pen(wk):  # d/dkernel of <d<fn(x, wk), v>/dx, u>
            return jnp.vdot(jax.grad(lambda xx: jnp.vdot(fn(xx, wk), v))(x), u)

        second = jax.grad(pen)(w)
        grad_x = lambda xx, ww: jax.grad(lambda x2: jnp.vdot(fn(x2, ww), v))(xx)  # noqa: E731
        _, jvp_of_vjp = jax.jvp(grad_x, (x, w), (dx, dw))
        return y, gx, gw, second, jvp_of_vjp

    return jax.jit(all_)(x, w)


# ---------------------------------------------------------------- strided conv


# k = 5: the official sizes; k = 4: PyTorch Conv2d(k=4, stride=2, padding=1), pad (1, 1).
CONV_CASES = [(K, size, pads) for size, pads in sorted(CONV_PADS.items())] + \
    [(4, size, (1, 1)) for size in (4, 8, 16)]


@pytest.mark.parametrize("k,size,pads", CONV_CASES)
def test_conv_matmul_equals_lax_and_numpy(k, size, pads):
    assert layers.same_padding(size, k, 2) == pads
    x = _arr(size, (2, size, size, CIN))
    w = _arr(size + 1, (k, k, CIN, COUT))
    oh = -(-size // 2)
    v, u = _arr(size + 2, (2, oh, oh, COUT)), _arr(size + 3, (2, size, size, CIN))
    dx, dw = _arr(size + 4, x.shape), _arr(size + 5, w.shape)
    res = {impl: _derivatives(lambda a, b, i=impl: layers.conv_stride2(a, b, i),
                              x, w, v, u, dx, dw) for impl in layers.CONV_IMPLS}
    assert res["matmul"][0].shape == (2, oh, oh, COUT)
    _close(res["matmul"][0], _np_conv(x, w, pads))
    _close(res["lax"][0], _np_conv(x, w, pads))
    for a, b in zip(res["matmul"], res["lax"], strict=True):
        _close(a, b)


def test_conv_same_padding_table():
    for size, pads in CONV_PADS.items():
        assert layers.same_padding(size, K, 2) == pads


# ---------------------------------------------------------------- transposed conv


# k = 4 is PyTorch's ConvTranspose2d(k=4, stride=2, padding=1): input i, tap t -> 2i + t - 1,
# the same rule as the official k = 5 layer.
@pytest.mark.parametrize("k,size", [(K, size) for size in DECONV_SIZES] +
                         [(4, size) for size in (4, 8, 16)])
def test_deconv_matmul_equals_lax_and_numpy(k, size):
    x = _arr(size, (2, size, size, CIN))
    w = _arr(size + 1, (k, k, COUT, CIN))
    v, u = _arr(size + 2, (2, 2 * size, 2 * size, COUT)), _arr(size + 3, x.shape)
    dx, dw = _arr(size + 4, x.shape), _arr(size + 5, w.shape)
    res = {impl: _derivatives(lambda a, b, i=impl: layers.deconv_stride2(a, b, i),
                              x, w, v, u, dx, dw) for impl in layers.CONV_IMPLS}
    assert res["matmul"][0].shape == (2, 2 * size, 2 * size, COUT)
    _close(res["matmul"][0], _np_deconv(x, w))
    _close(res["lax"][0], _np_deconv(x, w))
    for a, b in zip(res["matmul"], res["lax"], strict=True):
        _close(a, b)


@pytest.mark.parametrize("impl", layers.CONV_IMPLS)
@pytest.mark.parametrize("h", [4, 7])
def test_deconv_official_tap_convention(impl, h):
    # Batch entry n has a single 1 at input pixel (i, j) = divmod(n, h); output channel c has a
    # single 1 at tap (a, b) = divmod(c, 5). Output pixel must be (2i + a - 1, 2j + b - 1).
    x = np.zeros((h * h, h, h, 1), np.float32)
    for n in range(h * h):
        x[(n, *divmod(n, h), 0)] = 1.0
    w = np.zeros((K, K, K * K, 1), np.float32)
    for c in range(K * K):
        w[(*divmod(c, K), c, 0)] = 1.0
    y = np.asarray(jax.jit(layers.deconv_stride2, static_argnums=2)(
        jnp.asarray(x), jnp.asarray(w), impl))
    assert y.shape == (h * h, 2 * h, 2 * h, K * K)
    for n in range(h * h):
        i, j = divmod(n, h)
        for c in range(K * K):
            a, b = divmod(c, K)
            want = np.zeros((2 * h, 2 * h), np.float32)
            r, s = 2 * i + a - 1, 2 * j + b - 1
            if 0 <= r < 2 * h and 0 <= s < 2 * h:
                want[r, s] = 1.0
            np.testing.assert_array_equal(y[n, :, :, c], want, err_msg=f"{(i, j, a, b)}")


# ---------------------------------------------------------------- stride-1 conv (extra layers)


@pytest.mark.parametrize("size", [4, 7])
def test_conv_stride1_matmul_equals_lax_and_numpy(size):
    x = _arr(size, (2, size, size, CIN))
    w = _arr(size + 1, (3, 3, CIN, COUT))
    v, u = _arr(size + 2, (2, size, size, COUT)), _arr(size + 3, x.shape)
    dx, dw = _arr(size + 4, x.shape), _arr(size + 5, w.shape)
    res = {impl: _derivatives(lambda a, b, i=impl: layers.conv_stride1(a, b, i),
                              x, w, v, u, dx, dw) for impl in layers.CONV_IMPLS}
    _close(res["matmul"][0], _np_conv(x, w, (1, 1), stride=1))
    for a, b in zip(res["matmul"], res["lax"], strict=True):
        _close(a, b)


def test_unknown_impl_rejected():
    x, w = jnp.zeros((1, 4, 4, 1)), jnp.zeros((K, K, 1, 1))
    with pytest.raises(ValueError):
        layers.conv_stride2(x, w, "cudnn")
    with pytest.raises(ValueError):
        layers.deconv_stride2(x, w, "cudnn")


# ---------------------------------------------------------------- activations


def test_activation_values_and_slopes():
    x = jnp.array([-2.0, -0.5, 0.25, 3.0])
    np.testing.assert_allclose(np.asarray(layers.leaky_relu(x)), [-0.4, -0.1, 0.25, 3.0],
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(layers.leaky_relu(x, 0.1)), [-0.2, -0.05, 0.25, 3.0],
                               rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(layers.relu(x)), [0.0, 0.0, 0.25, 3.0])
    np.testing.assert_allclose(np.asarray(jax.grad(lambda v: layers.leaky_relu(v).sum())(x)),
                               [0.2, 0.2, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(jax.grad(lambda v: layers.relu(v).sum())(x)),
                                  [0.0, 0.0, 1.0, 1.0])
    # equals max(0.2 x, x) everywhere
    z = _arr(0, (100,))
    np.testing.assert_allclose(np.asarray(layers.leaky_relu(z)),
                               np.maximum(0.2 * np.asarray(z), np.asarray(z)), rtol=1e-6)


@pytest.mark.parametrize("fn", [layers.relu, layers.leaky_relu])
def test_activation_second_derivative_is_zero(fn):
    x = jnp.array([-2.0, -0.5, 0.25, 3.0, -1e-3, 1e-3])
    hess = jax.jit(jax.hessian(lambda v: fn(v).sum()))(x)
    np.testing.assert_array_equal(np.asarray(hess), np.zeros((6, 6)))
    # whereas a smooth stand-in (softplus) would not be zero: the check can fail
    assert float(jnp.abs(jax.hessian(lambda v: jax.nn.softplus(v).sum())(x)).max()) > 0


@pytest.mark.parametrize("fn,kernel_shape", [
    (layers.conv_stride2, (5, 5, 3, 8)), (layers.deconv_stride2, (5, 5, 8, 3)),
    (layers.conv_stride1, (3, 3, 3, 8)), (layers.conv_stride1, (4, 4, 2, 8))])
def test_shape_mismatch_is_a_clear_error(fn, kernel_shape):
    # Channels that do not fit the kernel (2 in, or an even stride-1 kernel): a ValueError
    # naming both shapes, also under `python -O` (not an assert).
    x = jnp.zeros((1, 8, 8, 2))
    with pytest.raises(ValueError, match="does not fit kernel of shape"):
        fn(x, jnp.zeros(kernel_shape))
