"""The method interface: what the Pruner drives, and pruning by a per-weight score.

`PruningMethod` is the interface (and trains dense). `ScorePruning` removes the lowest-scoring active
weights of each layer, as many as the allocation gives it; subclasses choose the score and when to prune:
`PruneAtInit` once before the first step (random, SNIP), `gradual.GradualPruning` along a sparsity
schedule (WeightMom, GMP, one-shot magnitude), `imp.IterativeMagnitude` between retraining levels.
No regrowth here (sparse_momentum and rigl add it). Whatever changes the masks tells `context.on_mask_change`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from wmprune.errors import TrainingDiverged, UserError
from wmprune.pruning.budget import Allocation, LayerStats, min_kept
from wmprune.pruning.context import MaskChange, TrainingContext, TrainingPlan
from wmprune.pruning.mask import MaskSet
from wmprune.pruning.scores import Score

if TYPE_CHECKING:
    from wmprune.config import Knobs, MethodSection, PruneConfig, TrainConfig


class PruningMethod:
    """What the Pruner drives. The base class trains dense: masks stay all ones.

    A method brings what only it knows, and the methods package merges it into the registries and the config
    schema: `section` (its `prune.<name>:` keys), `knobs` (keys at the prune section's top level),
    `allocations` (name → allocation, e.g. WeightMom's layer importance), `scorers` (values of `prune.score`)
    and `check_run` (what it needs of the rest of the run config).
    """

    default_allocation = "uniform"  # used when `prune.allocation` is left out
    section: type[MethodSection] | None = None
    knobs: type[Knobs] | None = None
    allocations: dict[str, Allocation] = {}
    scorers: dict[str, type[Score]] = {}

    @staticmethod
    def check_run(prune: PruneConfig, train: TrainConfig) -> None:
        """Raise ValueError (one line naming the key) when the rest of the run config cannot work with this
        method; called when a run config is validated."""

    @classmethod
    def plan(cls, cfg: PruneConfig, epochs: int, steps_per_epoch: int) -> TrainingPlan:
        """What the method asks of the training loop for a run of `epochs` epochs: the same epochs, one LR
        schedule (IMP trains and schedules several levels)."""
        return TrainingPlan(epochs, steps_per_epoch, epochs)

    def __init__(self, masks: MaskSet, cfg: PruneConfig, allocate: Allocation, context: TrainingContext):
        self.masks = masks
        self.cfg = cfg
        self.allocate = allocate
        self.context = context
        self.training_plan = self.plan(cfg, context.epochs, context.steps_per_epoch)

    def on_train_start(self, step: int) -> None:
        """Called once before the first batch of a fresh or resumed run."""

    def on_step(self, step: int) -> None:
        """Called after `optimizer.step()`; `step` counts optimizer steps from 1."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called after epoch `epoch` (counted from 1) has been trained and evaluated."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ScorePruning(PruningMethod):
    """Prune by a score whenever the subclass says; masks re-applied after every step."""

    score_class: type[Score] = Score

    def __init__(self, masks: MaskSet, cfg: PruneConfig, allocate: Allocation, context: TrainingContext):
        super().__init__(masks, cfg, allocate, context)
        numels = masks.numels()
        self.min_kept = min_kept(numels, masks.dense, cfg.target_sparsity, cfg.min_layer_density)
        self._check_target_reachable(numels)
        self.score = self.score_class(masks, cfg, context)

    def _check_target_reachable(self, numels: torch.Tensor) -> None:
        """The target must leave room for the layers kept dense (they still count as prunable) and for every
        layer's floor (`prune.min_layer_density`, at least one weight each)."""
        cfg = self.cfg
        total = int(numels.sum())
        kept = total - round(cfg.target_sparsity * total)
        dense = int(numels[self.masks.dense].sum())
        if dense > kept:
            raise UserError(f"prune.dense_first_layer/dense_last_layer keep {dense} weights dense, more than "
                            f"prune.target_sparsity={cfg.target_sparsity} leaves; lower the target or prune them")
        floors = int(self.min_kept.sum())
        if floors > kept:
            raise UserError(f"prune.target_sparsity={cfg.target_sparsity} keeps {kept} weights, fewer than the "
                            f"{floors} the layer floors need (prune.min_layer_density={cfg.min_layer_density}, at "
                            f"least one weight in each of {len(self.masks)} layers); lower one of them")

    def on_step(self, step: int) -> None:
        self.masks.apply()
        self.score.update()

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
        if not bool(torch.stack([s.float().sum() for s in scores]).isfinite().all()):  # one sync per event
            raise TrainingDiverged("the pruning scores became NaN or infinite (the weights diverged) before a "
                                   "pruning event; the last good checkpoint is kept — lower train.lr")
        candidates = [mask != 0 for mask in masks.masks]
        stats = LayerStats(numels, pruned, scores, masks.masks, [tuple(w.shape) for w in masks.weights],
                           self.min_kept, self.cfg, masks.dense)
        masks.drop(self.ranking(scores), (self.allocate(stats, target) - pruned).tolist())
        masks.apply()
        self.score.masks_changed()
        self.context.on_mask_change(MaskChange(scores, candidates))

    def ranking(self, scores: list[torch.Tensor]) -> list[torch.Tensor]:
        """The order inside each layer, lowest pruned first: the score itself, unless a subclass replaces it
        (the shuffle control of `gradual.GradualPruning`); the allocation always sees the score."""
        return scores

    def state_dict(self) -> dict:
        return {"score": self.score.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.score.load_state_dict(state["score"])


class PruneAtInit(ScorePruning):
    """Prune to the target once, before the first step, and keep that mask (random, SNIP)."""

    def on_train_start(self, step: int) -> None:
        if step == 0:
            self.prune_to(self.cfg.target_sparsity)
