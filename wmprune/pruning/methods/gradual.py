"""Gradual pruning driven by a per-weight score, a sparsity schedule and a per-layer allocation.

The shared mechanism of WeightMom and GMP: after every optimizer step the masks are re-applied and the
score updated; at each schedule event the network is pruned to the schedule's target, each layer losing
its lowest-scoring active weights. No regrowth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch

from wmprune.pruning.mask import LayerStats, MaskSet
from wmprune.pruning.schedules import SparsitySchedule

if TYPE_CHECKING:
    from wmprune.config import PruneConfig
    from wmprune.pruning.allocation import Allocation


class Score(Protocol):
    """Per-weight importance kept alongside the masks; lower means pruned first."""

    def __init__(self, masks: MaskSet, cfg: PruneConfig) -> None: ...
    def update(self) -> None: ...
    def scores(self) -> list[torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class PruningMethod:
    """What the Pruner drives. The base class trains dense: masks stay all ones."""

    def __init__(self, masks: MaskSet, cfg: PruneConfig, schedule: SparsitySchedule, allocate: Allocation):
        self.masks = masks
        self.cfg = cfg
        self.schedule = schedule
        self.allocate = allocate

    def on_train_start(self, step: int) -> None:
        """Called once before the first batch of a fresh or resumed run."""

    def on_step(self, step: int) -> None:
        """Called after `optimizer.step()`; `step` counts optimizer steps from 1."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called after epoch `epoch` (counted from 1) has finished."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class GradualPruning(PruningMethod):
    """Prune along the schedule by a score; subclasses choose the score."""

    score_class: type[Score]

    def __init__(self, masks: MaskSet, cfg: PruneConfig, schedule: SparsitySchedule, allocate: Allocation):
        super().__init__(masks, cfg, schedule, allocate)
        self.score = self.score_class(masks, cfg)

    def on_train_start(self, step: int) -> None:
        # A schedule starting at epoch 0 has its first event before any step.
        if step == 0 and self.schedule.is_update(0):
            self.prune_to(self.schedule.target(0))

    def on_step(self, step: int) -> None:
        self.masks.apply()
        self.score.update()
        if self.schedule.is_update(step):
            self.prune_to(self.schedule.target(step))

    @torch.no_grad()
    def prune_to(self, sparsity: float) -> None:
        """Zero the lowest-scoring active weights until exactly round(sparsity · N) are pruned."""
        masks = self.masks
        numels = masks.numels()
        pruned = numels - masks.active_counts()
        target = round(sparsity * int(numels.sum()))
        if target <= int(pruned.sum()):
            return
        scores = self.score.scores()
        stats = LayerStats(numels, pruned, scores, masks.masks, [tuple(w.shape) for w in masks.weights],
                           self.cfg.max_layer_sparsity, self.cfg.gamma)
        to_remove = (self.allocate(stats, target) - pruned).tolist()
        for mask, score, count in zip(masks.masks, scores, to_remove):
            if count > 0:
                ranked = score.float().masked_fill(mask == 0, float("inf")).flatten()
                mask.view(-1)[torch.topk(ranked, count, largest=False).indices] = 0
        masks.apply()

    def state_dict(self) -> dict:
        return {"score": self.score.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.score.load_state_dict(state["score"])
