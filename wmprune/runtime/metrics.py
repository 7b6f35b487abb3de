"""Top-1 / top-5 accuracy and mean loss of a model on a split (under torchrun: each process its slice)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmprune.data.loader import TensorLoader
from wmprune.runtime.devices import World, autocast, from_main, sum_across


@torch.no_grad()
def evaluate(model: nn.Module, loader: TensorLoader, amp: str = "auto", split: str = "test",
             world: World = World()) -> dict[str, float]:
    """`<split>_loss` (mean cross-entropy), `<split>_top1` and `<split>_top5` in percent over the whole split.

    Under torchrun each process evaluates its slice of the split (the loader's shard) with rank 0's
    BatchNorm statistics (DDP leaves each process its own between broadcasts), and the sums are added.
    """
    from_main(world, list(model.buffers()))
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=loader.device)
    top1 = torch.zeros((), dtype=torch.long, device=loader.device)
    top5 = torch.zeros((), dtype=torch.long, device=loader.device)
    seen = torch.zeros((), dtype=torch.long, device=loader.device)
    for images, labels in loader.epoch(0):
        with autocast(loader.device, amp):
            logits = model(images)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        ranked = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = ranked == labels[:, None]
        top1 += hits[:, 0].sum()
        top5 += hits.any(dim=1).sum()
        seen += len(labels)
    model.train(was_training)
    sum_across(world, loss_sum, top1, top5, seen)
    n = seen.item()
    return {f"{split}_loss": loss_sum.item() / n, f"{split}_top1": 100.0 * top1.item() / n,
            f"{split}_top5": 100.0 * top5.item() / n}
