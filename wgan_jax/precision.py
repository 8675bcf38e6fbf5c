"""What `compute_dtype='bfloat16'` does on the machine a run starts on, said once at start."""
from __future__ import annotations

# /proc/cpuinfo flags of x86 CPUs with bfloat16 dot instructions (AVX-512 BF16, Intel AMX).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
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
    """A warning for `compute_dtype` where it is known to cost speed or quality, else None.

    The figures are BENCHMARKS.md's mixed-precision measurements (XLA:CPU, jax 0.10).
    """
    if compute_dtype != "bfloat16":
        return None
    notes = []
    if backend == "cpu":
        if flags is not None and not flags & set(BF16_CPU_FLAGS):
            notes.append("this CPU has no bfloat16 dot instructions (none of "
                         f"{', '.join(BF16_CPU_FLAGS)} in /proc/cpuinfo): XLA converts the "
                         "operands back to float32, so the step is slower than with float32")
        elif arch not in CPU_BF16_GAINS:
            notes.append("on CPU the image models' steps measured 0.9-1.1x the float32 speed "
                         "(the derivative dots still run in float32, after converts; "
                         "BENCHMARKS.md): float32 is as fast or faster for them here")
    if arch == "toy":
        notes.append("toy data is 2-D: bfloat16 rounds its inputs to 8 significant bits "
                     "(~0.004 at |x| = 1.4, against the 25-Gaussian modes' 0.014 std), which "
                     "cost some sample quality in the measured default run (0.862 vs 0.886 "
                     "high-quality fraction)")
    if not notes:
        return None
    return "compute_dtype='bfloat16': " + "; ".join(notes) + "."
