"""One-shot magnitude pruning, then fine-tuning (Han, Pool, Tran & Dally 2015, arXiv 1506.02626).

Train dense until `prune.magnitude.epoch` (default: half of `train.epochs`), remove the smallest |w| down
to the target in one step, and fine-tune the survivors for the remaining epochs. Han et al. prune
iteratively with retraining in between; the single-step version is the common one-shot baseline.
Default allocation `global`: one magnitude threshold over the whole network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from pydantic import Field

from wmprune.config import MethodSection
from wmprune.pruning.methods.gradual import GradualPruning
from wmprune.pruning.schedules import SparsitySchedule, build_schedule
from wmprune.pruning.scores import Score

if TYPE_CHECKING:
    from wmprune.config import PruneConfig


class MagnitudeSection(MethodSection):
    """`prune.magnitude:` when it prunes. Left out: half of train.epochs."""

    epoch: int | None = Field(None, ge=0)

    def for_epochs(self, epochs: int, in_use: bool) -> Self:
        one_shot = self.epoch if self.epoch is not None else epochs // 2
        if in_use and one_shot > epochs:
            raise ValueError(f"prune.magnitude.epoch ({one_shot}) is after the last epoch ({epochs})")
        return self if one_shot == self.epoch else self.model_copy(update={"epoch": one_shot})


class OneShotMagnitude(GradualPruning):
    """A `oneshot` schedule placed at `prune.magnitude.epoch`, with |w| as the score."""

    score_class = Score
    default_allocation = "global"
    section = MagnitudeSection

    def make_schedule(self, cfg: PruneConfig, steps_per_epoch: int) -> SparsitySchedule:
        epoch = cfg.magnitude.epoch
        return build_schedule("oneshot", cfg.target_sparsity, epoch, epoch, cfg.schedule.every_steps,
                              steps_per_epoch)
