"""The method interface: what the Pruner drives, and pruning by a per-weight score.

`PruningMethod` is the interface (and trains dense). `ScorePruning` removes the lowest-scoring active
weights of each layer, as many as the allocation gives it; subclasses choose the score and when to prune:
`PruneAtInit` once before the first step (random, SNIP), `gradual.GradualPruning` along a sparsity
schedule (WeightMom, GMP, one-shot magnitude), `imp.IterativeMagnitude` between retraining levels.
No regrowth here (sparse_momentum and rigl add it). Whatever changes the masks tells `context.on_mask_change`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

import torch
from torch import nn

from wmprune.errors import TrainingDiverged
from wmprune.pruning.budget import Allocation, LayerStats, min_kept
from wmprune.pruning.mask import MaskSet

if TYPE_CHECKING:
    from wmprune.config import PruneConfig


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


class Score:
    """Per-weight importance kept alongside the masks; lower means pruned first. Stateless: current |w|."""

    def __init__(self, masks: MaskSet, cfg: PruneConfig, context: TrainingContext):
        self.masks = masks

    def update(self) -> None:
        """Called after every optimizer step."""

    def masks_changed(self) -> None:
        """Called after a pruning event has changed the masks (and re-applied them)."""

    def scores(self) -> list[torch.Tensor]:
        return [w.detach().abs() for w in self.masks.weights]

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class PruningMethod:
    """What the Pruner drives. The base class trains dense: masks stay all ones."""

    default_allocation = "uniform"  # used when `prune.allocation` is left out

    def __init__(self, masks: MaskSet, cfg: PruneConfig, allocate: Allocation, context: TrainingContext):
        self.masks = masks
        self.cfg = cfg
        self.allocate = allocate
        self.context = context

    @property
    def total_epochs(self) -> int:
        """Epochs the run trains in all (IMP trains several levels)."""
        return self.context.epochs

    def lr_clock(self, step: int) -> tuple[int, int]:
        """(position, length) in optimizer steps of `step` within the LR schedule; IMP restarts it."""
        return step, self.context.epochs * self.context.steps_per_epoch

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
        self.score = self.score_class(masks, cfg, context)
        self.min_kept = min_kept(masks.numels(), masks.dense, cfg.target_sparsity, cfg.min_layer_density)

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
                           self.min_kept, self.cfg.gamma, masks.dense)
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
