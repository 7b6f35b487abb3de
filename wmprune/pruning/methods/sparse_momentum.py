"""Sparse momentum (Dettmers & Zettlemoyer 2019, "Sparse Networks from Scratch", arXiv 1907.04840).

Sparse from the first step: a random mask at the target sparsity (per-layer counts from the allocation,
default `erk`, the initial distribution Evci et al. 2020 use for sparse-from-scratch training: with a
uniform start at 99 % the first conv of a narrow VGG keeps 2 weights, the network never gets a
gradient, and the momentum has nothing to redistribute by). After every epoch e of E, with prune rate p_e = p₀ · ½(1 + cos(π e / E))
(`prune.sparse_momentum.prune_rate` p₀ = 0.5, reaching 0 at the end):

1. each layer loses the fraction p_e of its active weights with the smallest |w|;
2. the removed total is redistributed across layers in proportion to the mean |SGD momentum buffer| of
   each layer's active weights;
3. each layer regrows its share at the inactive positions with the largest |momentum buffer|; regrown
   weights start at 0. Positions with zero momentum are used only when no others are left.

A weight pruned in step 1 can be regrown in step 3 (it is inactive then, and its momentum may be large).
The paper says pruned weights are removed and regrown ones start at zero; the authors' code
(TimDettmers/sparse_learning, `Masking.truncate_weights`) multiplies the mask into the weights only after
the regrowth, so such a weight keeps its value. `prune.sparse_momentum.reselected` picks: `restart` (the
default, the paper's wording) sets it to 0, `keep` does what the code does. The difference shows behind a
dead unit: a weight fanning out of it has no gradient but weight decay, so it is pruned for its small |w|,
regrown (the decay keeps its momentum above 0) and, restarted at 0, stays there; the run ends a little short
of its target's non-zero count.

The number of active weights is the same before and after, so the density never changes while the masks
do. Step 1 never takes a layer below its floor (`prune.min_layer_density`, as in every allocation). Layers
kept dense (`prune.dense_first_layer` / `dense_last_layer`) take no part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field

from wmprune.config import MethodSection
from wmprune.pruning.budget import Allocation, distribute
from wmprune.pruning.context import MaskChange, TrainingContext
from wmprune.pruning.mask import MaskSet
from wmprune.pruning.methods.random_mask import RandomPruning
from wmprune.pruning.schedules import cosine_decay
from wmprune.pruning.scores import SGDMomentumScore

if TYPE_CHECKING:
    from wmprune.config import PruneConfig, TrainConfig


class SparseMomentumSection(MethodSection):
    """`prune.sparse_momentum:` fraction of active weights pruned and regrown after the first epoch, and what
    a weight pruned and regrown at the same event starts from."""

    prune_rate: float = Field(0.5, gt=0, lt=1)
    reselected: Literal["restart", "keep"] = Field(
        "restart", description="a weight pruned and regrown at the same event: restart at 0 (the paper's "
                               "wording) or keep its value (the authors' code)")


class SparseMomentum(RandomPruning):
    """Random sparse start (as `random`), then prune–redistribute–regrow after every epoch."""

    default_allocation = "erk"
    section = SparseMomentumSection

    @staticmethod
    def check_run(prune: PruneConfig, train: TrainConfig) -> None:
        if train.momentum == 0:
            raise ValueError("prune.method sparse_momentum regrows by the SGD momentum buffer; set train.momentum > 0")

    def __init__(self, masks: MaskSet, cfg: PruneConfig, allocate: Allocation, context: TrainingContext):
        super().__init__(masks, cfg, allocate, context)
        self.momentum = SGDMomentumScore(masks, cfg, context)

    def prune_rate(self, epoch: int) -> float:
        return cosine_decay(self.cfg.sparse_momentum.prune_rate, epoch, self.context.epochs)

    @torch.no_grad()
    def on_epoch_end(self, epoch: int) -> None:
        rate = self.prune_rate(epoch)
        masks = self.masks
        open_layers = ~masks.dense
        active = masks.active_counts()
        momentum = self.momentum.scores()
        # Layer contributions from the momentum of the weights active during the epoch.
        mean_momentum = torch.stack([(m * mask).sum() for m, mask in zip(momentum, masks.masks)]).double().cpu()
        mean_momentum = mean_momentum / active.clamp(min=1) * open_layers
        # A layer loses no weights below its floor (budget.min_kept; all of a dense layer), so regrowth,
        # which only adds, can never leave a layer emptier than the floor either.
        removed = (active.double() * rate).floor().long().minimum(active - self.min_kept).clamp(min=0)
        if int(removed.sum()) == 0:
            return
        magnitudes = [weight.abs() for weight in masks.weights]
        candidates = [mask != 0 for mask in masks.masks]
        masks.drop(magnitudes, removed.tolist())
        if self.cfg.sparse_momentum.reselected == "restart":
            masks.apply()  # a weight pruned now and regrown below restarts at 0
        masks.grow(momentum, self.regrowth_counts(int(removed.sum()), mean_momentum, momentum).tolist())
        masks.apply()
        # The removals were ranked by |w|; that is the score a listener is shown.
        self.context.on_mask_change(MaskChange(magnitudes, candidates))

    def regrowth_counts(self, total: int, mean_momentum: torch.Tensor, momentum: list[torch.Tensor]) -> torch.Tensor:
        """Per-layer regrowth ∝ mean momentum, first only where the momentum is non-zero.

        A weight with zero momentum (e.g. behind a dead unit) gets no gradient either, so regrowing it
        would leave it at zero, indistinguishable from pruned; such positions are used only when the
        others run out.
        """
        masks = self.masks
        open_layers = ~masks.dense
        inactive = [mask == 0 for mask in masks.masks]
        moving = torch.stack([(m[free] > 0).sum() for m, free in zip(momentum, inactive)]).cpu() * open_layers
        room = (masks.numels() - masks.active_counts()) * open_layers
        counts = distribute(min(total, int(moving.sum())), mean_momentum, moving)
        return counts + distribute(total - int(counts.sum()), mean_momentum, room - counts)
