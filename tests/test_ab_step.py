"""The A/B benchmark's variant syntax and its errors."""
import pytest

from benchmarks.ab_step import parse_variant


def test_parse_variant(tmp_path):
    layers = tmp_path / "layers.py"
    layers.write_text("")
    assert parse_variant("new=") == ("new", "", None)
    assert parse_variant(f"old={layers}") == ("old", str(layers), None)
    assert parse_variant('O3=:{"xla_backend_optimization_level": 3}') == (
        "O3", "", {"xla_backend_optimization_level": 3})
    assert parse_variant(f'both={layers}:{{"a": 1}}') == ("both", str(layers), {"a": 1})


@pytest.mark.parametrize("text, message", [
    ("noequals", "expected NAME="),
    ("=x", "expected NAME="),
    ("v=/no/such/file.py", "no file"),
    ("v=:{oops", "not JSON"),
])
def test_parse_variant_errors(text, message):
    with pytest.raises(SystemExit, match=message):
        parse_variant(text)
