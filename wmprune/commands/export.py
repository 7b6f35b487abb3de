"""`wmprune export`: a finished run's weights as a really compressed file (format: wmprune/weights.py),
its size recorded in the run's summary.csv."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch

from wmprune import results
from wmprune.errors import UserError
from wmprune.runtime.checkpoint import load_checkpoint
from wmprune.weights import FORMATS, bitmask_bound, pack


@dataclass
class Export:
    path: Path
    bytes: int
    dense_bytes: int
    bound: int  # 1 bit per prunable weight + 4 bytes per non-zero + every other tensor dense


def run_state(run: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A finished run's model state dict (CPU, contiguous) and the names of its prunable weights."""
    if not (run / results.SUMMARY).is_file():
        raise UserError(f"{run} has no {results.SUMMARY}: export needs a finished run directory")
    state = load_checkpoint(run / results.CHECKPOINT, torch.device("cpu"))["model"]
    prunable = [row["layer"] for row in results.read_csv(run / results.LAYERS)]
    return {name: tensor.contiguous() for name, tensor in state.items()}, prunable


def export_run(run: Path, fmt: str, out: Path | None = None) -> Export:
    """Write the run's weights as `fmt` (default file `<run>/weights.<fmt>.safetensors`) and record the sizes in
    its summary.csv (`dense_file_bytes`, `bitmask_file_bytes`)."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    state, prunable = run_state(run)
    dense = safetensors.torch.save(state, {"format": "wmprune-dense"})
    data = dense if fmt == "dense" else safetensors.torch.save(*pack(state, prunable))
    path = out or run / f"weights.{fmt}.safetensors"
    results.atomic_write_bytes(path, data)
    results.update_summary(run, {"dense_file_bytes": len(dense), f"{fmt}_file_bytes": len(data)})
    return Export(path, len(data), len(dense), bitmask_bound(state, prunable))
