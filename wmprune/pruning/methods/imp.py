"""IMP: iterative magnitude pruning with weight rewinding (Frankle & Carbin 2019, arXiv 1803.03635;
Frankle, Dziugaite, Roy & Carbin 2020, arXiv 1912.05671).

Level 0 trains the dense network for E₀ epochs. Then, `prune.imp.levels` times: remove the smallest |w|
so that a fixed fraction p = 1 − (1 − target)^(1/levels) of the remaining weights goes (the last level
lands exactly on the target), rewind the surviving weights (and BatchNorm state) to their values after
`prune.imp.rewind_epoch` epochs, reset the optimizer state, and retrain with the LR schedule restarted
at the rewind point, for E₀ − rewind_epoch epochs.

`prune.imp.budget`: `full` (the papers' protocol) uses E₀ = `train.epochs`, so the run trains
E₀ + levels·(E₀ − rewind) epochs; `equal` picks E₀ so that the total is about `train.epochs`, the same
budget as the other methods. Either way `summary.csv`'s `epochs` is the number actually trained.
Default allocation `global` (Frankle et al. 2020 prune VGG/ResNet globally).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Self

import torch
from pydantic import Field

from wmprune.config import MethodSection
from wmprune.pruning.budget import Allocation
from wmprune.pruning.context import TrainingContext, TrainingPlan
from wmprune.pruning.mask import MaskSet
from wmprune.pruning.methods.base import ScorePruning
from wmprune.pruning.scores import Score

if TYPE_CHECKING:
    from wmprune.config import PruneConfig


class ImpSection(MethodSection):
    """`prune.imp:` prune–rewind–retrain levels."""

    levels: int = Field(4, ge=1, le=30)
    rewind_epoch: int = Field(1, ge=0)
    budget: Literal["equal", "full"] = "equal"

    def for_epochs(self, epochs: int, in_use: bool) -> Self:
        if in_use and self.rewind_epoch >= epochs:
            raise ValueError(f"prune.imp.rewind_epoch ({self.rewind_epoch}) must be below train.epochs ({epochs})")
        return self


class IterativeMagnitude(ScorePruning):
    score_class = Score
    default_allocation = "global"
    section = ImpSection

    @classmethod
    def plan(cls, cfg: PruneConfig, epochs: int, steps_per_epoch: int) -> TrainingPlan:
        """Level 0 for E₀ epochs, then `levels` retrainings of E₀ − r epochs, the LR schedule restarted at r."""
        levels, rewind = cfg.imp.levels, cfg.imp.rewind_epoch
        if cfg.imp.budget == "full":
            first = epochs
        else:  # E₀ + levels·(E₀ − r) ≈ train.epochs
            first = max(rewind + 1, round((epochs + levels * rewind) / (levels + 1)))
        return TrainingPlan(first + levels * (first - rewind), steps_per_epoch, first, rewind)

    def __init__(self, masks: MaskSet, cfg: PruneConfig, allocate: Allocation, context: TrainingContext):
        super().__init__(masks, cfg, allocate, context)
        self.levels = cfg.imp.levels
        self.rewind_epoch = cfg.imp.rewind_epoch
        self.rewind_state: dict[str, torch.Tensor] = {}

    def level_end(self, level: int) -> int:
        """The epoch after which level `level` (0 = dense) is finished."""
        plan = self.training_plan
        return plan.first_level_epochs + level * plan.retrain_epochs

    def on_train_start(self, step: int) -> None:
        if step == 0 and self.rewind_epoch == 0:
            self.save_rewind_point()

    def on_epoch_end(self, epoch: int) -> None:
        if epoch == self.rewind_epoch:
            self.save_rewind_point()
        for level in range(self.levels):
            if epoch == self.level_end(level):
                self.prune_to(1.0 - (1.0 - self.cfg.target_sparsity) ** ((level + 1) / self.levels))
                self.rewind()

    @torch.no_grad()
    def save_rewind_point(self) -> None:
        self.rewind_state = {k: v.detach().clone() for k, v in self.context.model.state_dict().items()}

    @torch.no_grad()
    def rewind(self) -> None:
        self.context.model.load_state_dict(self.rewind_state)
        self.masks.apply()
        self.context.optimizer.state.clear()  # fresh momentum buffers, as at the start of training

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rewind": {k: v.cpu() for k, v in self.rewind_state.items()}}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.rewind_state = {k: v.clone() for k, v in state["rewind"].items()}
