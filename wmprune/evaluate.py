"""Top-1 / top-5 accuracy and mean loss of a model on a split, and the run summary built from tensors."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from wmprune.config import RunConfig
from wmprune.data.loader import TensorLoader
from wmprune.pruning.mask import LayerCounts, measured_sparsity


def autocast(device: torch.device, amp: str):
    """bf16 autocast on CUDA (amp auto|bf16); full precision elsewhere, where bf16 is slow."""
    if device.type == "cuda" and amp in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, loader: TensorLoader, amp: str = "auto") -> dict[str, float]:
    """test_loss (mean cross-entropy), test_top1 and test_top5 in percent over the whole split."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=loader.device)
    top1 = torch.zeros((), dtype=torch.long, device=loader.device)
    top5 = torch.zeros((), dtype=torch.long, device=loader.device)
    for images, labels in loader.epoch(0):
        with autocast(loader.device, amp):
            logits = model(images)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        ranked = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = ranked == labels[:, None]
        top1 += hits[:, 0].sum()
        top5 += hits.any(dim=1).sum()
    model.train(was_training)
    n = len(loader.labels)
    return {"test_loss": loss_sum.item() / n, "test_top1": 100.0 * top1.item() / n,
            "test_top5": 100.0 * top5.item() / n}


def summarize(cfg: RunConfig, counts: list[LayerCounts], test: dict[str, float]) -> dict:
    """The measured part of summary.csv (also `wmprune eval --json`)."""
    sparsity, prunable, nonzero = measured_sparsity(counts)
    return {
        "name": cfg.name, "model": cfg.model.name, "dataset": cfg.data.name, "method": cfg.prune.method,
        "allocation": cfg.prune.allocation, "seed": cfg.seed, "target_sparsity": cfg.prune.target_sparsity,
        "sparsity": sparsity, "params_prunable": prunable, "params_nonzero": nonzero,
        "compression_ratio": prunable / nonzero if nonzero else float("inf"),
        "weights_kept_pct": 100.0 * nonzero / prunable,
        **test,
    }


def measure_run(cfg: RunConfig, directory, weights=None) -> dict:
    """Rebuild the model from a run's checkpoint, or from an exported `weights` file, and measure it: `wmprune eval`."""
    from wmprune import results
    from wmprune.errors import UserError
    from wmprune.export import load_weights
    from wmprune.models import build_model
    from wmprune.pruning.mask import MaskSet, prunable_weights
    from wmprune.train import load_checkpoint, load_splits, make_loaders, resolve_device

    device = resolve_device(cfg.device)
    splits = load_splits(cfg)
    model = build_model(cfg.model.name, splits.num_classes, cfg.model.width, splits.channels).to(device)
    state = load_weights(weights) if weights else load_checkpoint(directory / results.CHECKPOINT, device)["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"the weights do not fit the run's {cfg.model.name} ({str(exc).splitlines()[0][:160]}); "
                        "pass the file exported from this run") from None
    _, test_loader = make_loaders(cfg, splits, device)
    counts = MaskSet(prunable_weights(model, cfg.prune.prunable)).measure()
    return summarize(cfg, counts, evaluate(model, test_loader, cfg.train.amp))
