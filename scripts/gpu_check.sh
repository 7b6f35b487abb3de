#!/usr/bin/env bash
# The GPU check, in one go and under 5 minutes on one H100-class card: training throughput of VGG16 and
# ResNet50 (width 1, bf16) — wmprune eager and compiled against the usual PyTorch recipe — on CIFAR-shaped
# random images (and a Fashion-MNIST subset when its files are in data/), then the CUDA test that no
# training step synchronises with the host (tests/test_host_sync.py). Figures, the card's name and the
# test's output go to OUTDIR.
#
#   scripts/gpu_check.sh OUTDIR [--dry-run]      # --dry-run: the same steps on the CPU at toy sizes
#
# It runs from this source tree on the PyTorch it finds (nothing of torch is installed). A machine without
# network and without pydantic or pytest gets them from gpu-wheels/, which `make gpu-wheels` fills on a
# machine with network before the tree is sent (see docs/performance.md). PYTHON picks the interpreter.
set -euo pipefail

OUT=${1:?usage: scripts/gpu_check.sh OUTDIR [--dry-run]}
DRY=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# shellcheck source=scripts/gpu_python.sh
source "$ROOT/scripts/gpu_python.sh"

{
    echo "# GPU check"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    "$PYTHON" - <<'PY'
import platform

import torch

card = torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CPU)"
print(f"- card: {card}")
print(f"- torch {torch.__version__}, CUDA {torch.version.cuda}, Python {platform.python_version()}")
PY
    if command -v nvidia-smi >/dev/null 2>&1; then
        echo "- nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)"
    fi
    echo "- command: scripts/gpu_check.sh $OUT $DRY"
    echo
} > "$OUT/gpu_check.md"

"$PYTHON" "$ROOT/scripts/gpu_throughput.py" --out "$OUT" ${DRY:+--dry-run}
cat "$OUT/gpu_throughput.md" >> "$OUT/gpu_check.md"

# The CUDA sync test (skipped, and said so, without CUDA).
set +e
"$PYTHON" -m pytest -q -rs -p no:cacheprovider "$ROOT/tests/test_host_sync.py" > "$OUT/host_sync_tests.txt" 2>&1
STATUS=$?
set -e
{
    echo
    echo "## tests/test_host_sync.py (exit $STATUS)"
    echo
    echo '```'
    tail -n 15 "$OUT/host_sync_tests.txt"
    echo '```'
} >> "$OUT/gpu_check.md"
echo "gpu_check: wrote $OUT/gpu_check.md"
exit $STATUS
