"""Test setup: several fake CPU devices, set before JAX is imported anywhere."""
import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
if not os.environ.get("WGAN_JAX_TEST_ACCELERATOR"):
    # benchmarks/device_check.sh sets it to run tests/test_accelerator.py on the GPU/TPU.
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402

# The tests' models are tiny: XLA's optimization passes would cost far more time than they
# save. Numerics stay float32 either way; the benchmarks measure the optimized programs.
jax.config.update("jax_disable_most_optimizations", True)
