"""Train every method × sparsity × seed from one base config, then print a markdown table of test top-1.

    python scripts/compare_digits.py --out results/runs/compare-digits --workers 2

Each run is a `wmprune train` subprocess into <out>/<method>-<sparsity>-seed<seed>; finished runs
(summary.csv present) are skipped, so the script can be stopped and rerun. `--table-only` just reads.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

METHODS = ["weightmom", "gmp", "magnitude", "imp", "sparse_momentum", "snip", "random"]
SPARSITIES = [0.95, 0.98, 0.99, 0.995]


def run_dir(out: Path, method: str, sparsity: float, seed: int) -> Path:
    return out / f"{method}-{sparsity}-seed{seed}"


def train(config: Path, out: Path, method: str, sparsity: float, seed: int, extra: list[str]) -> None:
    directory = run_dir(out, method, sparsity, seed)
    if (directory / "summary.csv").exists():
        return
    command = [sys.executable, "-m", "wmprune", "train", "--config", str(config), "--out", str(directory),
               "--overwrite", "--set", f"prune.method={method}", "--set", f"prune.target_sparsity={sparsity}",
               "--set", f"seed={seed}", *(arg for item in extra for arg in ("--set", item))]
    # One thread per run: parallel runs on a few cores beat one run fighting over them.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    status = "ok" if result.returncode == 0 else f"FAILED: {result.stderr.strip().splitlines()[-1:]}"
    print(f"{directory.name}: {status}", flush=True)


def table(out: Path, cells: list[tuple[str, float]], seeds: list[int]) -> str:
    """Mean ± std of test top-1 (and mean measured sparsity) per method and sparsity."""
    rows: dict[tuple[str, float], list[dict]] = {}
    for method, sparsity in cells:
        for seed in seeds:
            summary = run_dir(out, method, sparsity, seed) / "summary.csv"
            if summary.exists():
                rows.setdefault((method, sparsity), []).append(next(csv.DictReader(summary.open())))
    columns = sorted({s for _, s in cells if s > 0})
    lines = ["| method | " + " | ".join(f"{s:g}" for s in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for method in dict.fromkeys(m for m, _ in cells):
        entries = []
        for sparsity in columns if method != "none" else [0.0]:
            runs = rows.get((method, sparsity), [])
            top1 = [float(r["test_top1"]) for r in runs]
            if not top1:
                entries.append("—")
                continue
            spread = f" ± {statistics.stdev(top1):.2f}" if len(top1) > 1 else ""
            measured = statistics.mean(float(r["sparsity"]) for r in runs)
            entries.append(f"{statistics.mean(top1):.2f}{spread} (n={len(top1)}, s={measured:.4f})")
        if method == "none":
            entries = entries * len(columns)
        lines.append(f"| {'dense' if method == 'none' else method} | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/digits/vgg16.yaml"))
    parser.add_argument("--out", type=Path, default=Path("results/runs/compare-digits"))
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--sparsities", nargs="+", type=float, default=SPARSITIES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--dense", action=argparse.BooleanOptionalAction, default=True, help="also train dense")
    parser.add_argument("--set", dest="extra", action="append", default=[], help="extra override for every run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    cells = [("none", 0.0)] if args.dense else []
    cells += [(m, s) for s in args.sparsities for m in args.methods]
    if not args.table_only:
        jobs = [(m, s, seed) for seed in args.seeds for m, s in cells]
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda job: train(args.config, args.out, *job, args.extra), jobs))
    print(table(args.out, cells, args.seeds))


if __name__ == "__main__":
    main()
