"""`wmprune eval`: rebuild a run's model from its checkpoint (or an exported weights file) and measure it
again — accuracy, loss and sparsity counted from the tensors, never read back from the run's files."""

from __future__ import annotations

from pathlib import Path

from wmprune import results
from wmprune.config import RunConfig
from wmprune.errors import UserError
from wmprune.models import build_model
from wmprune.models.cost import output_positions
from wmprune.pruning.mask import MaskSet, prunable_weights
from wmprune.runtime.checkpoint import load_checkpoint
from wmprune.runtime.devices import resolve_device
from wmprune.runtime.loaders import load_splits, make_loaders
from wmprune.runtime.metrics import evaluate
from wmprune.weights import load_weights


def measure_run(cfg: RunConfig, directory: Path, weights: Path | None = None) -> dict:
    """The run's summary fields (summary.csv names) measured again from its checkpoint or `weights` file."""
    device = resolve_device(cfg.device)
    splits = load_splits(cfg)
    model = build_model(cfg.model.name, splits.num_classes, cfg.model.width, splits.channels).to(device)
    state = load_weights(weights) if weights else load_checkpoint(directory / results.CHECKPOINT, device)["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"the weights do not fit the run's {cfg.model.name} ({str(exc).splitlines()[0][:160]}); "
                        "pass the file exported from this run") from None
    _, _, test_loader = make_loaders(cfg, splits, device)
    counts = MaskSet(prunable_weights(model, cfg.prune.prunable)).measure()
    positions = output_positions(model, tuple(splits.test_images.shape[1:]))
    return results.summarize(cfg, counts, positions, evaluate(model, test_loader, cfg.train.amp))
