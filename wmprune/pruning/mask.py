"""Binary masks over the prunable weight tensors, applied in place with foreach ops.

Masks live as tensors of the parameter's dtype so one `torch._foreach_mul_` after every
`optimizer.step()` zeroes all pruned weights: SGD momentum and weight decay cannot revive them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wmprune.pruning.distribute import round_up_largest

_PRUNABLE_TYPES = {"conv": nn.Conv2d, "linear": nn.Linear}


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


def prunable_weights(model: nn.Module, kinds: list[str]) -> dict[str, nn.Parameter]:
    """Weights of the conv/linear layers, by parameter name. Biases and norm layers are never pruned."""
    types = tuple(_PRUNABLE_TYPES[k] for k in kinds)
    return {
        f"{module_name}.weight" if module_name else "weight": module.weight
        for module_name, module in model.named_modules()
        if isinstance(module, types)
    }


class MaskSet:
    """One mask per prunable weight; 1 keeps a weight, 0 prunes it for good (unless a method regrows)."""

    def __init__(self, weights: dict[str, nn.Parameter], dense: tuple[str, ...] = ()):
        self.names = list(weights)
        self.weights = list(weights.values())
        self.masks = [torch.ones_like(w, memory_format=torch.contiguous_format) for w in self.weights]
        # Layers that count as prunable but are kept dense; every allocation gives them no removals.
        self.dense = torch.tensor([name in dense for name in self.names], dtype=torch.bool)

    def __len__(self) -> int:
        return len(self.weights)

    @torch.no_grad()
    def apply(self) -> None:
        """Zero every pruned weight in place."""
        torch._foreach_mul_(self.weights, self.masks)

    def numels(self) -> torch.Tensor:
        return torch.tensor([m.numel() for m in self.masks], dtype=torch.long)

    def active_counts(self) -> torch.Tensor:
        """Kept weights per layer according to the masks (int64, on CPU)."""
        return torch.stack([m.sum() for m in self.masks]).round().long().cpu()

    def total_prunable(self) -> int:
        return int(self.numels().sum())

    @torch.no_grad()
    def measure(self) -> list[LayerCounts]:
        """Zeros counted from the weight tensors themselves, not from the masks."""
        nonzero = torch.stack([torch.count_nonzero(w) for w in self.weights]).cpu().tolist()
        return [
            LayerCounts(name, tuple(w.shape), w.numel(), nz)
            for name, w, nz in zip(self.names, self.weights, nonzero)
        ]

    def state_dict(self) -> dict:
        return {name: mask.bool().cpu() for name, mask in zip(self.names, self.masks)}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.names):
            raise ValueError("mask names in the checkpoint do not match the model's prunable layers")
        for name, mask in zip(self.names, self.masks):
            mask.copy_(state[name])


def measured_sparsity(counts: list[LayerCounts]) -> tuple[float, int, int]:
    """(sparsity, prunable, nonzero) over all prunable tensors."""
    total = sum(c.numel for c in counts)
    nonzero = sum(c.nonzero for c in counts)
    return 1.0 - nonzero / total, total, nonzero


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
