"""The A/B benchmark's variant syntax and its errors, and the layer swap it traces steps with."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.ab_step import parse_variant
from wgan_jax import layer_variants, layers
from wgan_jax.method import Method, config_with


def test_parse_variant(tmp_path):
    layers = tmp_path / "layers.py"
    layers.write_text("")
    assert parse_variant("new=") == ("new", "", None, "float32")
    assert parse_variant(f"old={layers}") == ("old", str(layers), None, "float32")
    assert parse_variant('O3=:{"xla_backend_optimization_level": 3}') == (
        "O3", "", {"xla_backend_optimization_level": 3}, "float32")
    assert parse_variant(f'both={layers}:{{"a": 1}}') == ("both", str(layers), {"a": 1},
                                                          "float32")
    assert parse_variant("bf16=@bfloat16") == ("bf16", "", None, "bfloat16")
    assert parse_variant(f'all={layers}:{{"a": 1}}@bfloat16') == (
        "all", str(layers), {"a": 1}, "bfloat16")


@pytest.mark.parametrize("text, message", [
    ("noequals", "expected NAME="),
    ("=x", "expected NAME="),
    ("v=/no/such/file.py", "no file"),
    ("v=:{oops", "not JSON"),
    ("v=@float16", "not one of"),
])
def test_parse_variant_errors(text, message):
    with pytest.raises(SystemExit, match=message):
        parse_variant(text)


def _mnist_critic_shapes():
    """Trace the mnist critic (its strided convs) without computing anything."""
    method = Method.from_config(config_with(
        {"dataset": "mnist", "evals": ("samples",), "model": {"arch": "mnist"}}))
    critic = method.models().critic
    jax.eval_shape(critic.init, jax.random.PRNGKey(0), jnp.zeros((2, 28, 28, 1)))


def test_swapped_layers_are_traced_then_the_library_s_come_back():
    own = layers.conv_stride2
    calls = []

    def counting_conv(x, kernel, impl="matmul"):
        calls.append(x.shape)
        return own(x, kernel, impl)

    with layer_variants.swapped({"conv_stride2": counting_conv}):
        _mnist_critic_shapes()
    assert len(calls) == 3  # the mnist critic's three strided convs: the models used the swap
    assert layers.conv_stride2 is own
    _mnist_critic_shapes()
    assert len(calls) == 3
    with pytest.raises(RuntimeError), layer_variants.swapped({"conv_stride2": counting_conv}):
        raise RuntimeError("a failing trace")
    assert layers.conv_stride2 is own  # restored on errors too


def test_layer_variants_load_a_layers_file_and_refuse_others(tmp_path):
    functions = layer_variants.load(layers.__file__)
    assert sorted(functions) == sorted(layer_variants.SWAPPABLE)
    assert functions["conv_stride2"] is not layers.conv_stride2  # a module of its own
    x, k = jnp.ones((1, 8, 8, 2)), jnp.ones((5, 5, 2, 3))
    np.testing.assert_array_equal(functions["conv_stride2"](x, k), layers.conv_stride2(x, k))
    other = tmp_path / "other.py"
    other.write_text("def conv_stride2(x, k, impl='matmul'):\n    return x\n")
    with pytest.raises(ValueError, match="deconv_stride2"):
        layer_variants.load(str(other))
    with pytest.raises(FileNotFoundError):
        layer_variants.load(str(tmp_path / "missing.py"))
    with pytest.raises(ValueError, match="relu"):
        with layer_variants.swapped({"relu": lambda x: x}):
            pass
