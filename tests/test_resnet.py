"""The ResNets ('resnet32': gan_cifar_resnet.py; 'resnet64': gan_64x64.py's GoodGenerator /
GoodDiscriminator): every variable's shape and the parameter counts derived by hand from the
official code, tflib's initialisation per layer, the resampling layers and stride-1 convs against
the official forms and XLA's convolution in float64 (through second derivatives), and every block
and whole network against a float64 numpy forward."""

import math

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax import layers
from wgan_jax.models import build_models
from wgan_jax.models.resnet_blocks import OptimizedBlock, ResidualBlock
from wgan_jax.state import param_count

# ---------------------------------------------------------------- shapes and counts


def _flat_shapes(tree):
    return {"/".join(k): tuple(v.shape) for k, v in flax.traverse_util.flatten_dict(tree).items()}


def _model_shapes(arch, **kw):
    m = build_models(arch, conv_impl="lax", generator_norm="batch", **kw)
    z, x = jnp.zeros((2, 128)), jnp.zeros((2,) + m.data_shape)
    y = jnp.zeros(2, jnp.int32)
    g = jax.eval_shape(m.generator.init, jax.random.key(0), z, y)["params"]
    d = jax.eval_shape(m.critic.init, jax.random.key(0), x, y)["params"]
    return g, d


def _conv(name, k, cin, cout, bias=True):
    out = {f"{name}/kernel": (k, k, cin, cout)}  # tflib Conv2D filters are HWIO
    if bias:
        out[f"{name}/bias"] = (cout,)
    return out


def _norm(name, c, classes=0):
    # tflib Batchnorm / Layernorm: scale and offset per channel; cond_batchnorm: per class
    if classes:
        return {f"{name}/scale": (classes, c), f"{name}/offset": (classes, c)}
    return {f"{name}/scale": (c,), f"{name}/bias": (c,)}


def _resnet32_shapes(dim=128, classes=0, acgan=False):
    """gan_cifar_resnet.py, read layer by layer (the official names in the comments)."""
    g = {"input/kernel": (128, 4 * 4 * dim), "input/bias": (4 * 4 * dim,)}  # Generator.Input
    for i in (1, 2, 3):  # Generator.1-3: ResidualBlock(DIM_G, DIM_G, 3, resample='up')
        b = f"block_{i}/"
        g |= _conv(b + "shortcut", 1, dim, dim)  # UpsampleConv 1x1, he_init=False, biases
        g |= _norm(b + "norm_1", dim, classes)  # N1 (cond_batchnorm when conditional)
        g |= _conv(b + "conv_1", 3, dim, dim)  # UpsampleConv 3x3, biases default True
        g |= _norm(b + "norm_2", dim, classes)  # N2
        g |= _conv(b + "conv_2", 3, dim, dim)  # Conv2D 3x3
    g |= _norm("output_norm", dim)  # Generator.OutputN: Normalize without labels
    g |= _conv("output", 3, dim, 3)  # Generator.Output, he_init=False
    d = {}
    d |= _conv("block_1/shortcut", 1, 3, dim)  # OptimizedResBlockDisc1: MeanPoolConv 1x1
    d |= _conv("block_1/conv_1", 3, 3, dim)  # Conv2D 3 -> DIM_D
    d |= _conv("block_1/conv_2", 3, dim, dim)  # ConvMeanPool
    d |= _conv("block_2/shortcut", 1, dim, dim)  # Discriminator.2, 'down': ConvMeanPool 1x1
    for i in (2, 3, 4):  # .3, .4: resample None, in == out: identity shortcut, no params
        d |= _conv(f"block_{i}/conv_1", 3, dim, dim) | _conv(f"block_{i}/conv_2", 3, dim, dim)
    d |= {"output/kernel": (dim, 1), "output/bias": (1,)}  # Discriminator.Output
    if acgan:
        d |= {"acgan_output/kernel": (dim, 10), "acgan_output/bias": (10,)}  # ACGANOutput
    return g, d


