"""The one object a training loop talks to — ours or yours: masks + method + allocation.

    pruner = Pruner(model, optimizer, {"method": "weightmom", "target_sparsity": 0.9},
                    steps_per_epoch=len(loader), epochs=epochs)
    ...  optimizer.step(); pruner.step()        # after every optimizer step
    ...  pruner.epoch_end(epoch)                # after every epoch, counted from 1

The config is a `PruneConfig` or a dict of the `prune:` section of a run config (README, "Config keys").
`on_mask_change` (optional) is called with a `MaskEvent` whenever the masks change — pruning events,
regrowth, IMP's prune-and-rewind, pruning at initialization — and never on other steps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wmprune.config import PruneConfig, shown, validate
from wmprune.errors import UserError
from wmprune.pruning.context import MaskChange, TrainingContext, TrainingPlan
from wmprune.pruning.counts import LayerCounts, measured_sparsity
from wmprune.pruning.mask import MaskSet, prunable_weights
from wmprune.pruning.methods import ALLOCATIONS, METHODS, PRUNE_SCHEMA, PRUNING_REGISTRIES

Batches = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


@dataclass
class MaskEvent:
    """A change of the masks, as `Pruner(on_mask_change=...)` is told of it."""

    step: int  # optimizer steps before it (0: before training)
    sparsity: float  # the network's, from the masks after the change
    layers: dict[str, float]  # each prunable tensor's sparsity, from the masks after the change
    change: MaskChange  # the scores the method ranked by and which weights it ranked


class Pruner:
    """Drives the configured pruning method; `step()` after every `optimizer.step()`.

    `batches` (one pass over training batches) and `loss` are needed only by methods that look at data
    before training (SNIP); under DDP, `average` (in place, each tensor's mean over the processes) makes
    their decision one for all processes. `state` (a `state_dict()`) resumes instead of starting: nothing is
    pruned at construction then.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, config: PruneConfig | dict[str, Any], *,
                 steps_per_epoch: int, epochs: int, batches: Batches | None = None,
                 loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                 average: Callable[[list[torch.Tensor]], None] | None = None, state: dict | None = None,
                 on_mask_change: Callable[[MaskEvent], None] | None = None):
        for name, value in (("steps_per_epoch", steps_per_epoch), ("epochs", epochs)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"Pruner({name}=...) must be a positive whole number, got {shown(value)}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise UserError(f"Pruner's optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        cfg = config if isinstance(config, PruneConfig) else prune_config(config)
        try:
            cfg = cfg.for_epochs(epochs)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        self.cfg = cfg
        weights = prunable_weights(model, cfg.prunable)
        if not weights:
            raise UserError(f"the model has no weight of the kinds to prune (prunable: {', '.join(cfg.prunable)}: "
                            "nn.Conv2d, nn.Linear); pass a model with such layers or change prunable")
        self.masks = MaskSet(weights, dense_layer_names(list(weights), cfg))
        self.on_mask_change = on_mask_change
        self.steps = 0  # optimizer steps so far; the schedule position follows from it
        context = TrainingContext(model, optimizer, batches or _no_batches, loss, steps_per_epoch, epochs,
                                  self._masks_changed)
        if average is not None:
            context.average = average
        self.method = METHODS[cfg.method](self.masks, cfg, ALLOCATIONS[cfg.allocation], context)
        if state is not None:
            self.load_state_dict(state)
        self.method.on_train_start(self.steps)

    @property
    def total_epochs(self) -> int:
        """Epochs to train in all: the `epochs` given, unless the method trains several levels (IMP)."""
        return self.method.training_plan.epochs

    def lr_clock(self, step: int) -> tuple[int, int]:
        """(position, length) of optimizer step `step` within the LR schedule; IMP restarts it."""
        return self.method.training_plan.lr_clock(step)

    def step(self) -> None:
        """Call after every `optimizer.step()`: re-applies the masks, updates scores, prunes on schedule."""
        self.steps += 1
        self.method.on_step(self.steps)

    def epoch_end(self, epoch: int) -> None:
        """Call after epoch `epoch` (counted from 1) has been trained and evaluated."""
        self.method.on_epoch_end(epoch)

    def layer_counts(self) -> list[LayerCounts]:
        return self.masks.measure()

    def sparsity(self) -> float:
        """Fraction of prunable weights that are zero, counted from the weights."""
        return measured_sparsity(self.masks.measure())[0]

    def mask_sparsity(self) -> tuple[float, dict[str, float]]:
        """Fraction of prunable weights the masks remove: the network's and each tensor's (one host sync).

        What the schedule sets; it differs from `sparsity()` only where a kept weight is exactly zero
        (a weight regrown a moment ago)."""
        numels = self.masks.numels()
        pruned = (numels - self.masks.active_counts()).tolist()
        layers = {name: p / n for name, p, n in zip(self.masks.names, pruned, numels.tolist())}
        return sum(pruned) / int(numels.sum()), layers

    def _masks_changed(self, change: MaskChange) -> None:
        if self.on_mask_change is not None:
            self.on_mask_change(MaskEvent(self.steps, *self.mask_sparsity(), change))

    def state_dict(self) -> dict:
        return {"masks": self.masks.state_dict(), "method": self.method.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        """Resume from a `state_dict()` of a Pruner built on the same model with the same config; anything else
        is a UserError, raised before this pruner changes."""
        self._check_state(state)
        # The masks are checked above; a method state that does not fit is undone from a copy (state_dict()
        # shares the live tensors on the CPU).
        before = copy.deepcopy(self.method.state_dict())
        try:
            self.method.load_state_dict(state["method"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
            self.method.load_state_dict(before)
            raise UserError(f"state= holds a {self.cfg.method} state that does not fit this model "
                            f"({type(exc).__name__}: {str(exc).strip()[:100]})".split("\n")[0]
                            + "; pass a Pruner.state_dict() saved with the same model and config") from None
        self.masks.load_state_dict(state["masks"])
        self.steps = state["steps"]
        self.masks.apply()

    def _check_state(self, state: Any) -> None:
        fix = "pass a Pruner.state_dict() saved with the same model and config"
        if not isinstance(state, dict) or not {"masks", "method", "steps"} <= set(state):
            raise UserError(f"state= is not a Pruner.state_dict() (it needs masks, method and steps); {fix}")
        masks, steps = state["masks"], state["steps"]
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0 or not isinstance(state["method"], dict):
            raise UserError(f"state= holds a damaged step count or method state; {fix}")
        if not isinstance(masks, dict) or set(masks) != set(self.masks.names) or any(
                not isinstance(masks[name], torch.Tensor) or masks[name].shape != mask.shape
                for name, mask in zip(self.masks.names, self.masks.masks)):
            raise UserError(f"state= holds masks for other layers or shapes than this model's prunable ones; {fix}")


def training_plan(cfg: PruneConfig, epochs: int, steps_per_epoch: int) -> TrainingPlan:
    """What the configured method asks of a training loop of `epochs` epochs — epochs in all and the LR
    schedule's clock — known before any model or Pruner exists."""
    return METHODS[cfg.method].plan(cfg, epochs, steps_per_epoch)


def prune_config(raw: dict[str, Any]) -> PruneConfig:
    """A validated `prune:` section; any problem is a one-line UserError naming the key."""
    return validate(PRUNE_SCHEMA, raw, PRUNING_REGISTRIES)


def _no_batches() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    raise UserError("this pruning method looks at training data before training; pass batches= to Pruner")


def dense_layer_names(names: list[str], cfg: PruneConfig) -> tuple[str, ...]:
    """The first and/or last prunable tensor (in module order), when the config keeps them dense."""
    return tuple(name for keep, name in ((cfg.dense_first_layer, names[0]), (cfg.dense_last_layer, names[-1]))
                 if keep)
