"""Generator iterations per second of the real compiled training step.

    python benchmarks/step_throughput.py --arch mnist --mode gp [--batch 50] [--steps 10]
        [--devices K] [--conv_impl auto|matmul|lax] [--fast_compile]
        [--compute_dtype float32|bfloat16] [--width W]

Builds the library's train state and data-parallel step from a main config (`method_config`,
through `Method.from_config`), feeds pre-generated device-resident batches, times `--steps`
generator iterations (n_critic critic steps + 1 generator step each) after warm-up, and prints
one final line:
    arch=... mode=... batch=... devices=... compute_dtype=D gen_iters_per_s=X gflops=Y
    peak_gflops=P peak_bf16_gflops=Q compile_s=C
GFLOP/s come from the analytic FLOP count (benchmarks/flops.py); the peaks from a large float32
matmul and a bfloat16 x bfloat16 -> float32 one timed in the same process. Needs only jax,
flax, optax and ml_collections (no tensorflow, tfds, clu).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

DEFAULT_BATCH = {"toy": 256, "mlp": 32, "mnist": 50, "cifar": 64, "celeba64": 64, "dcgan64": 64,
                 "resnet32": 64, "resnet64": 64}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=sorted(DEFAULT_BATCH), required=True)
    p.add_argument("--mode", choices=("gp", "clip"), required=True)
    p.add_argument("--batch", type=int, default=None, help="global batch (paper default)")
    p.add_argument("--steps", type=int, default=None, help="timed generator iterations")
    p.add_argument("--devices", type=int, default=None,
                   help="devices to use (on CPU, fakes this many host devices)")
    p.add_argument("--n_critic", type=int, default=5)
    p.add_argument("--conv_impl", default="auto", choices=("auto", "matmul", "lax"))
    p.add_argument("--compute_dtype", default="float32", choices=("float32", "bfloat16"),
                   help="matmul operands (config.compute_dtype)")
    p.add_argument("--fast_compile", action="store_true",
                   help="XLA:CPU options for a shorter compile "
                        "(parallel.CPU_FAST_COMPILE_OPTIONS)")
    p.add_argument("--width", type=int, default=0,
                   help="the ResNets' DIM (0: the official 128 for resnet32, 64 for resnet64)")
    return p.parse_args(argv)


def method_config(arch: str, mode: str, batch: int | None = None, n_critic: int = 5,
                  conv_impl: str = "auto", fast_compile: bool = False,
                  compute_dtype: str = "float32"):
    """The main config the benchmark trains for `arch`/`mode`, with the papers' settings (GP:
    Adam(1e-4, 0.5, 0.9), lambda 10 (0.1 toy); clip: RMSProp 5e-5, c = 0.01 and the official
    batch-norm changes; the ResNets' norms as the official files: batch norm in the generators,
    none in resnet32's critic, `flops.RESNET64_CRITIC_NORM` in resnet64's), on the first registry
    dataset `arch` fits at its own image shape."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.flops import RESNET64_CRITIC_NORM
    from wgan_jax import registry
    from wgan_jax.method import config_with

    if mode not in ("gp", "clip"):
        raise ValueError(f"mode must be 'gp' or 'clip', got {mode!r}")
    gp = mode == "gp"
    critic_norm = {"resnet32": "none", "resnet64": RESNET64_CRITIC_NORM[mode]}.get(
        arch, "none" if gp or arch in ("toy", "mlp") else "batch")
    return config_with({
        # The step never sees the dataset (its batches are random): it only has to fit `arch`.
        # The first one of the arch's own channel count: the official models' FLOPs.
        "dataset": next(n for n, d in registry.DATASETS.items()
                        if arch in d.archs and d.shape == registry.arch(arch).data_shape),
        "evals": ("samples",),
        "batch_size": batch or DEFAULT_BATCH[arch],
        "n_critic": n_critic,
        "fast_compile": fast_compile,
        "compute_dtype": compute_dtype,
        "gp_weight": (0.1 if arch == "toy" else 10.0) if gp else 0.0,
        "clip_value": 0.0 if gp else 0.01,
        "model": {
            "arch": arch, "conv_impl": conv_impl,
            "critic_norm": critic_norm,
            "generator_norm": ("batch" if arch in ("cifar", "celeba64", "dcgan64", "resnet32",
                                                   "resnet64")
                               or (arch == "mnist" and not gp) else "none")},
        "optimizer": ({"name": "adam", "learning_rate": 1e-4, "b1": 0.5, "b2": 0.9} if gp else
                      {"name": "rmsprop", "learning_rate": 5e-5, "eps": 1e-10}),
    })