def _resnet64_shapes(dim=64):
    """gan_64x64.py's GoodGenerator / GoodDiscriminator with its ResidualBlock (conv_1 has
    biases=False), MODE 'wgan-gp' (layer norm in the critic)."""
    g = {"input/kernel": (128, 4 * 4 * 8 * dim), "input/bias": (4 * 4 * 8 * dim,)}
    widths = [8 * dim, 8 * dim, 4 * dim, 2 * dim, dim]
    # Generator.Res1-4, 'up'
    for i, (cin, cout) in enumerate(zip(widths, widths[1:], strict=False), 1):
        b = f"block_{i}/"
        g |= _conv(b + "shortcut", 1, cin, cout)  # UpsampleConv 1x1, he_init=False
        g |= _norm(b + "norm_1", cin)  # BN1
        g |= _conv(b + "conv_1", 3, cin, cout, bias=False)  # UpsampleConv, biases=False
        g |= _norm(b + "norm_2", cout)  # BN2
        g |= _conv(b + "conv_2", 3, cout, cout)  # Conv2D out -> out
    g |= _norm("output_norm", dim) | _conv("output", 3, dim, 3)  # OutputN, Output (he_init)
    d = _conv("input", 3, 3, dim)  # Discriminator.Input, he_init=False
    widths = [dim, 2 * dim, 4 * dim, 8 * dim, 8 * dim]
    # Discriminator.Res1-4, 'down'
    for i, (cin, cout) in enumerate(zip(widths, widths[1:], strict=False), 1):
        b = f"block_{i}/"
        d |= _conv(b + "shortcut", 1, cin, cout)  # MeanPoolConv 1x1, he_init=False
        d |= _norm(b + "norm_1", cin)  # BN1 -> Layernorm([1,2,3]), per-channel scale/offset
        d |= _conv(b + "conv_1", 3, cin, cin, bias=False)  # Conv2D in -> in, biases=False
        d |= _norm(b + "norm_2", cin)  # BN2
        d |= _conv(b + "conv_2", 3, cin, cout)  # ConvMeanPool in -> out
    d |= {"output/kernel": (4 * 4 * 8 * dim, 1), "output/bias": (1,)}
    return g, d


def test_resnet32_variables_and_counts():
    g, d = _model_shapes("resnet32")
    want_g, want_d = _resnet32_shapes()
    assert _flat_shapes(g) == want_g and _flat_shapes(d) == want_d
    # By hand: G = Linear 128*2048 + 2048 = 264,192; per up block shortcut 128*128 + 128 =
    # 16,512, two 3x3 convs 2 * (9*128*128 + 128) = 295,168, two BNs 2 * 256 = 512, so 312,192
    # and 936,576 for three; output BN 256; output conv 9*128*3 + 3 = 3,459.
    assert param_count(g) == 264_192 + 3 * (16_512 + 295_168 + 512) + 256 + 3_459 == 1_204_483
    # D = first block (3*128 + 128) + (9*3*128 + 128) + (9*128*128 + 128) = 151,680; 'down'
    # block 16,512 + 295,168 = 311,680; two identity blocks 2 * 295,168; Linear 128 + 1.
    assert param_count(d) == 151_680 + 311_680 + 2 * 295_168 + 129 == 1_053_825


def test_resnet32_acgan_variables_and_counts():
    g, d = _model_shapes("resnet32", conditioning="acgan", num_classes=10)
    want_g, want_d = _resnet32_shapes(classes=10, acgan=True)
    assert _flat_shapes(g) == want_g and _flat_shapes(d) == want_d
    # six conditional BNs hold 10 x (scale, offset) rows of 128 instead of one: + 6 * 9 * 256
    assert param_count(g) == 1_204_483 + 6 * 9 * 256 == 1_218_307
    assert param_count(d) == 1_053_825 + 128 * 10 + 10 == 1_055_115


def test_resnet64_variables_and_counts():
    g, d = _model_shapes("resnet64", critic_norm="layer")
    want_g, want_d = _resnet64_shapes()
    assert _flat_shapes(g) == want_g and _flat_shapes(d) == want_d

    def up(cin, cout):  # shortcut + BN1 + conv_1 (no bias) + BN2 + conv_2
        return cin * cout + cout + 2 * cin + 9 * cin * cout + 2 * cout + 9 * cout * cout + cout

    def down(cin, cout):  # shortcut + LN1 + conv_1 (no bias) + LN2 + conv_2
        return cin * cout + cout + 2 * cin + 9 * cin * cin + 2 * cin + 9 * cin * cout + cout

    assert up(512, 512) == 4_983_808 and up(512, 256) == 1_902_592
    n_g = 128 * 8192 + 8192 + up(512, 512) + up(512, 256) + up(256, 128) + up(128, 64) \
        + 128 + 9 * 64 * 3 + 3
    n_d = 9 * 3 * 64 + 64 + down(64, 128) + down(128, 256) + down(256, 512) + down(512, 512) \
        + 8192 + 1
    assert param_count(g) == n_g == 8_540_483
    assert param_count(d) == n_d == 7_491_841


