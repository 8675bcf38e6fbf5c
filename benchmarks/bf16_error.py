"""How far `compute_dtype='bfloat16'` moves the gradient penalty and its parameter gradient.

    python benchmarks/bf16_error.py [--arch mnist] [--batches 5] [--batch 50]

For each of `--batches` random batches (real images uniform in the data range, toy points
uniform in [-1.5, 1.5]^2, fakes from the initial generator, random interpolation weights) it
computes, with the same parameters, the WGAN-GP critic loss (lambda 10; 0.1 on the toy) and its
gradient w.r.t. the critic parameters in float32 and in bfloat16, and prints one line per batch
and a summary:
    arch=... batch=... loss_rel_err=... penalty_rel_err=... grad_rel_err=... grad_cosine=...
(relative errors of bfloat16 against float32; the gradient's over all critic parameters).
Needs only jax, flax, optax and ml_collections.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _method(arch: str, batch: int, compute_dtype: str):
    from wgan_jax import registry
    from wgan_jax.method import Method, config_with
    return Method.from_config(config_with({
        "dataset": next(n for n, d in registry.DATASETS.items() if arch in d.archs),
        "evals": ("samples",), "batch_size": batch, "compute_dtype": compute_dtype,
        "gp_weight": 0.1 if arch == "toy" else 10.0,
        "model": {"arch": arch, "generator_norm": "batch" if arch == "cifar" else "none"}}))


def critic_loss_and_grad(arch: str, batch: int, compute_dtype: str, seed: int,
                         params=None):
    """(critic loss, penalty, flat critic gradient, (g_params, d_params)) of one WGAN-GP critic
    step's loss on batch `seed`, with `params` (default: the initial ones of seed 0)."""
    import jax
    import jax.numpy as jnp

    from wgan_jax import losses, penalties
    from wgan_jax.models import apply_critic, apply_generator

    method = _method(arch, batch, compute_dtype)
    state = method.init_state()
    models = state.models
    g_params, d_params = params if params is not None else (state.g_params, state.d_params)
    keys = jax.random.split(jax.random.PRNGKey(1000 + seed), 3)
    shape = (batch,) + tuple(models.data_shape)
    if method.data.value_range is None:  # toy points: spread like the 25-gaussians grid
        real = jax.random.uniform(keys[0], shape, minval=-1.5, maxval=1.5)
    else:
        lo, hi = method.data.value_range
        real = jax.random.uniform(keys[0], shape, minval=lo, maxval=hi)
    z = jax.random.normal(keys[1], (batch, models.latent_dim))
    eps = jax.random.uniform(keys[2], (batch,))
    fake, _ = apply_generator(models, g_params, state.g_vars, z)
    fake = jax.lax.stop_gradient(fake.astype(jnp.float32))

    def loss_fn(dp):
        def critic(x):
            return apply_critic(models, dp, state.d_vars, x, False)[0]
        penalty, _ = penalties.gradient_penalty(critic, real, fake, eps, method.step.gp_weight)
        return losses.wgan_critic_loss(critic(real), critic(fake)) + penalty, penalty

    (loss, penalty), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(d_params)
    flat = np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads)]).astype(np.float64)
    return float(loss), float(penalty), flat, (g_params, d_params)


def compare(arch: str, batch: int, seed: int) -> dict[str, float]:
    """bfloat16 against float32 on batch `seed`, same parameters."""
    loss32, pen32, g32, params = critic_loss_and_grad(arch, batch, "float32", seed)
    loss16, pen16, g16, _ = critic_loss_and_grad(arch, batch, "bfloat16", seed, params)
    return {"loss_rel_err": abs(loss16 - loss32) / abs(loss32),
            "penalty_rel_err": abs(pen16 - pen32) / abs(pen32),
            "grad_rel_err": float(np.linalg.norm(g16 - g32) / np.linalg.norm(g32)),
            "grad_cosine": float(g16 @ g32 / np.linalg.norm(g16) / np.linalg.norm(g32))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="mnist", choices=("toy", "mlp", "mnist", "cifar"))
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--batch", type=int, default=None, help="default: the paper's")
    args = p.parse_args(argv)
    batch = args.batch or {"toy": 256, "mlp": 32, "mnist": 50, "cifar": 64}[args.arch]
    rows = []
    for seed in range(args.batches):
        row = compare(args.arch, batch, seed)
        rows.append(row)
        print(f"batch {seed}: {_format(row)}", flush=True)
    worst = {k: (min if k == "grad_cosine" else max)(r[k] for r in rows) for k in rows[0]}
    print(f"arch={args.arch} batch={batch} batches={args.batches} worst: {_format(worst)}")


def _format(row: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.6f}" if k == "grad_cosine" else f"{k}={v:.2e}"
                    for k, v in row.items())


if __name__ == "__main__":
    main()
