"""The run-start warning for compute_dtype='bfloat16'."""
import logging

import pytest

from configs import wgan_gp
from wgan_jax import dtype_advice
from wgan_jax.train import train_and_evaluate

AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
AVX2 = frozenset({"avx2", "fma"})


def test_float32_and_accelerators_get_no_warning():
    assert dtype_advice.compute_dtype_warning("float32", "cpu", AVX2) is None
    assert dtype_advice.compute_dtype_warning("bfloat16", "gpu", None) is None
    assert dtype_advice.compute_dtype_warning("bfloat16", "tpu", None) is None


def test_cpu_without_bf16_units_is_warned():
    msg = dtype_advice.compute_dtype_warning("bfloat16", "cpu", AVX2)
    assert "no bfloat16 dot instructions" in msg and "slower" in msg
    assert dtype_advice.compute_dtype_warning("bfloat16", "cpu", frozenset({"fp", "asimd"}))


def test_cpus_with_bf16_units_or_unknown_flags_get_no_warning():
    # the conv and toy steps measured 1.2-1.7x faster in bfloat16 there; the seed's small MLPs
    # about even (0.95-1.03x on Zen 4, 1.1x on Intel AMX; BENCHMARKS.md)
    assert dtype_advice.compute_dtype_warning("bfloat16", "cpu", AMX) is None
    assert dtype_advice.compute_dtype_warning("bfloat16", "cpu", frozenset({"fp", "bf16"})) is None
    assert dtype_advice.compute_dtype_warning("bfloat16", "cpu", None) is None


@pytest.mark.parametrize("text, expected", [
    ("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n", frozenset({"fpu", "avx2", "amx_bf16"})),
    ("processor\t: 0\nFeatures\t: fp asimd bf16\n", frozenset({"fp", "asimd", "bf16"})),
    ("processor\t: 0\n", frozenset()),
])
def test_cpu_flags_reads_the_first_flags_line(tmp_path, text, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    assert dtype_advice.cpu_flags(str(path)) == expected


def test_missing_cpuinfo_means_unknown(tmp_path):
    assert dtype_advice.cpu_flags(str(tmp_path / "absent")) is None


def test_a_run_says_it_once_at_start(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(dtype_advice, "cpu_flags", lambda: AVX2)
    config = wgan_gp.get_config()
    config.update(num_train_steps=1, batch_size=8, compute_dtype="bfloat16", evals=(),
                  checkpoint_every_steps=1)
    config.model.toy_hidden = 8
    with caplog.at_level(logging.WARNING):
        train_and_evaluate(config, str(tmp_path / "run"))
    lines = [r.getMessage() for r in caplog.records if "compute_dtype='bfloat16'" in r.getMessage()]
    assert len(lines) == 1 and "no bfloat16 dot instructions" in lines[0]
