"""README's facts against the code: the "Using the library" snippet runs as written, the module
table names real files, the config table names real fields and variants, and every script and
`python -m` module it tells a user to run exists."""
import importlib.util
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(REPO, "README.md")).read()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def test_using_the_library_snippet_runs(capsys):
    code = re.search(r"```python\n(.*?)```", _section("Using the library"), re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and abs(float(printed[0])) < 1e3  # the EM estimate, finite


def test_module_table_names_existing_modules():
    rows = re.findall(r"^\| (`[^|]+`) \|", _section("Modules"), re.M)
    names = [n for row in rows for n in re.findall(r"`([^`]+)`", row)]
    assert len(names) >= 15
    for name in names:
        assert os.path.exists(os.path.join(REPO, "wgan_jax", name)), name
    # ...and every module and package of the library is in it.
    top = os.listdir(os.path.join(REPO, "wgan_jax"))
    missing = [f for f in top if (f.endswith(".py") and f != "__init__.py" and f not in names)
               or (os.path.isdir(os.path.join(REPO, "wgan_jax", f)) and f != "__pycache__"
                   and f + "/" not in names)]
    assert not missing, f"README's module table does not name {missing}"


def test_config_table_names_existing_fields():
    from wgan_jax.config import base_config
    config = base_config()
    table = _section("Configs").split("| group | fields |", 1)[1].split("\n\n", 1)[0]
    fields = [f for row in table.splitlines()[2:]
              for f in re.findall(r"`([a-z_]+(?:\.[a-z_0-9]+)*)`", row.split("|")[2])]
    # values quoted in the table (`float32`, `wasserstein`, ...) are not fields
    fields = [f for f in fields if f.split(".")[0] in config]
    assert len(fields) >= 40
    for field in fields:
        node = config
        for part in field.split("."):
            assert part in node, f"README's config table names {field!r}, not a config field"
            node = node[part]


def test_config_variants_exist():
    from configs import gan, spectral, wgan, wgan_gp
    files = {"wgan_gp": wgan_gp, "wgan": wgan, "gan": gan, "spectral": spectral}
    checked = 0
    for row in re.findall(r"^\| (`configs/[^|]+)\|", _section("Configs"), re.M):
        file = re.match(r"`configs/(\w+)\.py", row)
        if file is None or file.group(1) not in files:  # configs/experiments/*.py
            continue
        file = file.group(1)
        for variant in re.findall(r"`(?:configs/\w+\.py)?:(\w+)`", row):
            files[file].get_config(variant)  # raises for an unknown variant
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("kind", ["script", "module"])
def test_commands_name_existing_files(kind):
    if kind == "script":
        paths = set(re.findall(r"python (benchmarks/\w+\.py|run\.py)", README))
        paths |= set(re.findall(r"bash (benchmarks/\w+\.sh)", README))
        assert len(paths) >= 4
        for path in paths:
            assert os.path.exists(os.path.join(REPO, path)), path
    else:
        modules = set(re.findall(r"python -m (wgan_jax[\w.]+)", README))
        assert len(modules) >= 3
        for module in modules:
            assert importlib.util.find_spec(module) is not None, module
