#!/usr/bin/env bash
# The accelerator check, for a fresh GPU/TPU machine that has jax, flax and optax but not clu,
# TensorFlow or TFDS (about 11 minutes with the default budgets):
#
#     bash benchmarks/device_check.sh [TABLE_BUDGET_S] [RESNET_BUDGET_S]
#
# 1. If ml_collections is missing, installs the wheels found in .whl/ (ml_collections, and
#    absl-py / PyYAML where those are missing too) into a temporary folder.
# 2. Runs tests/test_accelerator.py on the accelerator: the step with XLA convolutions equals the
#    matmul form (float32 and bfloat16), one device equals all devices.
# 3. Prints benchmarks/device_table.py's table (arch x mode x compute_dtype x batch, with MFU),
#    stopping new cases after TABLE_BUDGET_S seconds (default 300), then the ResNets' table
#    (resnet32, resnet64; gp; paper batch) within RESNET_BUDGET_S seconds (default 150).
# Exit status 0 when all three parts pass.
set -uo pipefail
cd "$(dirname "$0")/.."
budget="${1:-300}"
resnet_budget="${2:-150}"
if ! python3 -c "import ml_collections" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/wgan_jax_site \
      .whl/*.whl || exit 2
    export PYTHONPATH="/tmp/wgan_jax_site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "error: ml_collections is not installed and .whl/ holds no wheels: pip install" \
         "ml-collections, or put its wheel (and absl-py, PyYAML if missing) into .whl/" >&2
    exit 2
  fi
fi
python3 -c "import jax; print('jax', jax.__version__, jax.devices())" || exit 2
WGAN_JAX_TEST_ACCELERATOR=1 timeout 300 python3 -m pytest -q -p no:cacheprovider \
  tests/test_accelerator.py
tests=$?
timeout "$((budget + 180))" python3 benchmarks/device_table.py --budget_s "$budget"
table=$?
timeout "$((resnet_budget + 240))" python3 benchmarks/device_table.py --archs resnet32,resnet64 \
  --modes gp --batches default --budget_s "$resnet_budget"
resnets=$?
echo "device_check: tests exit status $tests, table exit status $table, resnet table exit" \
     "status $resnets"
[ "$tests" -eq 0 ] && [ "$table" -eq 0 ] && [ "$resnets" -eq 0 ]