def build(arch: str, mode: str, batch: int | None = None, n_devices: int | None = None,
          conv_impl: str = "auto", fast_compile: bool = False, n_critic: int = 5,
          compute_dtype: str = "float32", width: int = 0):
    """The real train state, two device-resident batches and the jitted step of
    `method_config(...)` over `n_devices` devices (default all), the ResNets at DIM `width`
    (0: official). Returns (state, batches, step)."""
    config = method_config(arch, mode, batch, n_critic, conv_impl, fast_compile, compute_dtype)
    import jax

    from wgan_jax.config import ConfigError
    from wgan_jax.method import Method
    from wgan_jax.parallel import batch_sharding, make_mesh, replicated
    from wgan_jax.step import make_train_step

    devices = jax.devices()[:n_devices] if n_devices else jax.devices()
    try:
        method = Method.from_config(config, num_devices=len(devices))
    except ConfigError as e:
        raise SystemExit(str(e)) from None
    mesh = make_mesh(devices)
    state = jax.device_put(init_state(method, width), replicated(mesh))
    shape = (method.n_critic, method.batch_size) + tuple(state.models.data_shape)
    batches = [jax.device_put(jax.random.uniform(jax.random.PRNGKey(i), shape, minval=-1.0),
                              batch_sharding(mesh)) for i in range(2)]
    return state, batches, make_train_step(method.step, mesh, fast_compile=method.fast_compile)


def init_state(method, width: int = 0):
    """`method.init_state()`, with the ResNets built at DIM `width` when it is not 0."""
    if not width:
        return method.init_state()
    import dataclasses

    import jax

    from wgan_jax.models import build_models
    from wgan_jax.state import create_train_state

    options = {f.name: getattr(method.model, f.name) for f in dataclasses.fields(method.model)}
    models = build_models(**{**options, "width": width})
    return create_train_state(models, *method.optimizers(), jax.random.PRNGKey(method.seed))


def main(argv=None):
    args = parse_args(argv)
    if args.devices and "jax" not in sys.modules:
        # Only affects the CPU platform; must precede JAX's start.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.devices}")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import jax
    import jax.numpy as jnp
    import numpy as np

    from benchmarks.flops import iteration_flops

    batch = args.batch or DEFAULT_BATCH[args.arch]
    steps = args.steps or {"toy": 50, "mlp": 200, "mnist": 10, "cifar": 4}.get(args.arch, 3)
    state, batches, step = build(args.arch, args.mode, batch, args.devices, args.conv_impl,
                                 args.fast_compile, args.n_critic, args.compute_dtype,
                                 args.width)
    devices = jax.devices()[:args.devices] if args.devices else jax.devices()

    t0 = time.perf_counter()
    compiled = step.lower(state, batches[0]).compile()
    compile_s = time.perf_counter() - t0
    for i in range(2):  # warm-up
        state, metrics = compiled(state, batches[i % 2])
        jax.block_until_ready(metrics)
    t0 = time.perf_counter()
    for i in range(steps):
        state, metrics = compiled(state, batches[i % 2])
        if len(devices) > 1:  # un-awaited collectives can deadlock XLA:CPU's rendezvous
            jax.block_until_ready(metrics)
    jax.block_until_ready((state, metrics))
    elapsed = time.perf_counter() - t0
    if not np.isfinite(float(metrics["critic_loss"])):
        raise SystemExit("non-finite critic loss: the benchmark's step is broken")
    rate = steps / elapsed
    gflops = iteration_flops(args.arch, args.mode, batch, args.n_critic, args.width) * rate / 1e9

    peak, peak_bf16 = matmul_peak_gflops(jnp.float32), matmul_peak_gflops(jnp.bfloat16)
    print(f"arch={args.arch} mode={args.mode} batch={batch} devices={len(devices)} "
          f"compute_dtype={args.compute_dtype} gen_iters_per_s={rate:.3f} gflops={gflops:.1f} "
          f"peak_gflops={peak:.1f} peak_bf16_gflops={peak_bf16:.1f} compile_s={compile_s:.1f}"
          + (" fast_compile=1" if args.fast_compile else "")
          + (f" width={args.width}" if args.width else ""))


def matmul_peak_gflops(dtype, n: int | None = None) -> float:
    """GFLOP/s of a large square matmul on the default device, best of 5: float32, or `dtype`
    operands with float32 accumulation and result (the form `compute_dtype` uses)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    n = n or (4096 if jax.default_backend() != "cpu" else 2048)
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32).astype(dtype)
    mm = jax.jit(lambda a: lax.dot(a, a, preferred_element_type=jnp.float32))
    jax.block_until_ready(mm(a))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        jax.block_until_ready(mm(a))
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


if __name__ == "__main__":
    main()
