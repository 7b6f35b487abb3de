"""`wmprune export`: a finished run's weights as a really compressed file (format: wmprune/weights.py),
its size recorded in the run's summary.csv."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch

from wmprune import results
from wmprune.errors import UserError
from wmprune.config import shown
from wmprune.runtime.checkpoint import load_checkpoint, model_state
from wmprune.weights import FORMATS, bitmask_bound, is_weights_file, pack


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
    fix = "export needs a finished run directory; retrain the run"
    results.read_run_file(run / results.SUMMARY, ["name"], fix)  # export records its sizes in it
    state = model_state(load_checkpoint(run / results.CHECKPOINT, torch.device("cpu")), run / results.CHECKPOINT)
    prunable = [row["layer"] for row in results.read_run_file(run / results.LAYERS, ["layer"], fix)]
    return {name: tensor.contiguous() for name, tensor in state.items()}, prunable


def export_run(run: Path, fmt: str, out: Path | None = None, overwrite: bool = False) -> Export:
    """Write the run's weights as `fmt` (default file `<run>/weights.<fmt>.safetensors`) and record the sizes in
    its summary.csv (`dense_file_bytes`, `bitmask_file_bytes`). A file at `out` that is not a wmprune weights
    file is replaced only with `overwrite`."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)} (got {shown(fmt)})")
    path = out or run / f"weights.{fmt}.safetensors"
    results.check_output_file(path, "--out", overwrite, is_weights_file)
    state, prunable = run_state(run)
    dense = safetensors.torch.save(state, {"format": "wmprune-dense"})
    data = dense if fmt == "dense" else safetensors.torch.save(*pack(state, prunable))
    results.atomic_write_bytes(path, data)
    results.update_summary(run, {"dense_file_bytes": len(dense), f"{fmt}_file_bytes": len(data)})
    return Export(path, len(data), len(dense), bitmask_bound(state, prunable))
