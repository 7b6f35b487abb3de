"""Exact proportional splitting of a count across layers under per-layer caps.

Its own module because both the allocations and sparse_momentum's regrowth use it, and the allocations
import the methods (WeightMom's layer shares).
"""

from __future__ import annotations

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