def test_resnet32_follows_the_data_channels():
    m = build_models("resnet32", width=8, channels=1, generator_norm="batch", conv_impl="lax")
    assert m.data_shape == (32, 32, 1)
    z, x = jnp.zeros((2, 128)), jnp.zeros((2, 32, 32, 1))
    g = jax.eval_shape(m.generator.init, jax.random.key(0), z)
    out = jax.eval_shape(lambda v: m.generator.apply(v, z, mutable=["batch_stats"])[0], g)
    assert out.shape == (2, 32, 32, 1)
    d = jax.eval_shape(m.critic.init, jax.random.key(0), x)["params"]
    assert d["block_1"]["conv_1"]["kernel"].shape == (3, 3, 1, 8)
    with pytest.raises(ValueError, match="image channels"):
        build_models("resnet32", channels=2)
    with pytest.raises(ValueError, match="only the ResNets"):
        build_models("cifar", width=8)
    with pytest.raises(ValueError, match="width must be >= 0"):
        build_models("resnet64", width=-1)


# ---------------------------------------------------------------- initialisation


def _tflib_std(arch, net, path, shape):
    """The std tflib gives the kernel at `path`: conv he_init sqrt(4 / (fan_in + fan_out)),
    else sqrt(2 / (fan_in + fan_out)), fans cin k^2 and cout k^2 (stride 1); Linear Glorot."""
    if len(shape) == 2:
        return math.sqrt(2.0 / sum(shape))
    k, _, cin, cout = shape
    glorot = ("shortcut" in path or (arch, net, path) in {
        ("resnet32", "g", "output"), ("resnet64", "d", "input")})
    return math.sqrt((2.0 if glorot else 4.0) / (cin * k * k + cout * k * k))


@pytest.mark.parametrize("arch", ["resnet32", "resnet64"])
def test_every_kernel_gets_tflibs_scale(arch, monkeypatch):
    # The sampler writes its scale into the kernel, so an init shows what each layer asked for.
    monkeypatch.setattr(layers, "uniform_init", lambda scale: lambda key, shape, dtype=jnp.float32:
                        jnp.full(shape, scale, dtype))
    m = build_models(arch, width=8, conv_impl="lax", generator_norm="batch",
                     critic_norm="layer" if arch == "resnet64" else "none")
    z, x = jnp.zeros((2, 128)), jnp.zeros((2,) + m.data_shape)
    seen = 0
    for net, module, inp in (("g", m.generator, z), ("d", m.critic, x)):
        params = jax.jit(module.init)(jax.random.key(0), inp)["params"]
        for key, leaf in flax.traverse_util.flatten_dict(params).items():
            path, leaf = "/".join(key[:-1]), np.asarray(leaf)
            if key[-1] == "kernel":
                want = _tflib_std(arch, net, path, leaf.shape)
                np.testing.assert_allclose(leaf, want, rtol=1e-6, err_msg=path)
                seen += 1
            else:  # biases and norm offsets 0, norm scales 1
                np.testing.assert_array_equal(leaf, 1.0 if key[-1] == "scale" else 0.0, path)
    # G: input + 3 kernels per block + output; D: 3 + 3 + 2 + 2 block kernels + output
    # (resnet32), input + 3 per block + output (resnet64)
    assert seen == {"resnet32": (1 + 3 * 3 + 1) + (3 + 3 + 2 + 2 + 1),
                    "resnet64": (1 + 4 * 3 + 1) + (1 + 4 * 3 + 1)}[arch]


# ---------------------------------------------------------------- layers


