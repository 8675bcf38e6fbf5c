"""The accelerator check's parts that run on a CPU: its table script (without clu, TensorFlow or
TFDS importable) and the shell script's refusal when ml_collections is missing."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_TF = ("import sys\n"
         "for m in ('clu', 'tensorflow', 'tensorflow_datasets'):\n"
         "    sys.modules[m] = None  # importing them now fails\n"
         "import runpy\n"
         "sys.argv = ['device_table.py'] + sys.argv[1:]\n"
         "runpy.run_path('benchmarks/device_table.py', run_name='__main__')\n")


def _table(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    return subprocess.run([sys.executable, "-c", NO_TF, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_table_rows_without_tensorflow_or_clu():
    out = _table("--archs", "toy", "--modes", "gp", "--batches", "default", "--steps", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| toy |")]
    assert [r.split("|")[3].strip() for r in rows] == ["float32", "bfloat16"]
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[3] == "256" and float(cells[4]) > 0 and cells[6].endswith("%")
        assert float(cells[5]) > 0 and float(cells[6][:-1]) > 0
    assert "measured float32 matmul on cpu" in out.stdout


def test_table_budget_and_bad_names():
    out = _table("--archs", "mnist", "--modes", "clip", "--batches", "default,large",
                 "--dtypes", "float32", "--budget_s", "0")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("skipped: --budget_s 0 s spent") == 2
    bad = _table("--archs", "resnet")
    assert bad.returncode != 0 and "unknown arch ['resnet']" in bad.stderr


def test_table_knows_the_resnets():
    # names and batches only (a budget of 0 measures nothing; tests/test_flops.py traces their
    # steps)
    out = _table("--archs", "resnet32,resnet64", "--modes", "gp", "--batches", "default,large",
                 "--dtypes", "bfloat16", "--budget_s", "0")
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split("|")[1:5] for line in out.stdout.splitlines() if "skipped" in line]
    assert [[c.strip() for c in r] for r in rows] == [
        ["resnet32", "gp", "bfloat16", "64"], ["resnet32", "gp", "bfloat16", "256"],
        ["resnet64", "gp", "bfloat16", "64"], ["resnet64", "gp", "bfloat16", "128"]]


def test_device_check_refuses_without_ml_collections(tmp_path):
    fake = tmp_path / "site" / "ml_collections"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed here')\n")
    repo = tmp_path / "repo" / "benchmarks"  # a checkout without .whl/
    repo.mkdir(parents=True)
    script = repo / "device_check.sh"
    script.write_text(open(os.path.join(ROOT, "benchmarks", "device_check.sh")).read())
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "ml_collections is not installed" in out.stderr
