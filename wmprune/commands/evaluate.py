"""`wmprune eval`: rebuild a run's model from its checkpoint (or an exported weights file) and measure it
again — accuracy, loss and sparsity counted from the tensors, never read back from the run's files."""

from __future__ import annotations

from pathlib import Path

from wmprune import results
from wmprune.config import RunConfig
from wmprune.models.cost import output_positions
from wmprune.pruning.mask import MaskSet, prunable_weights
from wmprune.runtime.checkpoint import load_trained
from wmprune.runtime.devices import resolve_device
from wmprune.runtime.loaders import make_loaders
from wmprune.runtime.metrics import evaluate


def measure_run(cfg: RunConfig, directory: Path, weights: Path | None = None) -> dict:
    """The run's summary fields (summary.csv names) measured again from its checkpoint or `weights` file."""
    device = resolve_device(cfg.device)
    model, splits, stats = load_trained(cfg, directory, device, weights)
    _, _, test_loader = make_loaders(cfg, splits, device, stats=stats)
    counts = MaskSet(prunable_weights(model, cfg.prune.prunable)).measure()
    positions = output_positions(model, tuple(splits.test_images.shape[1:]))
    return results.summarize(cfg, counts, positions, evaluate(model, test_loader, cfg.train.amp))
