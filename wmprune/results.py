"""Run directories and the files in them (DESIGN.md, "Files on disk"). Every write is atomic."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import tempfile
from pathlib import Path

import torch

from wmprune.config import RunConfig

CONFIG, METRICS, LAYERS, SUMMARY, CHECKPOINT, LOG = (
    "config.yaml", "metrics.csv", "layers.csv", "summary.csv", "checkpoint.pt", "log.txt")
RUN_FILES = (CONFIG, METRICS, LAYERS, SUMMARY, CHECKPOINT, LOG)

METRIC_FIELDS = ["epoch", "step", "lr", "train_loss", "train_top1", "test_loss", "test_top1", "test_top5",
                 "sparsity", "seconds"]
LAYER_FIELDS = ["layer", "shape", "numel", "nonzero", "sparsity"]
SUMMARY_FIELDS = ["name", "model", "dataset", "method", "allocation", "seed", "target_sparsity", "sparsity",
                  "params_prunable", "params_nonzero", "compression_ratio", "weights_kept_pct", "test_top1",
                  "test_top5", "epochs", "seconds", "git_sha", "torch_version"]
EXPORT_FIELDS = ["dense_file_bytes", "bitmask_file_bytes"]  # appended by `wmprune export`


def default_run_dir(cfg: RunConfig) -> Path:
    return cfg.output.root / f"{cfg.name}-{cfg.short_hash()}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def _atomic_write(path: Path, write) -> None:
    """Write through a temp file in the same directory, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    _atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda handle: handle.write(data))


def atomic_torch_save(path: Path, obj) -> None:
    _atomic_write(path, lambda handle: torch.save(obj, handle))


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def update_summary(directory: Path, values: dict) -> None:
    """Set columns of a finished run's summary.csv row; columns beyond SUMMARY_FIELDS (EXPORT_FIELDS) go at
    the end, so readers of the contract's columns are unaffected."""
    row = read_csv(directory / SUMMARY)[0]
    row.update(values)
    write_csv(directory / SUMMARY, list(row), [row])


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def git_sha() -> str:
    """Commit of the wmprune source that ran, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