def _derivatives(fn, args, v, u):
    """Value, VJP, and the penalty's second derivative d/dkernel <d<fn, v>/dx, u> (x first;
    its own derivative is zero for a bilinear fn)."""

    def all_(*a):
        y, vjp = jax.vjp(fn, *a)

        def pen(*b):
            return jnp.vdot(jax.grad(lambda x0: jnp.vdot(fn(x0, *b[1:]), v))(b[0]), u)

        return y, vjp(v), jax.grad(pen, argnums=tuple(range(1, len(a))))(*a)

    return jax.jit(all_)(*args)


def _rand(seed, shape):
    return np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize("k,size", [(1, 4), (3, 4), (3, 8)])
def test_conv_stride1_matmul_equals_xla_in_float64(k, size):
    with jax.enable_x64(True):
        x, w = _rand(0, (2, size, size, 3)), _rand(1, (k, k, 3, 5))
        v, u = _rand(2, (2, size, size, 5)), _rand(3, x.shape)
        got = _derivatives(lambda a, b: layers.conv_stride1(a, b, "matmul"), (x, w), v, u)
        ref = _derivatives(lambda a, b: jax.lax.conv_general_dilated(
            a, b, (1, 1), "SAME", dimension_numbers=layers.DIMENSION_NUMBERS), (x, w), v, u)
        assert got[0].dtype == jnp.float64
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
            assert np.abs(np.asarray(b)).max() > 1e-3
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


def _np_mean_pool(x):
    """gan_cifar_resnet.py's ConvMeanPool pooling (NHWC): add_n of four strided slices / 4
    (numpy or traced arrays)."""
    return (x[:, ::2, ::2] + x[:, 1::2, ::2] + x[:, ::2, 1::2] + x[:, 1::2, 1::2]) / 4.0


def _np_depth_to_space(x, block=2):
    """tf.depth_to_space (NHWC): out[b, bh*i + r, bw*j + s, c] = x[b, i, j, (r*block + s)*C + c]."""
    b, h, w, cb = x.shape
    c = cb // block ** 2
    return x.reshape(b, h, w, block, block, c).transpose(0, 1, 3, 2, 4, 5).reshape(
        b, h * block, w * block, c)


def _np_upsample(x):
    """UpsampleConv's resampling: concat([x] * 4, channels), then depth_to_space(2)."""
    return _np_depth_to_space(np.concatenate([x] * 4, axis=-1))


def test_mean_pool_and_upsample_equal_the_official_forms_in_float64():
    with jax.enable_x64(True):
        x = _rand(4, (2, 6, 4, 3))
        np.testing.assert_allclose(np.asarray(layers.mean_pool2(x)), _np_mean_pool(x),
                                   rtol=1e-15)
        # distinct channels: a wrong depth_to_space order would move values between channels
        np.testing.assert_array_equal(np.asarray(layers.upsample2(x)), _np_upsample(x))
        # derivatives (first, and the penalty's second through a conv) equal those of the
        # official strided-slice / concat forms
        w = _rand(5, (3, 3, 3, 2))
        for ours, official, out in (
                (layers.mean_pool2, _np_mean_pool, (2, 3, 2, 2)),
                (layers.upsample2, _jnp_upsample, (2, 12, 8, 2))):
            v, u = _rand(6, out), _rand(7, x.shape)
            got = _derivatives(lambda a, b, r=ours: layers.conv_stride1(r(a), b, "matmul"),
                               (x, w), v, u)
            ref = _derivatives(lambda a, b, r=official: layers.conv_stride1(r(a), b, "matmul"),
                               (x, w), v, u)
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="even height and width"):
        layers.mean_pool2(jnp.zeros((1, 5, 4, 1)))


def _jnp_upsample(x):
    """`_np_upsample` for traced arrays."""
    b, h, w, c = x.shape
    t = jnp.concatenate([x] * 4, axis=-1).reshape(b, h, w, 2, 2, c)
    return t.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c)


# ---------------------------------------------------------------- float64 numpy forward


def _np_conv(x, p):
    """Stride-1 'SAME' correlation (odd k) + bias, float64, as tf.nn.conv2d."""
    w = p["kernel"]
    k = w.shape[0]
    b, h, wd, _ = x.shape
    xp = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    out = sum(xp[:, i:i + h, j:j + wd] @ w[i, j] for i in range(k) for j in range(k))
    return out + p.get("bias", 0.0)


def _np_relu(x):
    return np.maximum(x, 0.0)


