"""Binary masks over the prunable weight tensors, applied in place with foreach ops.

Masks live as tensors of the parameter's dtype and memory format (channels_last convolutions keep
channels_last masks), so one `torch._foreach_mul_` after every `optimizer.step()` zeroes all pruned
weights — SGD momentum and weight decay cannot revive them — and stays one fused kernel on CUDA: foreach
kernels fall back to one kernel per tensor when the two lists' strides differ.
"""

from __future__ import annotations

import torch
from torch import nn

from wmprune.pruning.counts import LayerCounts

_PRUNABLE_TYPES = {"conv": nn.Conv2d, "linear": nn.Linear}


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
        self.masks = [torch.ones_like(w) for w in self.weights]  # the weight's memory format
        # Layers that count as prunable but are kept dense; every allocation gives them no removals.
        self.dense = torch.tensor([name in dense for name in self.names], dtype=torch.bool)

    def __len__(self) -> int:
        return len(self.weights)

    @torch.no_grad()
    def apply(self) -> None:
        """Zero every pruned weight in place."""
        torch._foreach_mul_(self.weights, self.masks)

    @torch.no_grad()
    def drop(self, scores: list[torch.Tensor], counts: list[int]) -> None:
        """In each layer, switch off the `count` active positions with the smallest score. Masks only:
        `apply()` zeroes the weights."""
        for layer, (mask, score, count) in enumerate(zip(self.masks, scores, counts)):
            if count > 0:
                self.set_at(layer, smallest_where(score, mask != 0, count), 0)

    @torch.no_grad()
    def grow(self, scores: list[torch.Tensor], counts: list[int]) -> None:
        """In each layer, switch on the `count` inactive positions with the largest score (methods that regrow)."""
        for layer, (mask, score, count) in enumerate(zip(self.masks, scores, counts)):
            if count > 0:
                self.set_at(layer, smallest_where(-score, mask == 0, count), 1)

    def numels(self) -> torch.Tensor:
        return torch.tensor([m.numel() for m in self.masks], dtype=torch.long)

    def active_counts(self) -> torch.Tensor:
        """Kept weights per layer according to the masks (int64, on CPU), counted exactly: a float32 sum
        stops counting at 2**24 weights."""
        return torch.stack([torch.count_nonzero(m) for m in self.masks]).cpu()

    @torch.no_grad()
    def set_at(self, layer: int, flat_indices: torch.Tensor, value: float) -> None:
        """Set layer `layer`'s mask to `value` at `flat_indices`, positions in the weight's logical (row-major)
        order as `smallest_where` returns them, whatever the mask's memory format. Only pruning events write
        masks, so the logical-order copy of a channels_last mask is rare."""
        mask = self.masks[layer]
        logical = mask.contiguous()  # the mask itself when it is contiguous
        logical.view(-1)[flat_indices] = value
        mask.copy_(logical)  # a no-op when `logical` is the mask

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
        return {name: mask.bool().cpu().contiguous() for name, mask in zip(self.names, self.masks)}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.names):
            raise ValueError("mask names in the checkpoint do not match the model's prunable layers")
        for name, mask in zip(self.names, self.masks):
            mask.copy_(state[name])


def smallest_where(score: torch.Tensor, eligible: torch.Tensor, count: int) -> torch.Tensor:
    """Flat indices of the `count` smallest scores among the `eligible` entries (one `topk`, no loop).

    The one masked top-k of the package: pruning takes the lowest-scoring active weights
    (`eligible = mask != 0`), regrowth the highest-scoring inactive ones (`-score`, `mask == 0`)."""
    ranked = score.float().masked_fill(~eligible, float("inf")).flatten()
    return torch.topk(ranked, count, largest=False).indices
