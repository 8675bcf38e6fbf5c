#!/usr/bin/env bash
# wgan_jax against its PyTorch reference (benchmarks/torch_reference.py): gp mode, official
# batch sizes, both frameworks in float32 and bfloat16, alternating in two worker processes;
# prints the table BENCHMARKS.md keeps. Needs the torchref extra (pip install -e '.[torchref]').
# Time it on a machine with nothing else running.
#
#   bash benchmarks/vs_torch.sh                         # toy, mnist, cifar; 5 rounds
#   bash benchmarks/vs_torch.sh --archs mnist --rounds 9
#   bash benchmarks/vs_torch.sh --batch 4 --rounds 1 --steps 1 --n_critic 1   # smoke run
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "error: torch is not installed for $PYTHON: pip install -e '.[torchref]'" >&2
  exit 2
fi
exec "$PYTHON" benchmarks/vs_torch.py "$@"
