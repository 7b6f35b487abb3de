"""Re-train committed runs from their own config.yaml and set the new numbers beside the committed ones: the
check that a study's cells hold on another machine, or bit for bit on the same one (README, "What
reproduces exactly").

Each RUN directory is trained afresh into `--out/<run name>` (`wmprune train --config RUN/config.yaml`, one
process each, one thread by default like a sweep worker); the table gives the committed and the new test
and validation top-1, their difference, both machines (summary.csv's `device`) and whether `metrics.csv`
is identical apart from its `seconds` column (and how many are). Across machines (another CPU: the runs move
by about a seed's worth) the mean Δ and its 95 % t-interval say whether they move one way. The last line is
`max_abs_diff=<largest |Δ test top-1|>`.

    python scripts/rerun_cells.py RUN [RUN ...] --out DIR [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wmprune import results
from wmprune.verdicts import paired_interval


def metrics_without_time(run: Path) -> list[dict[str, str]]:
    """metrics.csv's rows less the wall-clock column, the one that legitimately differs between two runs."""
    rows = results.read_csv(run / results.METRICS)
    return [{key: value for key, value in row.items() if key != "seconds"} for row in rows]


def _machine(summary: dict[str, str]) -> str:
    return f"{summary.get('device') or 'unrecorded'} {summary.get('cpu_capability') or ''}".strip()


def _percent(value: str | None) -> str:
    return f"{float(value):.2f}" if value else "—"  # runs without a validation split have no val_top1


def rerun(committed: Path, out: Path, threads: int) -> Path:
    fresh = out / committed.name
    command = [sys.executable, "-m", "wmprune", "train", "--config", str(committed / results.CONFIG),
               "--out", str(fresh), "--resume"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    return fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="committed run directories (with config.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="where the re-trained runs go")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    console = Console()
    missing = [str(run) for run in args.runs if not (run / results.SUMMARY).is_file()]
    if missing:
        console.print(f"error: no {results.SUMMARY} in {', '.join(missing)}; pass finished run directories")
        sys.exit(2)
    table = Table(title="committed vs re-trained")
    table.add_column("run", overflow="fold")
    for column in ("test then", "test now", "Δ", "val then", "val now", "machine then → now", "metrics.csv"):
        table.add_column(column)
    differences, identical = [], 0
    for committed in args.runs:
        fresh = rerun(committed, args.out, args.threads)
        then, now = results.read_csv(committed / results.SUMMARY)[0], results.read_csv(fresh / results.SUMMARY)[0]
        diff = float(now["test_top1"]) - float(then["test_top1"])
        differences.append(diff)
        same = metrics_without_time(committed) == metrics_without_time(fresh)
        identical += same
        machines = f"{_machine(then)} → {_machine(now)}"
        table.add_row(committed.name, _percent(then["test_top1"]), _percent(now["test_top1"]), f"{diff:+.2f}",
                      _percent(then.get("val_top1")), _percent(now["val_top1"]), machines,
                      "identical" if same else "differs")
    console.print(table)
    print(f"metrics.csv identical but for seconds: {identical} of {len(args.runs)}")
    mean, low, high = paired_interval(differences)
    spread = f", 95 % t-interval {low:+.2f} … {high:+.2f}" if len(differences) > 1 else ""
    print(f"mean Δ test top-1 (now − then) {mean:+.2f}{spread} over {len(differences)} runs")
    print(f"max_abs_diff={max(abs(d) for d in differences):.2f}")


if __name__ == "__main__":
    main()
