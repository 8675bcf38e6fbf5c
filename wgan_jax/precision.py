"""What `compute_dtype='bfloat16'` does on the machine a run starts on, said once at start."""
from __future__ import annotations

# /proc/cpuinfo flags of CPUs with bfloat16 dot instructions: x86 AVX-512 BF16 and AMX, Arm's
# BF16 extension.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# Where bfloat16 measured faster than float32 on a CPU with bf16 dot units (BENCHMARKS.md:
# the toy MLP 1.24x; the image models, the seed's small MLP included, 0.9-1.1x).
CPU_BF16_GAINS = ("toy",)


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """The first CPU's feature flags, or None where the file is missing (not Linux on x86)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        return None
    return frozenset()


def compute_dtype_warning(compute_dtype: str, backend: str, arch: str,
                          flags: frozenset[str] | None) -> str | None:
    """A warning for `compute_dtype` where it is known to cost speed, else None.

    The figures are BENCHMARKS.md's mixed-precision measurements (XLA:CPU, jax 0.10). What it
    changes in training was within the seed-to-seed spread wherever it was measured (toy
    default run, Fashion-MNIST fast config), so quality gets no warning.
    """
    if compute_dtype != "bfloat16" or backend != "cpu":
        return None
    if flags is not None and flags.isdisjoint(BF16_CPU_FLAGS):
        return ("compute_dtype='bfloat16': this CPU has no bfloat16 dot instructions (none of "
                f"{', '.join(BF16_CPU_FLAGS)} in /proc/cpuinfo): XLA converts the operands "
                "back to float32, so the step is slower than with float32.")
    if arch not in CPU_BF16_GAINS:
        return ("compute_dtype='bfloat16': on CPU the image models' steps measured 0.9-1.1x "
                "the float32 speed (the derivative dots still run in float32, after converts; "
                "BENCHMARKS.md): float32 is as fast or faster for them here.")
    return None
