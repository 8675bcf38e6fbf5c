"""Devices: the 1-D data mesh, the shardings of batches and state, and XLA compile options.

The step is written per device in the pmap programming model (explicit `lax.pmean` over the
named axis `AXIS`); `shard_step` maps it over the mesh with `jax.shard_map` under `jax.jit`.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"

# XLA:CPU compiles the loops it generates itself (patch slices, pads, activations, optimizer
# updates) at LLVM -O1 instead of XLA's default -O3: they are memory-bound and ran no slower,
# the matrix multiplies run in a library at any level, and the mnist gp compile took 3 s less
# (BENCHMARKS.md).
CPU_COMPILE_OPTIONS = {"xla_backend_optimization_level": 1}
# For short runs and debugging: the legacy loop emitters build the step's hundreds of small
# fusions faster again, for a few percent of step time.
CPU_FAST_COMPILE_OPTIONS = {**CPU_COMPILE_OPTIONS, "xla_cpu_use_fusion_emitters": False}


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: all devices of all processes) named `data`."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of a [n_critic, global_batch, ...] batch: the batch axis split over devices."""
    return NamedSharding(mesh, P(None, AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of a value held whole on every device (the train state)."""
    return NamedSharding(mesh, P())


@functools.cache
def _accepted(platform: str, name: str, value) -> bool:
    """Whether the running XLA knows compile option `name` (releases add and drop them)."""
    try:
        jax.jit(lambda x: x + 1, backend=platform,
                compiler_options={name: value}).lower(np.float32(1)).compile()
    except Exception as e:  # jaxlib raises its own runtime error type
        if "No such compile option" in str(e):
            return False
        raise
    return True


def supported_compile_options(options: Mapping, platform: str) -> dict:
    """The options of `options` the running XLA accepts; one log line names any dropped."""
    kept = {k: v for k, v in options.items() if _accepted(platform, k, v)}
    dropped = sorted(set(options) - set(kept))
    if dropped:
        logging.warning("this XLA (jaxlib %s) has no compile option %s; compiling without it",
                        jax.__version__, ", ".join(dropped))
    return kept


def compile_options(mesh: Mesh, fast_compile: bool = False) -> dict | None:
    """XLA options for a step on `mesh`: `CPU_COMPILE_OPTIONS` (or the fast-compile set) on
    CPU, filtered to what this XLA accepts; None (XLA's defaults) on other backends."""
    platform = mesh.devices.flat[0].platform
    if platform != "cpu":
        return None
    return supported_compile_options(
        CPU_FAST_COMPILE_OPTIONS if fast_compile else CPU_COMPILE_OPTIONS, platform)


def shard_step(per_device: Callable, mesh: Mesh, *, fast_compile: bool = False):
    """jit(shard_map(per_device)) over `mesh`: state replicated, batch split on its axis 1,
    outputs replicated; the state argument is donated."""
    # check_vma=False: the pmap model. Gradients are per-device and averaged by our pmean.
    mapped = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(None, AXIS)),
                           out_specs=(P(), P()), check_vma=False)
    return jax.jit(mapped, donate_argnums=0,
                   compiler_options=compile_options(mesh, fast_compile))
