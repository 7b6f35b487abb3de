"""One-shot magnitude pruning, then fine-tuning (Han, Pool, Tran & Dally 2015, arXiv 1506.02626).

Train dense until `prune.magnitude.epoch` (default: half of `train.epochs`), remove the smallest |w| down
to the target in one step, and fine-tune the survivors for the remaining epochs. Han et al. prune
iteratively with retraining in between; the single-step version is the common one-shot baseline.
Default allocation `global`: one magnitude threshold over the whole network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wmprune.pruning.methods.gradual import GradualPruning
from wmprune.pruning.schedules import SparsitySchedule, build_schedule
from wmprune.pruning.scores import Score

if TYPE_CHECKING:
    from wmprune.config import PruneConfig


class OneShotMagnitude(GradualPruning):
    """A `oneshot` schedule placed at `prune.magnitude.epoch`, with |w| as the score."""

    score_class = Score
    default_allocation = "global"

    def make_schedule(self, cfg: PruneConfig, steps_per_epoch: int) -> SparsitySchedule:
        epoch = cfg.magnitude.epoch
        return build_schedule("oneshot", cfg.target_sparsity, epoch, epoch, cfg.schedule.every_steps,
                              steps_per_epoch)
