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
- unknown: no state.json, but other run files (a run directory from a wmprune without state records);
- damaged: a run file cannot be read as wmprune writes it (the reason is shown); the other runs are listed.
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
from wmprune.config import shown
from wmprune.errors import UserError

FIELDS = ["run", "status", "method", "target_sparsity", "sparsity", "epoch", "epochs", "val_top1", "test_top1",
          "updated", "error"]
_TEXT = {"run", "status", "method", "updated", "error"}  # sorted as text; the others as numbers


def list_runs(root: Path, sort: str = "run", reverse: bool = False) -> list[dict[str, str]]:
    """One row (FIELDS, values as text; "" where a run has no value yet) per run directory under `root`."""
    if sort not in FIELDS:
        raise UserError(f"cannot sort by {shown(sort)}; choose one of {', '.join(FIELDS)}")
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


DAMAGED = "damaged"


class DamagedRun(ValueError):
    """A run file that cannot be read as wmprune writes it; the message says which and why."""


def read_run(directory: Path, root: Path, host: str) -> dict[str, str]:
    name = directory.relative_to(root).as_posix() if directory != root else directory.name
    try:
        return _read_run(directory, name, host)
    except DamagedRun as exc:
        return {**dict.fromkeys(FIELDS, ""), "run": name, "status": DAMAGED, "error": str(exc)}


def _read_run(directory: Path, name: str, host: str) -> dict[str, str]:
    state = _read_json(directory / results.STATE)
    summary = _read_rows(directory / results.SUMMARY)
    if (directory / results.SUMMARY).exists() and not summary:
        raise DamagedRun(f"{results.SUMMARY} holds no row")
    last = _last_row(directory / results.METRICS)
    finished = summary[0] if summary else {}
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
    except (ProcessLookupError, OverflowError):  # gone, or a number no process can have
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def runs_table(title: str, rows: list[dict[str, str]]) -> Table:
    """The table `wmprune runs` prints: val and test are top-1 in percent."""
    # No vertical rules and single spaces between columns: room for the run names.
    table = Table(title=Text(title), box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    # On a narrow terminal the run name wraps; every other cell stays whole.
    table.add_column("run", overflow="fold")
    for column in ("method", "target", "sparsity", "epoch", "val", "test", "status"):
        table.add_column(column, justify="left" if column in ("method", "status") else "right", no_wrap=True)
    styles = {results.FINISHED: "green", results.RUNNING: "cyan", "interrupted": "yellow", results.FAILED: "red",
              DAMAGED: "red"}
    for row in rows:
        epoch = f"{row['epoch'] or '?'}/{row['epochs'] or '?'}" if row["status"] not in ("new", DAMAGED) else ""
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


# state.json's fields and the types wmprune writes them with (a number may be an int where a float is written).
_STATE_TYPES = {"status": str, "pid": int, "host": str, "epoch": int, "epochs": int, "method": str,
                "target_sparsity": (int, float), "updated": str, "error": str}


def _read_json(path: Path) -> dict:
    """state.json as written by `results.write_state` ({} when there is none)."""
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # a directory, binary, not JSON
        raise DamagedRun(f"{path.name} is unreadable ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise DamagedRun(f"{path.name} holds a JSON {type(state).__name__}, not a JSON object")
    for key, kind in _STATE_TYPES.items():
        if key in state and (not isinstance(state[key], kind) or isinstance(state[key], bool)):
            raise DamagedRun(f"{path.name}: '{key}' is not a {kind.__name__ if isinstance(kind, type) else 'number'}")
    return state


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        rows = results.read_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DamagedRun(f"{path.name} is unreadable ({type(exc).__name__})") from None
    return [_text_row(row, path) for row in rows]


def _last_row(path: Path) -> dict:
    """The last row of a CSV file, parsed with its header only: metrics.csv grows by one row per epoch."""
    if not path.exists():
        return {}
    try:
        lines = path.read_text().splitlines()
        row = next(csv.DictReader([lines[0], lines[-1]]), {}) if len(lines) > 1 else {}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DamagedRun(f"{path.name} is unreadable ({type(exc).__name__})") from None
    return _text_row(row, path)


def _text_row(row: dict, path: Path) -> dict:
    """A CSV row whose every cell is text: a row with more cells than its header is damaged."""
    if None in row or any(value is None for value in row.values()):
        raise DamagedRun(f"{path.name} has rows that do not match its header")
    return row
