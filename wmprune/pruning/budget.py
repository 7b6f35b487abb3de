"""Exact integer per-layer budgets: what an allocation sees of the network (`LayerStats`), the allocation
signature, and the proportional split of a count across layers under per-layer caps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


def distribute(total: int, weights: torch.Tensor, caps: torch.Tensor) -> torch.Tensor:
    """Split `total` removals in proportion to `weights`, exactly, without exceeding `caps`.

    Water-filling: layers whose share exceeds their cap are filled and the rest is re-split among the
    others; integer rounding by largest remainder so the counts sum to `total`.
    """
    caps = caps.long()
    if total > int(caps.sum()):
        raise ValueError(f"cannot prune {total} more weights: the layer caps allow only {int(caps.sum())}")
    counts = torch.zeros_like(caps)
    open_ = caps > 0
    remaining = total
    weights = weights.double().clamp(min=0)
    while remaining > 0:
        w = torch.where(open_, weights, torch.zeros_like(weights))
        if w.sum() <= 0:
            w = open_.double()
        share = remaining * w / w.sum()
        room = (caps - counts).double()
        full = open_ & (share >= room)
        if full.any():
            remaining -= int((caps - counts)[full].sum())
            counts[full] = caps[full]
            open_ &= ~full
            continue
        counts += round_up_largest(share, remaining - int(share.floor().sum()))
        remaining = 0
    return counts


def round_up_largest(values: torch.Tensor, count: int) -> torch.Tensor:
    """floor(values) as int64, plus one for the `count` entries with the largest fractional parts."""
    rounded = values.floor().long()
    order = torch.argsort(values - rounded.double(), descending=True, stable=True)
    rounded[order[:count]] += 1
    return rounded


@dataclass
class LayerStats:
    """What an allocation may look at. Counts are int64 CPU tensors, one entry per prunable layer."""

    numels: torch.Tensor
    pruned: torch.Tensor
    scores: list[torch.Tensor]  # per-weight importance
    masks: list[torch.Tensor]  # 1 = kept
    shapes: list[tuple[int, ...]]
    max_layer_sparsity: float
    gamma: float
    dense: torch.Tensor | None = None  # bool per layer: kept dense (prune.dense_first_layer / _last_layer)

    def open_numels(self) -> torch.Tensor:
        """Sizes of the layers that may be pruned; 0 for layers kept dense."""
        if self.dense is None:
            return self.numels
        return self.numels.masked_fill(self.dense, 0)

    def caps(self, target_pruned: int) -> torch.Tensor:
        """Most weights each layer may still lose; 0 for dense layers.

        The ceiling is `max_layer_sparsity`, or the sparsity the open layers need for the target if that is
        higher. Flooring every layer can leave the caps a few weights short of the target, so the
        ceiling is rounded by largest remainder instead: the target stays reachable exactly.
        """
        open_numels = self.open_numels()
        ceiling = max(self.max_layer_sparsity, target_pruned / float(open_numels.sum()))
        allowed = open_numels.double() * min(ceiling, 1.0)
        short = max(0, target_pruned - int(allowed.floor().sum()))
        return (round_up_largest(allowed, short) - self.pruned).clamp(min=0)


# (state of every prunable layer, network-wide number of weights that must be zero) -> pruned count per layer
Allocation = Callable[[LayerStats, int], torch.Tensor]
