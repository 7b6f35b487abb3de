"""WeightMom: gradual pruning by weight momentum (Johnson, Tang & Samudrala 2022, arXiv 2208.05970).

The paper's full text is not public. Its abstract says weights are pruned gradually by their momentum
over previous iterations, and each layer gets an importance from its relative sparsity followed by the
magnitude of its weights in previous iterations. This file is our reading of that, every choice a knob
(docs/method.md lists them):

1. Score of a weight (`prune.score`, one of `SCORERS`), default `momentum`, after every optimizer step:
       m ← β·m + (1 − β)·|w|,   m = 0 where the weight is pruned;   m starts at |w| of the initial net,
   with β = 1 − 1/N for a horizon of N steps (`prune.momentum_horizon`, default the steps between pruning
   events `prune.schedule.every_steps`, so the average spans what happened since the last event), or
   `prune.beta` set directly. The ablations: `magnitude`, the current |w| (the average with N = 1), and
   `sgd_momentum`, |SGD momentum buffer| (Dettmers & Zettlemoyer 2019, arXiv 1907.04840), the other
   reading of "momentum".
2. Schedule: the target sparsity follows the cubic curve of Zhu & Gupta (2017, arXiv 1710.01878)
   between `schedule.start_epoch` and `schedule.end_epoch`, updated every `schedule.every_steps`.
3. Layer budget at each update: the removals are shared in proportion to
       active_l · (1 − s_l)/(1 − s̄) · (m̄ / m̄_l)^γ          (`prune.gamma`, default 1)
   where s_l is the layer's sparsity, s̄ the network's, m̄_l the mean score of the layer's active
   weights and m̄ that of the whole network: a layer already sparser than the network, or whose weights
   carry larger momentum, is more important and loses fewer weights. Every layer keeps at least
   max(1, ⌈f·(1 − target)·n⌉) weights (`prune.min_layer_density` f, default 0.1; budget.min_kept).
4. Within a layer the active weights with the smallest score go, for good (no regrowth).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from pydantic import Field, ValidationInfo, field_validator

from wmprune.config import Knobs, registered
from wmprune.pruning.budget import LayerStats, distribute
from wmprune.pruning.context import TrainingContext
from wmprune.pruning.mask import MaskSet
from wmprune.pruning.methods.gradual import GradualPruning
from wmprune.pruning.scores import Score, SGDMomentumScore

if TYPE_CHECKING:
    from wmprune.config import PruneConfig, TrainConfig


class WeightMomKnobs(Knobs):
    """WeightMom's keys, at the prune section's top level: rule 1's score and EMA, rule 3's exponent."""

    score: registered("score", "scorers") = Field("momentum", description="weightmom: momentum (EMA of |w|), "
                                                                        "magnitude or sgd_momentum")
    beta: float | None = Field(None, ge=0, lt=1, description="EMA decay; left out: 1 − 1/momentum_horizon")
    momentum_horizon: int | None = Field(None, ge=1, description="EMA horizon in optimizer steps; left out: "
                                         "schedule.every_steps")
    gamma: float = Field(1.0, ge=0, description="weightmom allocation: exponent on the momentum ratio")

    @field_validator("momentum_horizon")
    @classmethod
    def _one_horizon(cls, v: int | None, info: ValidationInfo) -> int | None:
        """β is given either directly or by its horizon, not both."""
        if v is not None and info.data.get("beta") is not None:
            raise ValueError("set prune.beta or prune.momentum_horizon (β = 1 − 1/horizon), not both")
        return v


def ema_beta(cfg: PruneConfig) -> float:
    """Rule 1's β: `prune.beta` if set, else 1 − 1/horizon, the horizon defaulting to the steps between
    pruning events (every_steps 100 → β = 0.99; 10 → 0.9)."""
    if cfg.beta is not None:
        return cfg.beta
    return 1.0 - 1.0 / (cfg.momentum_horizon or cfg.schedule.every_steps)


class MomentumScore(Score):
    """Exponential moving average of |w| over optimizer steps (rule 1)."""

    def __init__(self, masks: MaskSet, cfg: PruneConfig, context: TrainingContext):
        super().__init__(masks, cfg, context)
        self.beta = ema_beta(cfg)
        self.momentum = [w.detach().abs() for w in masks.weights]  # the weights' memory format, as the masks

    @torch.no_grad()
    def update(self) -> None:
        # m + (1 − β)(|w| − m) = β·m + (1 − β)·|w|, in place: one pass over the scores. Pruned weights are
        # zero here (the masks were just applied), so a zeroed m stays zero without re-masking every step.
        # A fresh |w| list rather than copy_ + abs_ into kept buffers: one pass over the weights instead of
        # two, and CUDA's caching allocator makes the allocation cheap.
        torch._foreach_lerp_(self.momentum, torch._foreach_abs(self.masks.weights), 1.0 - self.beta)

    @torch.no_grad()
    def masks_changed(self) -> None:
        torch._foreach_mul_(self.momentum, self.masks.masks)

    def scores(self) -> list[torch.Tensor]:
        return self.momentum

    def state_dict(self) -> dict:
        return {name: m.cpu() for name, m in zip(self.masks.names, self.momentum)}

    def load_state_dict(self, state: dict) -> None:
        for name, m in zip(self.masks.names, self.momentum):
            m.copy_(state[name])


# `prune.score`: what "momentum" means in rule 1 (base.Score is the current |w|).
SCORERS: dict[str, type[Score]] = {"momentum": MomentumScore, "magnitude": Score, "sgd_momentum": SGDMomentumScore}


def weightmom_shares(stats: LayerStats) -> torch.Tensor:
    """Rule 3: each layer's share of the removals (unnormalised, float64)."""
    numels = stats.numels.double()
    active = numels - stats.pruned.double()
    layer_sparsity = stats.pruned.double() / numels
    network_sparsity = stats.pruned.sum().double() / numels.sum()
    score_sums = torch.stack([(s * m).sum().double() for s, m in zip(stats.scores, stats.masks)]).cpu()
    layer_mean = score_sums / active.clamp(min=1)
    network_mean = score_sums.sum() / active.sum().clamp(min=1)
    tiny = torch.finfo(torch.float64).tiny
    relative_density = (1.0 - layer_sparsity) / (1.0 - network_sparsity)
    return active * relative_density * (network_mean / layer_mean.clamp(min=tiny)) ** stats.config.gamma


def weightmom_allocation(stats: LayerStats, target_pruned: int) -> torch.Tensor:
    """Rule 3 as an allocation: the removals split by `weightmom_shares`, exactly, within the layer floors."""
    removals = target_pruned - int(stats.pruned.sum())
    return stats.pruned + distribute(removals, weightmom_shares(stats), stats.caps())


class WeightMom(GradualPruning):
    """Gradual pruning by the chosen score (rules 1, 2 and 4); rule 3 is the `weightmom` allocation."""

    default_allocation = "weightmom"
    knobs = WeightMomKnobs
    allocations = {"weightmom": weightmom_allocation}
    scorers = SCORERS

    @staticmethod
    def check_run(prune: PruneConfig, train: TrainConfig) -> None:
        if prune.score == "sgd_momentum" and train.momentum == 0:
            raise ValueError("prune.score sgd_momentum is the SGD momentum buffer; set train.momentum > 0")

    @property
    def score_class(self) -> type[Score]:
        return SCORERS[self.cfg.score]
