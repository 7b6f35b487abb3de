"""A Pruner wired to a small model, a real SGD optimizer and synthetic batches, as the trainer wires it."""

import torch
from torch import nn

from wmprune.config import PruneConfig
from wmprune.pruning.pruner import Pruner


def synthetic_batches(count=4, size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, 32, 32, generator=generator), torch.randint(0, 10, (size,), generator=generator))
            for _ in range(count)]


def make_pruner(model: nn.Module, cfg: PruneConfig, steps_per_epoch: int, epochs: int = 10, lr: float = 0.05) -> Pruner:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    return Pruner(model, optimizer, cfg, steps_per_epoch=steps_per_epoch, epochs=epochs,
                  batches=lambda: iter(synthetic_batches()), loss=nn.functional.cross_entropy)


def train_steps(pruner: Pruner, steps: int, first_step: int = 1, seed: int = 0):
    """SGD steps on random batches (seeded by `first_step`), the pruner called after each; returns the optimizer."""
    context = pruner.method.context
    generator = torch.Generator().manual_seed(seed + first_step)
    for step in range(first_step, first_step + steps):
        images = torch.randn(8, 3, 32, 32, generator=generator)
        labels = torch.randint(0, 10, (8,), generator=generator)
        loss = context.loss(context.model(images), labels)
        context.optimizer.zero_grad()
        loss.backward()
        context.optimizer.step()
        pruner.step()
    return context.optimizer
