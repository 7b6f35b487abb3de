"""SNIP: single-shot pruning at initialization by connection sensitivity (Lee, Ajanthan & Torr 2019,
arXiv 1810.02340).

Before training, the sensitivity |g · w| of every weight is taken from the gradient summed over
`prune.snip.batches` training batches (the paper uses one batch of 100; our batches are smaller), the least
sensitive weights are removed network-wide (default allocation `global`, as in the paper), and the mask
stays fixed. Under torchrun the gradient is averaged over the processes first: every process scores the
whole global batches and takes the same decision.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import torch
from pydantic import Field

from wmprune.config import MethodSection
from wmprune.pruning.context import TrainingContext
from wmprune.pruning.mask import MaskSet
from wmprune.pruning.methods.base import PruneAtInit
from wmprune.pruning.scores import Score

if TYPE_CHECKING:
    from wmprune.config import PruneConfig


class SensitivityScore(Score):
    """|∂L/∂w · w| at the current weights, summed over a few batches; the model is left as it was."""

    def __init__(self, masks: MaskSet, cfg: PruneConfig, context: TrainingContext):
        super().__init__(masks, cfg, context)
        self.context = context
        self.batches = cfg.snip.batches

    def scores(self) -> list[torch.Tensor]:
        model = self.context.model
        # Forward passes in train mode move the BatchNorm running statistics; put them back afterwards.
        buffers = {name: b.clone() for name, b in model.named_buffers()}
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():  # pruning runs under no_grad
            for images, labels in itertools.islice(self.context.batches(), self.batches):
                self.context.loss(model(images), labels).backward()
        gradients = [w.grad for w in self.masks.weights]
        self.context.average(gradients)
        sensitivity = [(g * w).detach().abs() for g, w in zip(gradients, self.masks.weights)]
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        return sensitivity


class SnipSection(MethodSection):
    """`prune.snip:` training batches the sensitivity is summed over."""

    batches: int = Field(4, gt=0)


class Snip(PruneAtInit):
    score_class = SensitivityScore
    default_allocation = "global"
    section = SnipSection
