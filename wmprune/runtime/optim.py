"""SGD and its learning-rate schedule, as `train:` configures them."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from wmprune.config import TrainConfig


def build_optimizer(train: TrainConfig, model: nn.Module) -> torch.optim.SGD:
    """SGD with (Nesterov) momentum and weight decay on every parameter."""
    return torch.optim.SGD(model.parameters(), lr=train.lr, momentum=train.momentum,
                           nesterov=train.nesterov and train.momentum > 0, weight_decay=train.weight_decay)


def build_scheduler(train: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int,
                    clock: Callable[[int], tuple[int, int]]) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LR schedule (stepped after every optimizer step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(train, steps_per_epoch, clock))


def lr_lambda(train: TrainConfig, steps_per_epoch: int, clock: Callable[[int], tuple[int, int]]):
    """Multiplier of `train.lr` at optimizer step t: linear warm-up, then cosine (Loshchilov & Hutter 2017,
    arXiv 1608.03983, without restarts), multistep or constant.

    `clock` maps t to its (position, length) within the schedule; the pruning method owns it so that a
    method may restart the schedule (IMP) without the trainer knowing.
    """
    warmup = train.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        position, total = clock(step)
        if position < warmup:
            return (position + 1) / warmup
        if train.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * (position - warmup) / max(1, total - warmup)))
        if train.lr_schedule == "multistep":
            epochs = total // steps_per_epoch
            milestones = [round(m * epochs) * steps_per_epoch for m in train.milestones]
            return train.gamma ** sum(position >= m for m in milestones)
        return 1.0

    return factor
