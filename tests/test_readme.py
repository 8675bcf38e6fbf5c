"""README's "Using the library" snippet runs as written, and its module table names real files."""
import os
import re

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
    rows = re.findall(r"^\| (`[^|]+`) \|", _section("Using the library"), re.M)
    names = [n for row in rows for n in re.findall(r"`([^`]+)`", row)]
    assert len(names) >= 15
    for name in names:
        assert os.path.exists(os.path.join(REPO, "wgan_jax", name)), name
