"""A/B of step variants in one process, alternating, for a machine whose speed drifts.

    python benchmarks/ab_step.py --arch mnist --mode gp \
        --variant new= --variant old=/tmp/layers_old.py [--rounds 5] [--steps 4]
    python benchmarks/ab_step.py --arch mnist --mode gp \
        --variant O1= --variant 'O3=:{"xla_backend_optimization_level": 3}'

    python benchmarks/ab_step.py --arch mnist --mode gp \
        --variant f32= --variant bf16=@bfloat16

A variant is `NAME=[LAYERS_FILE][:COMPILER_OPTIONS_JSON][@COMPUTE_DTYPE]`: the
strided/transposed conv functions of LAYERS_FILE (a copy of wgan_jax/layers.py, e.g. from `git
show REV:wgan_jax/layers.py`) replace the library's while that variant's step is traced
(`wgan_jax.layer_variants`; empty: the library's own), COMPILER_OPTIONS_JSON replaces the step's
XLA compile options and COMPUTE_DTYPE (float32 default, or bfloat16) is the config's
`compute_dtype`. Every variant is built and compiled first; then each round times `--steps`
generator iterations of every variant in turn (after two warm-up calls). Prints each variant's
compile time, its per-round iterations/s and their median. Needs only jax, flax, optax and
ml_collections.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.step_throughput import DEFAULT_BATCH  # noqa: E402

COMPUTE_DTYPES = ("float32", "bfloat16")


def parse_variant(text: str) -> tuple[str, str, dict | None, str]:
    """`NAME=[FILE][:JSON][@DTYPE]` -> (name, layers file or '', compiler options or None,
    compute dtype)."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--variant {text!r}: expected "
                         "NAME=[LAYERS_FILE][:OPTIONS_JSON][@COMPUTE_DTYPE]")
    dtype = "float32"
    head, at, tail = rest.rpartition("@")
    if at:
        if tail not in COMPUTE_DTYPES:
            raise SystemExit(f"--variant {text!r}: compute dtype {tail!r} is not one of "
                             f"{COMPUTE_DTYPES}")
        rest, dtype = head, tail
    path, _, options = rest.partition(":")
    if path and not os.path.isfile(path):
        raise SystemExit(f"--variant {text!r}: no file {path!r}")
    try:
        return name, path, json.loads(options) if options else None, dtype
    except json.JSONDecodeError as e:
        raise SystemExit(f"--variant {text!r}: compiler options are not JSON ({e})") from None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=sorted(DEFAULT_BATCH), required=True)
    p.add_argument("--mode", choices=("gp", "clip"), required=True)
    p.add_argument("--variant", action="append", required=True, type=parse_variant)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=4)
    args = p.parse_args(argv)

    import jax

    from benchmarks.step_throughput import build
    from wgan_jax import layer_variants

    runs = {}
    for name, path, options, dtype in args.variant:
        variant = (layer_variants.swapped(layer_variants.load(path, f"layers_{name}")) if path
                   else contextlib.nullcontext())
        with variant:  # the step is traced (lowered) with this variant's layers
            state, batches, step = build(args.arch, args.mode, compute_dtype=dtype)
            t0 = time.perf_counter()
            lowered = step.lower(state, batches[0])
        compiled = (lowered.compile(compiler_options=options) if options is not None
                    else lowered.compile())
        print(f"{name}: lower+compile {time.perf_counter() - t0:.1f} s", flush=True)
        runs[name] = [compiled, state, batches, []]

    for _ in range(args.rounds):
        for run in runs.values():
            compiled, state, batches, rates = run
            for i in range(2):
                state, metrics = compiled(state, batches[i % 2])
                jax.block_until_ready(metrics)
            t0 = time.perf_counter()
            for i in range(args.steps):
                state, metrics = compiled(state, batches[i % 2])
            jax.block_until_ready((state, metrics))
            rates.append(args.steps / (time.perf_counter() - t0))
            run[1] = state
    for name, (_, _, _, rates) in runs.items():
        median = sorted(rates)[len(rates) // 2]
        print(f"{name}: gen_iters_per_s {' '.join(f'{r:.3f}' for r in rates)} "
              f"median={median:.3f}")


if __name__ == "__main__":
    main()
