"""A matrix product on bfloat16 operands with float32 accumulation whose derivatives, to any
order and under `vmap`, are products of the same form.

`lax.dot_general(a_bf16, b_bf16, preferred_element_type=float32)` runs at the bfloat16 rate of
CPUs with bf16 dot units and of GPU/TPU matrix units. Its autodiff transposes are not of that
form: they multiply the float32 cotangent by a bfloat16 operand, which XLA:CPU runs as a float32
dot after converts. `bf16_dot` is a primitive whose transposes round the cotangent to bfloat16
and multiply in the fast form again, so the gradient penalty's backward and double backward stay
on the fast path (a `custom_vjp` does the same for one derivative, but under the penalty's
per-example `vmap` its backward rule is batched into per-example weight gradients). Its batching
rule folds the mapped axis into the rows of the product, so a per-example `vmap` costs one
large product, as `dot_general`'s does.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

bf16_dot_p = Primitive("bf16_dot")
# Products with a side shorter than this are computed in float32, operands not rounded.
SKINNY = 8


def bf16_dot(a: jax.Array, b: jax.Array, contract: tuple[int, int] = (1, 0)) -> jax.Array:
    """Product of 2-D `a` and `b` over axis `contract[0]` of `a` and `contract[1]` of `b`,
    operands rounded to bfloat16, accumulated and returned in float32 with shape
    (a's other axis, b's other axis). Default: `a @ b`. Derivatives of every order are
    `bf16_dot`s with the cotangent rounded to bfloat16. A product with any side shorter than
    `SKINNY` (a matrix-vector product) is computed in float32 without rounding."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"bf16_dot takes 2-D operands, got shapes {a.shape} and {b.shape}")
    ca, cb = contract
    if a.shape[ca] != b.shape[cb]:
        raise ValueError(f"bf16_dot: contracted axes differ: {a.shape}[{ca}] vs {b.shape}[{cb}]")
    return bf16_dot_p.bind(a, b, contract=(ca, cb))


def _dot(a, b, dimension_numbers):
    return lax.dot_general(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), dimension_numbers,
                           preferred_element_type=jnp.float32)


def _transposed_copy(x):
    """`x.T` as a row-major array. XLA gives a 2-D transpose, and the elementwise ops after it,
    a column-major layout (a free view); a bf16 dot that meets one, here or downstream, falls
    back to float32 on XLA:CPU. The transpose of a 3-D view followed by a reshape is laid out
    row-major."""
    m, n = x.shape
    return jnp.transpose(x.reshape(m, n, 1), (2, 1, 0)).reshape(n, m)


def _impl(a, b, *, contract):
    ca, cb = contract
    if min(a.shape + b.shape) < SKINNY:
        # No bf16 unit speeds up a matrix-vector product; XLA:CPU would convert the rounded
        # operands back and multiply in float32.
        return lax.dot_general(a.astype(jnp.float32), b.astype(jnp.float32),
                               (((ca,), (cb,)), ((), ())))
    if ca == 0:
        # XLA:CPU's bf16 dot kernels take the lhs contracted on its last axis, in row-major
        # layout, and run any other dot (the weight gradient a.T @ ct) in float32. Compute
        # (b.T @ a).T instead: b's rows moved last (a transposed copy of b, the small cotangent
        # in a weight gradient; none when b contracts its last axis) and a transposed copy of
        # the result (the weight's size). The barriers keep XLA from folding the transposes
        # into the dot.
        lhs = b.astype(jnp.bfloat16)
        if cb == 0:
            lhs = lax.optimization_barrier(_transposed_copy(lhs))
        return _transposed_copy(lax.optimization_barrier(_dot(lhs, a, (((1,), (0,)), ((), ())))))
    return _dot(a, b, (((ca,), (cb,)), ((), ())))


def _abstract_eval(a, b, *, contract):
    return jax.core.ShapedArray((a.shape[1 - contract[0]], b.shape[1 - contract[1]]),
                                jnp.float32)


def _transpose_lhs(ct, a, b, *, contract):
    # a_bar[i, k] = sum_j ct[i, j] b[k, j] (axes named for contract (1, 0); the others permute)
    ca, cb = contract
    if ca == 1:
        out = bf16_dot_p.bind(ct, b, contract=(1, 1 - cb))
    else:
        out = bf16_dot_p.bind(b, ct, contract=(1 - cb, 1))
    return out.astype(a.aval.dtype)


def _transpose_rhs(ct, a, b, *, contract):
    # b_bar[k, j] = sum_i a[i, k] ct[i, j]
    ca, cb = contract
    if cb == 0:
        out = bf16_dot_p.bind(a, ct, contract=(1 - ca, 0))
    else:
        out = bf16_dot_p.bind(ct, a, contract=(0, 1 - ca))
    return out.astype(b.aval.dtype)


def _fold(x, mapped, free):
    """Move `x`'s mapped axis to just before its free axis and merge the two (a free reshape);
    returns the folded 2-D operand and the mapped size."""
    x = jnp.moveaxis(x, mapped, free)
    n, shape = x.shape[free], list(x.shape)
    return x.reshape(shape[:free] + [n * shape[free + 1]] + shape[free + 2:]), n


def _batch(args, dims, *, contract):
    """Fold the mapped axis into the free axis of the one mapped operand; both mapped: a
    batched `dot_general` of the same dtypes."""
    (a, b), (da, db) = args, dims
    ca, cb = contract
    if da is not None and db is not None:
        a, b = jnp.moveaxis(a, da, 0), jnp.moveaxis(b, db, 0)
        return _dot(a, b, (((ca + 1,), (cb + 1,)), ((0,), (0,)))), 0
    if db is None:
        folded, n = _fold(a, da, 1 - ca)
        out = bf16_dot_p.bind(folded, b, contract=contract)
        return out.reshape(n, -1, out.shape[1]), 0
    folded, n = _fold(b, db, 1 - cb)
    out = bf16_dot_p.bind(a, folded, contract=contract)
    return out.reshape(out.shape[0], n, -1), 1


bf16_dot_p.def_impl(_impl)
bf16_dot_p.def_abstract_eval(_abstract_eval)
mlir.register_lowering(bf16_dot_p, mlir.lower_fun(_impl, multiple_results=False))
ad.defbilinear(bf16_dot_p, _transpose_lhs, _transpose_rhs)
batching.primitive_batchers[bf16_dot_p] = _batch
