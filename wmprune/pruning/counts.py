"""Zeros counted from weight tensors: what layers.csv and summary.csv report. Plain Python, no torch, so
the result readers can use it without loading torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LayerCounts:
    """Zeros counted from a weight tensor."""

    layer: str
    shape: tuple[int, ...]
    numel: int
    nonzero: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzero / self.numel


def measured_sparsity(counts: list[LayerCounts]) -> tuple[float, int, int]:
    """(sparsity, prunable, nonzero) over all prunable tensors."""
    total = sum(c.numel for c in counts)
    nonzero = sum(c.nonzero for c in counts)
    return 1.0 - nonzero / total, total, nonzero