def _np_bn(x, p, y=None):
    axes = tuple(range(x.ndim - 1))
    xn = (x - x.mean(axes)) / np.sqrt(x.var(axes) + 1e-5)
    if y is None:
        return xn * p["scale"] + p["bias"]
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
    return xn * p["scale"][y].reshape(shape) + p["offset"][y].reshape(shape)


def _np_ln(x, p):
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    var = x.var(axis=(1, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * p["scale"] + p["bias"]


def _np_block(x, p, resample, official, norm=None):
    """The official ResidualBlock (both files) in float64 numpy; `norm(h, params)` or None."""
    nrm = norm or (lambda h, _: h)
    if resample == "up":
        skip = _np_conv(_np_upsample(x), p["shortcut"])
    elif resample == "down":
        skip = (_np_conv(_np_mean_pool(x), p["shortcut"]) if official == "64x64"
                else _np_mean_pool(_np_conv(x, p["shortcut"])))
    else:
        skip = _np_conv(x, p["shortcut"]) if "shortcut" in p else x
    h = _np_relu(nrm(x, p.get("norm_1")))
    h = _np_conv(_np_upsample(h) if resample == "up" else h, p["conv_1"])
    h = _np_relu(nrm(h, p.get("norm_2")))
    h = _np_conv(h, p["conv_2"])
    return skip + (_np_mean_pool(h) if resample == "down" else h)


def _np_optimized_block(x, p):
    skip = _np_conv(_np_mean_pool(x), p["shortcut"])
    return skip + _np_mean_pool(_np_conv(_np_relu(_np_conv(x, p["conv_1"])), p["conv_2"]))


def _fill(shapes, seed):
    """float64 parameters: kernels U(+-sqrt(3 / fan_in)) (unit gain), norm scales near 1, the
    rest small."""
    rng = np.random.default_rng(seed)

    def one(path, s):
        name = jax.tree_util.keystr(path)
        if "kernel" in name:
            b = math.sqrt(3.0 / int(np.prod(s.shape[:-1])))
            return rng.uniform(-b, b, s.shape)
        if "scale" in name:
            return 1.0 + 0.2 * rng.normal(size=s.shape)
        return 0.1 * rng.normal(size=s.shape)

    return jax.tree_util.tree_map_with_path(one, shapes)


def _np_tree(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def _run(module, x, seed, y=None, norm_vars=False):
    """Apply `module` to float64 `x` with float64 parameters; (output, numpy params)."""
    args = (x,) if y is None else (x, y)
    with jax.enable_x64(False):  # the float32 model's variables
        shapes = jax.eval_shape(module.init, jax.random.key(0), x.astype(np.float32), *args[1:])
    params = _fill(shapes["params"], seed)
    variables = {"params": params}
    if "batch_stats" in shapes:
        variables["batch_stats"] = jax.tree.map(lambda s: np.zeros(s.shape), shapes["batch_stats"])
    out = jax.jit(lambda v, *a: module.apply(v, *a, mutable=["batch_stats"])[0])(variables, *args)
    return jax.tree.map(np.asarray, out), _np_tree(params)


BLOCK_CASES = [  # (official, resample, cin, cout, norm)
    ("cifar", "up", 8, 8, "batch"), ("cifar", "up", 8, 8, "conditional"),
    ("cifar", "down", 8, 8, "none"), ("cifar", None, 8, 8, "none"), ("cifar", None, 6, 8, "none"),
    ("64x64", "up", 8, 4, "batch"), ("64x64", "down", 4, 8, "layer"),
]


@pytest.mark.parametrize("official,resample,cin,cout,norm", BLOCK_CASES)
@pytest.mark.parametrize("impl", layers.CONV_IMPLS)
def test_block_equals_numpy_float64(official, resample, cin, cout, norm, impl):
    classes = 3
    cond = norm == "conditional"
    block = ResidualBlock(cout, resample, official, "batch" if cond else norm,
                          "acgan" if cond else "none", classes if cond else 0, conv_impl=impl)
    y = np.array([0, 2, 2], np.int32)
    with jax.enable_x64(True):
        x = _rand(10, (3, 8, 8, cin))
        out, p = _run(block, x, 11, y)
    assert out.dtype == np.float64
    fns = {"batch": lambda h, q: _np_bn(h, q), "conditional": lambda h, q: _np_bn(h, q, y),
           "layer": _np_ln, "none": None}
    want = _np_block(x, p, resample, official, fns[norm])
    assert out.shape == want.shape == (3,) + {"up": (16, 16), "down": (4, 4)}.get(
        resample, (8, 8)) + (cout,)
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-10)
    # the shortcut is a layer exactly where the shapes change
    assert ("shortcut" in p) == (resample is not None or cin != cout)


def test_optimized_block_equals_numpy_float64():
    with jax.enable_x64(True):
        x = _rand(12, (2, 8, 8, 3))
        out, p = _run(OptimizedBlock(6), x, 13)
    np.testing.assert_allclose(out, _np_optimized_block(x, p), rtol=1e-10, atol=1e-10)


def _np_unflatten(v, c):
    return v.reshape(v.shape[0], c, 4, 4).transpose(0, 2, 3, 1)


def _np_linear(x, p):
    return x @ p["kernel"] + p["bias"]


@pytest.mark.parametrize("conditioning", ["none", "acgan", "projection"])
def test_resnet32_networks_equal_numpy_float64(conditioning):
    dim, b = 8, 3
    m = build_models("resnet32", width=dim, generator_norm="batch", conv_impl="matmul",
                     conditioning=conditioning, num_classes=4 if conditioning != "none" else 0)
    y = np.array([3, 0, 3], np.int32)
    with jax.enable_x64(True):
        z = _rand(20, (b, 128))
        x = np.tanh(_rand(21, (b, 32, 32, 3)))
        yy = None if conditioning == "none" else y
        img, pg = _run(m.generator, z, 22, yy)
        crit, pd = _run(m.critic, x, 23, yy)
    bn = (lambda h, q: _np_bn(h, q)) if conditioning == "none" else (lambda h, q: _np_bn(h, q, y))
    h = _np_unflatten(_np_linear(z, pg["input"]), dim)
    for i in (1, 2, 3):
        h = _np_block(h, pg[f"block_{i}"], "up", "cifar", bn)
    want = np.tanh(_np_conv(_np_relu(_np_bn(h, pg["output_norm"])), pg["output"]))
    np.testing.assert_allclose(img, want, rtol=1e-10, atol=1e-10)
    h = _np_optimized_block(x, pd["block_1"])
    h = _np_block(h, pd["block_2"], "down", "cifar")
    h = _np_block(_np_block(h, pd["block_3"], None, "cifar"), pd["block_4"], None, "cifar")
    feats = _np_relu(h).mean(axis=(1, 2))
    values = _np_linear(feats, pd["output"])[:, 0]
    if conditioning == "acgan":
        np.testing.assert_allclose(crit[0], values, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(crit[1], _np_linear(feats, pd["acgan_output"]), rtol=1e-10,
                                   atol=1e-10)
    else:
        if conditioning == "projection":
            values = values + np.sum(pd["projection"]["embedding"][y] * feats, axis=-1)
        np.testing.assert_allclose(crit, values, rtol=1e-10, atol=1e-10)


def test_resnet64_networks_equal_numpy_float64():
    dim, b = 4, 2
    m = build_models("resnet64", width=dim, generator_norm="batch", critic_norm="layer",
                     conv_impl="matmul")
    with jax.enable_x64(True):
        z = _rand(30, (b, 128))
        x = np.tanh(_rand(31, (b, 64, 64, 3)))
        img, pg = _run(m.generator, z, 32)
        crit, pd = _run(m.critic, x, 33)
    h = _np_unflatten(_np_linear(z, pg["input"]), 8 * dim)
    for i in (1, 2, 3, 4):
        h = _np_block(h, pg[f"block_{i}"], "up", "64x64", _np_bn)
    want = np.tanh(_np_conv(_np_relu(_np_bn(h, pg["output_norm"])), pg["output"]))
    assert img.shape == (b, 64, 64, 3)
    np.testing.assert_allclose(img, want, rtol=1e-10, atol=1e-10)
    h = _np_conv(x, pd["input"])
    for i in (1, 2, 3, 4):
        h = _np_block(h, pd[f"block_{i}"], "down", "64x64", _np_ln)
    flat = h.transpose(0, 3, 1, 2).reshape(b, -1)  # the official NCHW reshape
    np.testing.assert_allclose(crit, _np_linear(flat, pd["output"])[:, 0], rtol=1e-10,
                               atol=1e-10)
