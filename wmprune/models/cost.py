"""Inference cost: how often each conv / linear weight is applied in one image's forward pass.

A 3×3 convolution's weight is applied at every output position (H_out·W_out times per image), a linear
layer's once, so the multiply-adds of a layer are positions × weights — × non-zero weights for a pruned
network whose kernels skip zeros. Biases, BatchNorm and pooling are left out (under 1 % of the total for
these models). An allocation that keeps the early, high-resolution layers denser looks better by
compression ratio than by this count.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def output_positions(model: nn.Module, image_shape: tuple[int, ...]) -> dict[str, int]:
    """Weight name → output positions per image, measured by one forward pass of a zero image."""
    positions: dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            key = f"{name}.weight" if name else "weight"

            def record(mod, inputs, output, key=key):
                positions[key] = output[0, 0].numel() if isinstance(mod, nn.Conv2d) else 1

            hooks.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(torch.zeros(1, *image_shape, device=device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return positions
