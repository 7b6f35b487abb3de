"""What a pruning method is handed by the training loop (`TrainingContext`), what it reports when it changes the
masks (`MaskChange`), and what it asks of the loop before training starts (`TrainingPlan`): shared by every
method, the Pruner and the trainer."""

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


@dataclass(frozen=True)
class TrainingPlan:
    """What a method needs of the training loop, known from the config before the run is built: how many
    epochs to train (IMP trains several levels) and where each optimizer step stands in the LR schedule (IMP
    restarts it at every rewind)."""

    epochs: int
    steps_per_epoch: int
    first_level_epochs: int  # the whole run, unless the method restarts the schedule (IMP's level 0)
    restart_epoch: int = 0  # where a restarted schedule resumes (IMP's rewind epoch)

    @property
    def retrain_epochs(self) -> int:
        return self.first_level_epochs - self.restart_epoch

    def lr_clock(self, step: int) -> tuple[int, int]:
        """(position, length) in optimizer steps of `step` within the LR schedule."""
        per_epoch = self.steps_per_epoch
        length = self.first_level_epochs * per_epoch
        if step < length:
            return step, length
        into_retraining = (step - length) % (self.retrain_epochs * per_epoch)
        return self.restart_epoch * per_epoch + into_retraining, length
