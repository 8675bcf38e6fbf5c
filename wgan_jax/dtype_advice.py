"""What `compute_dtype='bfloat16'` does on the machine a run starts on, said once at start."""
from __future__ import annotations

# /proc/cpuinfo flags of CPUs with bfloat16 dot instructions: x86 AVX-512 BF16 and AMX, Arm's
# BF16 extension.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


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


def compute_dtype_warning(compute_dtype: str, backend: str,
                          flags: frozenset[str] | None) -> str | None:
    """A warning for `compute_dtype` where it is known to cost speed, else None.

    On CPUs with bf16 dot units the conv models' and the toy's steps measured 1.2-1.7x faster
    in bfloat16 and the seed's small MLPs about even (BENCHMARKS.md, XLA:CPU, jax 0.10); without
    them XLA runs the products in float32 after converts.
    What bfloat16 changes in training was within the seed-to-seed spread wherever it was
    measured (toy default run, Fashion-MNIST fast config), so quality gets no warning.
    """
    if compute_dtype != "bfloat16" or backend != "cpu":
        return None
    if flags is not None and flags.isdisjoint(BF16_CPU_FLAGS):
        return ("compute_dtype='bfloat16': this CPU has no bfloat16 dot instructions (none of "
                f"{', '.join(BF16_CPU_FLAGS)} in /proc/cpuinfo): XLA converts the operands "
                "back to float32, so the step is slower than with float32.")
    return None
