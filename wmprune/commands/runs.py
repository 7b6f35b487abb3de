"""`wmprune runs [DIR]`: one line per run directory under DIR (any depth) — method, target, measured sparsity,
how far it got, val/test top-1 and whether it is finished, running, interrupted or failed.

It reads only the small run files (state.json, summary.csv, the last row of metrics.csv) and imports
neither torch nor pandas, so it answers at once on a sweep of hundreds of runs. The status:

- finished: summary.csv exists;
- failed: state.json recorded an exception in training (its `error` line is shown);
- running: state.json says running and its process is alive on this host;
- interrupted: state.json says running but its process on this host is gone (killed, or the machine
  restarted): `wmprune train --resume` (or the sweep again) continues it;
- running?: state.json says running on another host, whose processes cannot be checked from here;
- new: a config.yaml and nothing else yet (a sweep writes it before the run's turn comes);
- unknown: no state.json, but other run files (a run directory from a wmprune without state records).
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
from pathlib import Path

from rich import box
from rich.table import Table
from rich.text import Text

from wmprune import results
from wmprune.errors import UserError

FIELDS = ["run", "status", "method", "target_sparsity", "sparsity", "epoch", "epochs", "val_top1", "test_top1",
          "updated", "error"]
_TEXT = {"run", "status", "method", "updated", "error"}  # sorted as text; the others as numbers


def list_runs(root: Path, sort: str = "run", reverse: bool = False) -> list[dict[str, str]]:
    """One row (FIELDS, values as text; "" where a run has no value yet) per run directory under `root`."""
    if sort not in FIELDS:
        raise UserError(f"cannot sort by '{sort}'; choose one of {', '.join(FIELDS)}")
    if not root.is_dir():
        raise UserError(f"{root} is not a directory; pass the folder holding run directories (e.g. results/runs)")
    host = socket.gethostname()
    rows = [read_run(directory, root, host) for directory in run_directories(root)]
    if sort in _TEXT:
        return sorted(rows, key=lambda row: row[sort], reverse=reverse)
    known = sorted((row for row in rows if _float(row[sort]) is not None), key=lambda row: _float(row[sort]),
                   reverse=reverse)
    return known + [row for row in rows if _float(row[sort]) is None]  # runs without the value last, either way


def run_directories(root: Path) -> list[Path]:
    """Every directory under `root` (itself included) holding a config.yaml or state.json."""
    marks = {results.CONFIG, results.STATE}
    return sorted(Path(folder) for folder, _, files in os.walk(root) if marks.intersection(files))


def read_run(directory: Path, root: Path, host: str) -> dict[str, str]:
    state = _read_json(directory / results.STATE)
    summary = _read_rows(directory / results.SUMMARY)
    last = _last_row(directory / results.METRICS)
    finished = summary[0] if summary else {}
    name = directory.relative_to(root).as_posix() if directory != root else directory.name
    trained = (directory / results.METRICS).exists() or (directory / results.CHECKPOINT).exists()
    row = {
        "run": name, "status": status(state, bool(summary), trained, host),
        "method": finished.get("method") or state.get("method", ""),
        "target_sparsity": finished.get("target_sparsity") or state.get("target_sparsity", ""),
        # The measured sparsity: at the end, else of the network the last finished epoch trained.
        "sparsity": finished.get("sparsity") or last.get("sparsity", ""),
        "epoch": state.get("epoch", last.get("epoch", "")), "epochs": state.get("epochs", finished.get("epochs", "")),
        "val_top1": finished.get("val_top1") or last.get("val_top1", ""),
        "test_top1": finished.get("test_top1") or last.get("test_top1", ""),
        "updated": state.get("updated", ""), "error": state.get("error", ""),
    }
    return {key: str(value) for key, value in row.items()}


def status(state: dict, finished: bool, trained: bool, host: str) -> str:
    """The module docstring's status of a run from its state.json (`state`, {} when missing)."""
    if finished:
        return results.FINISHED
    recorded = state.get("status")
    if recorded is None:
        return "unknown" if trained else "new"
    if recorded != results.RUNNING:
        return recorded
    if state.get("host") != host:
        return "running?"
    pid = state.get("pid")
    return results.RUNNING if isinstance(pid, int) and pid_alive(pid) else "interrupted"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (signal 0 checks without sending anything)."""
    if pid <= 0:  # 0 and negative numbers address process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def runs_table(title: str, rows: list[dict[str, str]]) -> Table:
    """The table `wmprune runs` prints: val and test are top-1 in percent."""
    # No vertical rules and single spaces between columns: room for the run names.
    table = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    # On a narrow terminal the run name wraps; every other cell stays whole.
    table.add_column("run", overflow="fold")
    for column in ("method", "target", "sparsity", "epoch", "val", "test", "status"):
        table.add_column(column, justify="left" if column in ("method", "status") else "right", no_wrap=True)
    styles = {results.FINISHED: "green", results.RUNNING: "cyan", "interrupted": "yellow", results.FAILED: "red"}
    for row in rows:
        epoch = f"{row['epoch'] or '?'}/{row['epochs'] or '?'}" if row["status"] != "new" else ""
        # Text, not markup: a run name may hold brackets.
        table.add_row(Text(row["run"]), Text(row["method"]), _number(row["target_sparsity"], "{:.3f}"),
                      _number(row["sparsity"], "{:.4f}"), epoch, _number(row["val_top1"], "{:.2f}"),
                      _number(row["test_top1"], "{:.2f}"), Text(row["status"], style=styles.get(row["status"], "")))
    return table


def runs_csv(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _number(text: str, spec: str) -> str:
    value = _float(text)
    return text if value is None else spec.format(value)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _read_rows(path: Path) -> list[dict]:
    return results.read_csv(path) if path.is_file() else []


def _last_row(path: Path) -> dict:
    """The last row of a CSV file, parsed with its header only: metrics.csv grows by one row per epoch."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    return next(csv.DictReader([lines[0], lines[-1]]), {}) if len(lines) > 1 else {}
