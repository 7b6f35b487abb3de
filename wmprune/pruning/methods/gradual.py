"""Schedule-driven pruning: the target sparsity rises along `prune.schedule` and the lowest-scoring active
weights go at every pruning event (Zhu & Gupta 2017, arXiv 1710.01878). WeightMom, GMP and one-shot
magnitude pruning are this with different scores and schedules.

`prune.shuffle` turns any of them into its layer-wise shuffle control (Frankle, Dziugaite, Roy & Carbin
2021, "Pruning neural networks at initialization: why are we missing the mark?", arXiv 2009.08576): at every
pruning event the allocation still decides, from the method's scores, how many weights each layer loses,
but which active weights go inside a layer is uniformly random. Pruned weights stay pruned. If the control
matches the method, the score mattered only through the per-layer densities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from pydantic import Field, ValidationInfo, field_validator

from wmprune.config import Knobs, registry
from wmprune.pruning.budget import Allocation
from wmprune.pruning.context import TrainingContext
from wmprune.pruning.mask import MaskSet
from wmprune.pruning.methods.base import ScorePruning
from wmprune.pruning.schedules import SparsitySchedule, build_schedule
from wmprune.pruning.scores import RandomScore

if TYPE_CHECKING:
    from wmprune.config import PruneConfig


class GradualKnobs(Knobs):
    """`prune.shuffle`, the layer-wise shuffle control of any gradual method."""

    shuffle: bool = Field(False, description="gradual methods: random weights inside each layer at every event")

    @field_validator("shuffle")
    @classmethod
    def _shuffle_needs_a_schedule(cls, v: bool, info: ValidationInfo) -> bool:
        """The shuffle control replaces the ranking at pruning events of a gradual method."""
        gradual = registry(info, "gradual_methods")
        method = info.data.get("method")  # absent when the method itself was invalid
        if v and method is not None and method not in gradual:
            raise ValueError(f"needs a gradual method ({', '.join(sorted(gradual))}), not prune.method {method}")
        return v


class GradualPruning(ScorePruning):
    """Prune along the sparsity schedule (`prune.schedule`); subclasses choose the score."""

    knobs = GradualKnobs

    def __init__(self, masks: MaskSet, cfg: PruneConfig, allocate: Allocation, context: TrainingContext):
        super().__init__(masks, cfg, allocate, context)
        self.schedule = self.make_schedule(cfg, context.steps_per_epoch)
        self.shuffle = RandomScore(masks, cfg, context) if cfg.shuffle else None

    def make_schedule(self, cfg: PruneConfig, steps_per_epoch: int) -> SparsitySchedule:
        s = cfg.schedule
        return build_schedule(s.kind, cfg.target_sparsity, s.start_epoch, s.end_epoch, s.every_steps,
                              steps_per_epoch)

    def on_train_start(self, step: int) -> None:
        # A schedule starting at epoch 0 has its first event before any step.
        if step == 0 and self.schedule.is_update(0):
            self.prune_to(self.schedule.target(0))

    def on_step(self, step: int) -> None:
        super().on_step(step)
        if self.schedule.is_update(step):
            self.prune_to(self.schedule.target(step))

    def ranking(self, scores: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.shuffle.scores() if self.shuffle else scores

    def state_dict(self) -> dict:
        return {**super().state_dict(), **({"shuffle": self.shuffle.state_dict()} if self.shuffle else {})}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.shuffle and "shuffle" in state:
            self.shuffle.load_state_dict(state["shuffle"])
