"""Test setup: several fake CPU devices, set before JAX is imported anywhere."""
import atexit
import os
import shutil
import tempfile

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
if not os.environ.get("WGAN_JAX_TEST_ACCELERATOR"):
    # benchmarks/device_check.sh sets it to run tests/test_accelerator.py on the GPU/TPU.
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Many tests compile the same programs (a resume re-traces the run it continues; several tests
# train the same tiny models, some in subprocesses): one persistent cache for the session
# compiles each once. It is a fresh folder unless JAX_COMPILATION_CACHE_DIR names one, so a run
# never reads programs compiled by an older checkout; test subprocesses and pytest-xdist
# workers inherit it through the environment.
if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="wgan_jax_test_xla_")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

# The tests' models are tiny: XLA's optimization passes would cost far more time than they
# save. Numerics stay float32 either way; the benchmarks measure the optimized programs. Set
# through the environment so test subprocesses compile (and hit the cache) the same way.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax  # noqa: E402

jax.config.update("jax_disable_most_optimizations", True)

