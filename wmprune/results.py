"""Run directories and the files in them (the README's run-file table and docs/experiments.md), the summary
row measured from tensors, and atomic writes. No torch here, so readers of run files stay light."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from typing import TYPE_CHECKING

from wmprune.errors import UserError
from wmprune.pruning.counts import LayerCounts, measured_sparsity

if TYPE_CHECKING:
    from wmprune.config import RunConfig

CONFIG, METRICS, LAYERS, SUMMARY, CHECKPOINT, LOG, STATE = (
    "config.yaml", "metrics.csv", "layers.csv", "summary.csv", "checkpoint.pt", "log.txt", "state.json")
RUN_FILES = (CONFIG, METRICS, LAYERS, SUMMARY, CHECKPOINT, LOG, STATE)
EVENTS = "events.out.tfevents.*"  # TensorBoard's event files (output.tensorboard)

METRIC_FIELDS = ["epoch", "step", "lr", "train_loss", "train_top1", "test_loss", "test_top1", "test_top5",
                 "sparsity", "seconds", "val_loss", "val_top1"]
LAYER_FIELDS = ["layer", "shape", "numel", "nonzero", "sparsity"]
SUMMARY_FIELDS = ["name", "model", "dataset", "method", "allocation", "seed", "target_sparsity", "sparsity",
                  "params_prunable", "params_nonzero", "compression_ratio", "weights_kept_pct", "test_top1",
                  "test_top5", "epochs", "seconds", "git_sha", "torch_version",
                  # appended after the first contract's columns:
                  "val_top1", "val_size", "macs_dense", "macs_pruned", "macs_reduction", "variant", "device",
                  "precision", "cpu_capability"]
# Everything wmprune writes into a run directory (`train --overwrite` removes exactly these).
INFERENCE = "inference.csv"  # written by `wmprune bench`, beside its per-batch plans inference-plan.*.json
WRITTEN_PATTERNS = (*RUN_FILES, EVENTS, "weights.*.safetensors", INFERENCE, "inference-plan.*.json")
# state.json's `status` while training, after the last epoch, and after an exception in training.
RUNNING, FINISHED, FAILED = "running", "finished", "failed"


def default_run_dir(cfg: RunConfig) -> Path:
    return cfg.output.root / f"{cfg.name}-{cfg.short_hash()}"


def written_files(directory: Path) -> list[Path]:
    """The files wmprune wrote in a run directory (nothing else a user put there)."""
    return sorted({path for pattern in WRITTEN_PATTERNS for path in directory.glob(pattern) if path.is_file()})


def holds_run(directory: Path) -> bool:
    """Whether `directory` holds a run wmprune wrote: the config.yaml of a run (a mapping with the run's
    sections) or a state.json record. Files that merely carry run files' names are not enough."""
    try:
        state = json.loads((directory / STATE).read_text())
        if isinstance(state, dict) and "status" in state:
            return True
    except (OSError, ValueError):
        pass
    config = first_lines(directory / CONFIG, 10_000)
    return all(f"\n{section}:" in f"\n{config}" for section in ("model", "data", "train", "prune"))


def summarize(cfg: RunConfig, counts: list[LayerCounts], positions: dict[str, int], test: dict[str, float]) -> dict:
    """The measured part of summary.csv (also `wmprune eval --json`). `positions`: output positions per image
    of each layer's weight (models/cost.py), for the multiply-adds of the dense and the pruned network."""
    sparsity, prunable, nonzero = measured_sparsity(counts)
    macs_dense = sum(c.numel * positions[c.layer] for c in counts)
    macs_pruned = sum(c.nonzero * positions[c.layer] for c in counts)
    return {
        "name": cfg.name, "model": cfg.model.name, "dataset": cfg.data.name, "method": cfg.prune.method,
        "allocation": cfg.prune.allocation, "seed": cfg.seed, "target_sparsity": cfg.prune.target_sparsity,
        "sparsity": sparsity, "params_prunable": prunable, "params_nonzero": nonzero,
        "compression_ratio": prunable / nonzero if nonzero else float("inf"),
        "weights_kept_pct": 100.0 * nonzero / prunable,
        **test,
        "val_size": cfg.data.val_size, "macs_dense": macs_dense, "macs_pruned": macs_pruned,
        "macs_reduction": macs_dense / macs_pruned if macs_pruned else float("inf"),
        "variant": cfg.variant or "",
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: Path, write) -> None:
    """Write through a temp file in the same directory, then rename: readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # a file where a folder should be, no permission, a full disk
        raise UserError(f"cannot write {path}: {exc.strerror or exc}; choose a writable place") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)  # mkstemp creates 0600; run files should read like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def update_summary(directory: Path, values: dict) -> None:
    """Set columns of a finished run's summary.csv row; columns beyond SUMMARY_FIELDS (those `wmprune export`
    adds) go at the end, so readers of the contract's columns are unaffected."""
    row = read_csv(directory / SUMMARY)[0]
    row.update(values)
    write_csv(directory / SUMMARY, list(row), [row])


def write_state(directory: Path, status: str, *, epoch: int, epochs: int, method: str, target_sparsity: float,
                error: str = "") -> None:
    """state.json: whether the run is going (and which process on which host runs it), how far it got, and
    the error line of a failed run. Rewritten at start, after every epoch, at the end and on failure."""
    record = {"status": status, "pid": os.getpid(), "host": socket.gethostname(), "epoch": epoch, "epochs": epochs,
              "method": method, "target_sparsity": target_sparsity,
              "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "error": error}
    atomic_write_text(directory / STATE, json.dumps(record, indent=1) + "\n")


def check_output_file(path: Path, option: str, overwrite: bool, written_by_us) -> None:
    """Refuse, before anything is written, to write `path` where it is a directory, or where it holds a file
    that `written_by_us(path)` does not recognise as wmprune's own and `overwrite` was not passed."""
    if path.is_dir():
        raise UserError(f"{option} {path} is a directory; pass the path of a file")
    if path.exists() and not overwrite and not written_by_us(path):
        raise UserError(f"{path} exists and is not a file wmprune wrote; pass --overwrite to replace it, "
                        f"or another {option}")


def check_output_directory(path: Path, option: str) -> None:
    """Refuse a directory option that names an existing file."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is a file, not a directory; pass a directory")


def first_lines(path: Path, count: int, limit: int = 65536) -> str:
    """The first `count` lines of a text file ("" for a binary, unreadable or empty one), read without loading
    it all."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(limit)
        return "\n".join(head.decode(errors="replace").splitlines()[:count])
    except OSError:
        return ""


def first_line(path: Path) -> str:
    return first_lines(path, 1, 4096)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_run_file(path: Path, columns: list[str], fix: str) -> list[dict]:
    """The rows of a CSV run file, which must exist, read as text, hold `columns` and at least one row; any other
    state is a one-line UserError ending in `fix`."""
    if not path.is_file():
        raise UserError(f"{path} is missing or not a file; {fix}")
    try:
        rows = read_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path} ({type(exc).__name__}); {fix}") from None
    missing = [column for column in columns if not rows or column not in rows[0]]
    if not rows or missing:
        raise UserError(f"{path} is damaged ({'no ' + ', '.join(missing) + ' column' if rows else 'no rows'}); {fix}")
    return rows


def git_sha() -> str:
    """Commit of the wmprune source that ran, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
