"""The throughput table of the training step on the default device, every arch x mode x
compute_dtype at the paper's batch and at a large one, in one process.

    python benchmarks/device_table.py [--archs mnist,cifar,dcgan64,toy] [--modes gp,clip]
        [--dtypes float32,bfloat16] [--batches default,large] [--steps 10]
        [--budget_s 420] [--peak_tflops P] [--width W]

Prints one markdown row per case as it is measured:
    | arch | mode | compute_dtype | batch | gen iters/s | TFLOP/s | MFU | compile s |
TFLOP/s come from the analytic FLOP count (benchmarks/flops.py). MFU is against the device's
nominal dense peak for that compute dtype (`PEAK_TFLOPS`: on NVIDIA GPUs JAX runs float32
matmuls and convolutions as TF32 by default, so float32 is measured against the TF32 peak), or
against `--peak_tflops`; on a device not in the table (e.g. a CPU) against a large matmul of
that dtype timed here. Cases left when `--budget_s` runs out are skipped with a line that says
so. Needs only jax, flax, optax and ml_collections.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.step_throughput import DEFAULT_BATCH, build, matmul_peak_gflops  # noqa: E402

# Nominal dense peaks, TFLOP/s, by jax device_kind: (bfloat16, float32 as the step runs it).
PEAK_TFLOPS = {
    "NVIDIA H200": (989.0, 494.0),  # SXM; float32 matmuls run as TF32
    "NVIDIA H100 80GB HBM3": (989.0, 494.0),
    "NVIDIA A100-SXM4-80GB": (312.0, 156.0),
    "NVIDIA A100-SXM4-40GB": (312.0, 156.0),
    "TPU v4": (275.0, 275.0),  # float32 matmuls run as bfloat16 passes on TPU
    "TPU v5 lite": (197.0, 197.0),
}
LARGE_BATCH = {"toy": 8192, "mlp": 4096, "mnist": 1024, "cifar": 512, "dcgan64": 256,
               "celeba64": 256, "resnet32": 256, "resnet64": 128}


def peak_tflops(dtype: str, override: float | None = None) -> tuple[float, str]:
    """(peak TFLOP/s, where it comes from) for `dtype` on the default device."""
    import jax
    import jax.numpy as jnp
    if override:
        return override, "--peak_tflops"
    kind = jax.devices()[0].device_kind
    if kind in PEAK_TFLOPS:
        return PEAK_TFLOPS[kind][0 if dtype == "bfloat16" else 1], f"nominal {kind}"
    measured = matmul_peak_gflops(jnp.bfloat16 if dtype == "bfloat16" else jnp.float32) / 1e3
    return measured, f"measured {dtype} matmul on {kind}"


def measure(arch: str, mode: str, dtype: str, batch: int, steps: int,
            width: int = 0) -> tuple[float, float]:
    """(generator iterations/s, compile seconds) of the compiled step on all devices."""
    import jax
    state, batches, step = build(arch, mode, batch, compute_dtype=dtype, width=width)
    t0 = time.perf_counter()
    compiled = step.lower(state, batches[0]).compile()
    compile_s = time.perf_counter() - t0
    for i in range(2):
        state, metrics = compiled(state, batches[i % 2])
        jax.block_until_ready(metrics)
    t0 = time.perf_counter()
    for i in range(steps):
        state, metrics = compiled(state, batches[i % 2])
    jax.block_until_ready((state, metrics))
    return steps / (time.perf_counter() - t0), compile_s


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", default="mnist,cifar,dcgan64,toy")
    p.add_argument("--modes", default="gp,clip")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--batches", default="default,large")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--budget_s", type=float, default=420.0)
    p.add_argument("--peak_tflops", type=float, default=None)
    p.add_argument("--width", type=int, default=0,
                   help="the ResNets' DIM (0: the official 128 for resnet32, 64 for resnet64)")
    args = p.parse_args(argv)
    archs, modes = args.archs.split(","), args.modes.split(",")
    dtypes, sizes = args.dtypes.split(","), args.batches.split(",")
    for name, values, known in (("arch", archs, DEFAULT_BATCH), ("mode", modes, ("gp", "clip")),
                                ("dtype", dtypes, ("float32", "bfloat16")),
                                ("batch", sizes, ("default", "large"))):
        bad = [v for v in values if v not in known]
        if bad:
            raise SystemExit(f"unknown {name} {bad}; choose from {sorted(known)}")

    import jax

    from benchmarks.flops import iteration_flops
    start = time.perf_counter()
    peaks = {d: peak_tflops(d, args.peak_tflops) for d in dtypes}
    print(f"devices: {len(jax.devices())} x {jax.devices()[0].device_kind}, jax "
          f"{jax.__version__}; peaks: " + ", ".join(f"{d} {v:.1f} TFLOP/s ({src})"
                                                   for d, (v, src) in peaks.items()))
    print("| arch | mode | compute_dtype | batch | gen iters/s | TFLOP/s | MFU | compile s |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for arch in archs:
        for mode in modes:
            for size in sizes:
                batch = DEFAULT_BATCH[arch] if size == "default" else LARGE_BATCH[arch]
                for dtype in dtypes:
                    if time.perf_counter() - start > args.budget_s:
                        print(f"| {arch} | {mode} | {dtype} | {batch} | skipped: --budget_s "
                              f"{args.budget_s:.0f} s spent | | | |", flush=True)
                        continue
                    rate, compile_s = measure(arch, mode, dtype, batch, args.steps, args.width)
                    tflops = iteration_flops(arch, mode, batch, width=args.width) * rate / 1e12
                    mfu = tflops / peaks[dtype][0]
                    print(f"| {arch} | {mode} | {dtype} | {batch} | {rate:.2f} | {tflops:.2f} | "
                          f"{100 * mfu:.1f}% | {compile_s:.1f} |", flush=True)


if __name__ == "__main__":
    main()
