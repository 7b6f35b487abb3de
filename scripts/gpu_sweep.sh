#!/usr/bin/env bash
# A time-boxed sweep for a lent machine (docs/experiments.md, "On a lent GPU"): `wmprune sweep` for at most
# SECONDS, then the small files of every run it finished — as a study commits them, without checkpoints,
# event files or exported weights — packed into OUT/runs.tgz under their paths from the repository root, with
# the sweep's log and, where nvidia-smi exists, the card's utilisation every 10 s. Runs still training when
# time is up are stopped (their checkpoints stay on that machine, so a later sweep starts them anew).
#
#   scripts/gpu_sweep.sh GRID RUNS OUT SECONDS [WORKERS]    # from the repository root; RUNS relative to it
#   tar xzf OUT/runs.tgz                                     # back here, from the repository root
#
# Like gpu_check.sh it runs from this source tree on the PyTorch it finds; PYTHON picks the interpreter.
set -euo pipefail

USAGE="usage: scripts/gpu_sweep.sh GRID RUNS OUT SECONDS [WORKERS]"
GRID=${1:?$USAGE} RUNS=${2:?$USAGE} OUT=${3:?$USAGE} LIMIT=${4:?$USAGE} WORKERS=${5:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# shellcheck source=scripts/gpu_python.sh
source "$ROOT/scripts/gpu_python.sh"

START=$(mktemp)  # its mtime marks the runs this sweep finished
SAMPLER=""
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 10 > "$OUT/gpu_utilisation.csv" &
    SAMPLER=$!
fi

# timeout signals the sweep's whole process group, its training children included; 124 means time was up.
set +e
timeout -s TERM --kill-after=30 "$LIMIT" "$PYTHON" -m wmprune sweep --grid "$GRID" --out "$RUNS" \
    ${WORKERS:+--workers "$WORKERS"} > "$OUT/sweep.log" 2>&1
STATUS=$?
set -e
[[ -n "$SAMPLER" ]] && kill "$SAMPLER"

find "$RUNS" -name summary.csv -newer "$START" -printf '%h\n' | sort > "$OUT/finished.txt"
rm -f "$START"
tar czf "$OUT/runs.tgz" --exclude=checkpoint.pt --exclude='events.out.tfevents.*' \
    --exclude='weights.*.safetensors' --exclude='inference-plan.*.json' --exclude='.*.tmp' -T "$OUT/finished.txt"
case $STATUS in
    0) ENDED="the sweep finished" ;;
    124|137) ENDED="time was up after $LIMIT s" ;;
    *) ENDED="the sweep exited $STATUS (see $OUT/sweep.log)" ;;
esac
echo "gpu_sweep: $(wc -l < "$OUT/finished.txt") runs finished, $ENDED → $OUT/runs.tgz"
