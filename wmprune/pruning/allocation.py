"""Per-layer budgets that several methods share: how many weights each layer has pruned after a pruning event
(a method's own allocation, such as WeightMom's, lives in its file and joins the registry there).

An allocation maps the state of every prunable layer and the network-wide number of weights that must
be zero to a per-layer count that sums to it exactly, never undoes earlier pruning and never takes a
layer below its floor (`LayerStats.min_kept`: a fraction `prune.min_layer_density` of the network's
density, at least one weight; budget.min_kept).
"""

from __future__ import annotations

import math
import torch

from wmprune.pruning.budget import Allocation, LayerStats, distribute
from wmprune.pruning.mask import smallest_where


def uniform_allocation(stats: LayerStats, target_pruned: int) -> torch.Tensor:
    """Every layer at the same sparsity (up to one weight of rounding): the network's target, or the
    higher one the open layers need when some are kept dense."""
    open_numels = stats.open_numels().double()
    return _toward_profile(stats, target_pruned, open_numels * (target_pruned / float(open_numels.sum())))


def erk_allocation(stats: LayerStats, target_pruned: int) -> torch.Tensor:
    """Erdős–Rényi-Kernel (Evci et al. 2020, RigL, arXiv 1911.11134): layer density ∝ Σ dims / Π dims.

    Small layers stay denser than large ones. The densities ε·Σdims/Πdims are scaled by one ε so the kept
    weights add up to the target; a layer whose density would pass 1 is kept dense and ε is solved again
    for the rest, until no layer overflows.
    """
    open_numels = stats.open_numels().double()
    open_ = open_numels > 0
    ratio = torch.tensor([sum(shape) / math.prod(shape) for shape in stats.shapes], dtype=torch.float64)
    keep_total = float(open_numels.sum()) - target_pruned
    saturated = torch.zeros_like(open_)
    while True:
        free = open_ & ~saturated
        epsilon = (keep_total - float(open_numels[saturated].sum())) / float((ratio * open_numels)[free].sum())
        overflow = free & (epsilon * ratio > 1)
        if not overflow.any():
            break
        saturated |= overflow
    kept = torch.where(saturated, open_numels, epsilon * ratio * open_numels)
    return _toward_profile(stats, target_pruned, open_numels - kept)


def global_allocation(stats: LayerStats, target_pruned: int) -> torch.Tensor:
    """One threshold over all layers: the network-wide lowest scores go (Han et al. 2015, arXiv 1506.02626).

    Each layer offers only as many candidates as its floor allows, so no layer is emptied.
    """
    removals = target_pruned - int(stats.pruned.sum())
    if removals == 0:
        return stats.pruned.clone()
    caps = stats.caps()
    candidates, owners = [], []
    for layer, (score, mask, cap) in enumerate(zip(stats.scores, stats.masks, caps.tolist())):
        offered = min(cap, removals)
        if offered == 0:
            continue
        chosen = smallest_where(score, mask != 0, offered)
        candidates.append(score.flatten()[chosen].float().cpu())
        owners.append(torch.full((offered,), layer, dtype=torch.long))
    chosen = torch.topk(torch.cat(candidates), removals, largest=False).indices
    per_layer = torch.bincount(torch.cat(owners)[chosen], minlength=len(stats.scores))
    return stats.pruned + per_layer


def _toward_profile(stats: LayerStats, target_pruned: int, desired: torch.Tensor) -> torch.Tensor:
    """Move each layer toward a desired pruned count, summing exactly to the target."""
    removals = target_pruned - int(stats.pruned.sum())
    gap = (desired - stats.pruned.double()).clamp(min=0)
    return stats.pruned + distribute(removals, gap, stats.caps())


SHARED_ALLOCATIONS: dict[str, Allocation] = {
    "global": global_allocation,
    "uniform": uniform_allocation,
    "erk": erk_allocation,
}
