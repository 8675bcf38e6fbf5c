"""The profiler's bookkeeping: interval unions and the matmul FLOPs it reads from compiled HLO."""
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.profile_step import _covered_us, matmul_ops


def test_covered_time_is_the_union_of_intervals():
    rng = np.random.default_rng(0)
    starts, lengths = rng.uniform(0, 100, 40), rng.uniform(0, 8, 40)
    intervals = [(float(s), float(s + d)) for s, d in zip(starts, lengths, strict=True)]
    grid = np.linspace(0, 110, 110_001)  # brute force on a fine grid
    covered = np.zeros_like(grid, bool)
    for s, e in intervals:
        covered |= (grid >= s) & (grid < e)
    assert abs(_covered_us(intervals) - covered.mean() * 110) < 0.01
    assert _covered_us([(0, 2), (1, 3), (5, 6)]) == 4


def test_matmul_ops_count_every_dot_of_a_compiled_program():
    a, b, c = jnp.ones((64, 32)), jnp.ones((32, 48)), jnp.ones((16, 48))
    f = lambda a, b, c: jnp.tanh(a @ b) @ c.T  # noqa: E731
    hlo = jax.jit(f).lower(a, b, c).compile().as_text()
    ops = matmul_ops(hlo)
    assert sum(flops for flops, _ in ops.values()) == 2 * 64 * 32 * 48 + 2 * 64 * 48 * 16
    shapes = " ".join(desc for _, desc in ops.values())
    assert "64x32" in shapes and "32x48" in shapes
