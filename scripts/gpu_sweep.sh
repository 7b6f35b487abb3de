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

# timeout leads a process group of its own (its pid is the group's id) and signals the whole group, the
# sweep's training children included; 124 means time was up.
set +e
timeout -s TERM --kill-after=30 "$LIMIT" "$PYTHON" -m wmprune sweep --grid "$GRID" --out "$RUNS" \
    ${WORKERS:+--workers "$WORKERS"} > "$OUT/sweep.log" 2>&1 &
GROUP=$!
wait "$GROUP"
STATUS=$?
set -e
[[ -n "$SAMPLER" ]] && kill "$SAMPLER"

# timeout returns when the sweep has exited, but its children may still be exiting (or ignore the TERM):
# what is packed, and this script's return, wait until no live process of the group is left (KILL after
# the same 30 s). Zombies are left out: they are gone, and a container's init may never reap them.
group_alive() {
    ps -e -o pgid= -o stat= | awk -v group="$GROUP" '$1 == group && $2 !~ /^Z/ {alive = 1} END {exit !alive}'
}
for _ in $(seq 300); do group_alive || break; sleep 0.1; done
if group_alive; then
    kill -KILL -- "-$GROUP" 2>/dev/null || true
    while group_alive; do sleep 0.1; done
fi

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
