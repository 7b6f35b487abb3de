"""SynFlow: iterative synaptic flow pruning at initialization, without data (Tanaka, Kunin, Yamins & Ganguli
2020, "Pruning neural networks without any data by iteratively conserving synaptic flow", arXiv 2006.05467).

Before the first step, `prune.synflow.rounds` times (the paper: 100), k = 1 … n:

1. linearise a copy of the network: every parameter replaced by its absolute value (pruned weights stay 0),
   float64 (the path sums of a deep network underflow float32), BatchNorm in eval mode;
2. R = 1ᵀ f(𝟙): the sum of the outputs for an all-ones input of the data's shape — the sum over every
   input-to-output path of the product of its |weights|;
3. score every weight by |θ ⊙ ∂R/∂θ|, the synaptic flow through it;
4. prune the lowest scores over the whole network (allocation `global`) down to the density
   (1 − s)^(k/n): the exponential schedule, so the last round lands exactly on the target s.

Scoring again after each small step is what avoids layer collapse: a layer that has lost weights carries
more flow per remaining weight and is protected in the next round, whereas one-shot saliency (SNIP) can
empty the path through a layer. The input shape is read from one training batch; no pixel value is used.

Where wmprune differs from the paper: every layer keeps at least its floor (`prune.min_layer_density` of the
network's density, at least one weight; budget.min_kept) — the paper has no floor, relying on the flow alone.
"""

from __future__ import annotations

import copy
from functools import cached_property
from typing import TYPE_CHECKING

import torch
from pydantic import Field
from torch import nn

from wmprune.config import MethodSection
from wmprune.pruning.context import TrainingContext
from wmprune.pruning.mask import MaskSet
from wmprune.pruning.methods.base import PruneAtInit
from wmprune.pruning.scores import Score

if TYPE_CHECKING:
    from wmprune.config import PruneConfig


class SynFlowSection(MethodSection):
    """`prune.synflow:` how many score-and-prune rounds lead to the target (the paper's 100)."""

    rounds: int = Field(100, ge=1, le=10_000)


def linearised(model: nn.Module) -> nn.Module:
    """A float64 copy of `model` with every parameter replaced by its absolute value, BatchNorm in eval mode."""
    network = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.abs_()
    return network


def path_sum(network: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """R = 1ᵀ f(𝟙) of a linearised network: the sum over all input-to-output paths of their |weights|."""
    device = next(network.parameters()).device
    return network(torch.ones((1, *input_shape), dtype=torch.float64, device=device)).sum()


class SynFlowScore(Score):
    """|θ ⊙ ∂R/∂θ| of every prunable weight at the current masks, on a linearised copy of the network that
    `SynFlow` makes once for all its rounds (`linearise()`) and drops after them (`release()`)."""

    def __init__(self, masks: MaskSet, cfg: PruneConfig, context: TrainingContext):
        super().__init__(masks, cfg, context)
        self.context = context
        self.network: nn.Module | None = None
        self.copies: list[nn.Parameter] = []  # the copy of each prunable weight, in the masks' order

    @cached_property
    def input_shape(self) -> tuple[int, ...]:
        """One image's shape, from the first training batch (read once, on the first round)."""
        images, _ = next(iter(self.context.batches()))
        return tuple(images.shape[1:])

    def linearise(self) -> None:
        model = getattr(self.context.model, "module", self.context.model)  # DDP wraps the model
        self.network = linearised(model)
        # deepcopy keeps the order of the parameters: the copy of a weight sits where the weight does.
        position = {id(parameter): index for index, parameter in enumerate(model.parameters())}
        copies = list(self.network.parameters())
        self.copies = [copies[position[id(weight)]] for weight in self.masks.weights]

    def release(self) -> None:
        self.network, self.copies = None, []

    def scores(self) -> list[torch.Tensor]:
        assert self.network is not None, "SynFlowScore.linearise() comes before scores()"
        with torch.no_grad():  # |θ|·mask is |θ ⊙ mask|: the copy follows the masks without copying again
            for copy_, mask in zip(self.copies, self.masks.masks):
                copy_.mul_(mask)
        self.network.zero_grad(set_to_none=True)
        with torch.enable_grad():  # pruning runs under no_grad
            total = path_sum(self.network, self.input_shape)
            total.backward()
        # Each flow is at most R (it sums the paths through one weight): relative to R it fits float32.
        return [(copy_ * copy_.grad / total).abs().to(weight.dtype)
                for copy_, weight in zip(self.copies, self.masks.weights)]


class SynFlow(PruneAtInit):
    """Score by synaptic flow and prune globally, `rounds` times along an exponential schedule, before training."""

    score_class = SynFlowScore
    score: SynFlowScore
    default_allocation = "global"
    section = SynFlowSection

    def on_train_start(self, step: int) -> None:
        if step != 0:
            return
        rounds, density = self.cfg.synflow.rounds, 1.0 - self.cfg.target_sparsity
        self.score.linearise()
        try:
            for k in range(1, rounds + 1):
                self.prune_to(self.cfg.target_sparsity if k == rounds else 1.0 - density ** (k / rounds))
        finally:
            self.score.release()
