"""Copy into a study's run directory the finished runs of an earlier study that are still valid for it: points
of the grid as it resolves now (same config, hence the same directory name — the run identity ignores the
machine, so a run of another class would otherwise be skipped as finished), of the given machine class and
thread count, and not of an excluded method or seed. Run it before each stage of a sweep: once before tuning
(`--stage tuning`), and again once tuning has chosen (`--stage main`), since the main runs are known only then.

    python scripts/reuse_runs.py GRID OLD_RUNS NEW_RUNS --stage tuning|main [--machine-class cpu/fp32]
        [--threads 1] [--exclude-method rigl] [--exclude-seed 0]

The Fashion-MNIST study (docs/results-fashion-mnist.md) took its valid v1 runs this way. The last line is
`copied=<number of runs copied>`.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
from pathlib import Path

import pandas as pd

from wmprune import results
from wmprune.commands.grid import load_grid
from wmprune.commands.report import UNRECORDED, machine_class


def class_and_threads(summary: dict[str, str]) -> tuple[str, int | None]:
    """(machine class as the report sees it, CPU threads) of a run from its summary.csv row: `cpu/fp32` and 1
    for "cpu (fp32, 1 threads)"."""
    device = summary.get("device") or UNRECORDED
    frame = pd.DataFrame({"device": [device], "precision": [summary.get("precision") or math.nan]})
    threads = re.search(r"(\d+) threads", device)
    return machine_class(frame).iloc[0], int(threads.group(1)) if threads else None


def reusable(grid: Path, old: Path, new: Path, stage: str, wanted_class: str, threads: int | None,
             excluded_methods: set[str], excluded_seeds: set[int]) -> list[Path]:
    """The directories under `old` to copy: finished runs that are `stage` points of the grid, not yet in
    `new`, of the wanted class and thread count, and not excluded."""
    resolved = load_grid(grid, new)
    tuning = resolved.tuning_directories
    chosen = []
    for point in resolved.points:
        if (point.directory in tuning) != (stage == "tuning") or point.finished:
            continue
        candidate = old / point.directory.name
        if not (candidate / results.SUMMARY).is_file():
            continue
        summary = results.read_csv(candidate / results.SUMMARY)[0]
        run_class, run_threads = class_and_threads(summary)
        if run_class != wanted_class or (threads is not None and run_threads != threads):
            continue
        if summary["method"] in excluded_methods or int(summary["seed"]) in excluded_seeds:
            continue
        chosen.append(candidate)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("old", type=Path, help="the earlier study's runs directory")
    parser.add_argument("new", type=Path, help="this study's runs directory (the sweep's --out)")
    parser.add_argument("--stage", choices=["tuning", "main"], required=True)
    parser.add_argument("--machine-class", default="cpu/fp32")
    parser.add_argument("--threads", type=int, default=1, help="0: any thread count")
    parser.add_argument("--exclude-method", action="append", default=[])
    parser.add_argument("--exclude-seed", action="append", type=int, default=[])
    args = parser.parse_args()
    chosen = reusable(args.grid, args.old, args.new, args.stage, args.machine_class, args.threads or None,
                      set(args.exclude_method), set(args.exclude_seed))
    for directory in chosen:
        shutil.copytree(directory, args.new / directory.name, ignore=shutil.ignore_patterns(results.CHECKPOINT))
        print(f"copied {directory.name}")
    print(f"copied={len(chosen)}")


if __name__ == "__main__":
    main()
