"""Exact integer per-layer budgets: what an allocation sees of the network (`LayerStats`), the allocation
signature, the per-layer floors, and the proportional split of a count across layers under per-layer caps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from wmprune.config import PruneConfig


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


def min_kept(numels: torch.Tensor, dense: torch.Tensor, target_sparsity: float, fraction: float) -> torch.Tensor:
    """Fewest weights each layer keeps (int64): max(1, ⌈f·(1 − s)·n⌉) for a layer of n weights, with f =
    `prune.min_layer_density` and s = `prune.target_sparsity`; all n for a layer kept dense.

    Relative to the network's density 1 − s, so the floor scales with the target instead of capping every
    layer at one absolute sparsity (which at a target equal to the cap forces every allocation to be
    uniform); the 1 means rounding never empties a layer. Fixed by the final target, so a run that meets
    its floors at the end meets them at every earlier pruning event.
    """
    floors = torch.ceil(fraction * (1.0 - target_sparsity) * numels.double()).long().clamp(min=1)
    return torch.where(dense, numels, torch.minimum(floors, numels))


@dataclass
class LayerStats:
    """What an allocation may look at. Counts are int64 CPU tensors, one entry per prunable layer."""

    numels: torch.Tensor
    pruned: torch.Tensor
    scores: list[torch.Tensor]  # per-weight importance
    masks: list[torch.Tensor]  # 1 = kept
    shapes: list[tuple[int, ...]]
    min_kept: torch.Tensor  # fewest weights each layer keeps (`min_kept`); all of a dense layer
    config: PruneConfig  # the run's prune section: an allocation reads its own knobs there
    dense: torch.Tensor | None = None  # bool per layer: kept dense (prune.dense_first_layer / _last_layer)

    def open_numels(self) -> torch.Tensor:
        """Sizes of the layers that may be pruned; 0 for layers kept dense."""
        if self.dense is None:
            return self.numels
        return self.numels.masked_fill(self.dense, 0)

    def caps(self) -> torch.Tensor:
        """Most weights each layer may still lose: down to its floor `min_kept`; 0 for dense layers."""
        return (self.numels - self.min_kept - self.pruned).clamp(min=0)


# (state of every prunable layer, network-wide number of weights that must be zero) -> pruned count per layer
Allocation = Callable[[LayerStats, int], torch.Tensor]
