"""What a pruning method is handed by the training loop (`TrainingContext`) and what it reports when it
changes the masks (`MaskChange`): shared by every method, the Pruner and the trainer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn


@dataclass
class MaskChange:
    """What a method ranked when it last changed the masks (pruned, or pruned and regrew)."""

    scores: list[torch.Tensor]  # one per prunable tensor: the score it ranked by (lower went first)
    candidates: list[torch.Tensor]  # bool, one per prunable tensor: the weights it ranked (active before)


@dataclass
class TrainingContext:
    """What the trainer hands a method once: the run's model, optimizer, data and loss."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]  # one pass over training batches
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, labels) -> scalar
    steps_per_epoch: int
    epochs: int  # train.epochs
    # Called after every change of the masks, never otherwise: a step without a change costs nothing.
    on_mask_change: Callable[[MaskChange], None]
    # In place: each tensor becomes its mean over the processes training together (torchrun). Data-dependent
    # decisions (SNIP) average what each process saw, so all decide alike.
    average: Callable[[list[torch.Tensor]], None] = lambda tensors: None  # one process: nothing to average
