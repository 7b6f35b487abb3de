"""The one object the trainer talks to: masks + method + schedule + allocation."""

from __future__ import annotations

from torch import nn

from wmprune.config import PruneConfig
from wmprune.pruning.allocation import ALLOCATIONS
from wmprune.pruning.mask import LayerCounts, MaskSet, measured_sparsity, prunable_weights
from wmprune.pruning.methods import METHODS
from wmprune.pruning.schedules import build_schedule


class Pruner:
    """Drives the configured pruning method; called after every `optimizer.step()`."""

    def __init__(self, model: nn.Module, cfg: PruneConfig, steps_per_epoch: int):
        self.cfg = cfg
        self.masks = MaskSet(prunable_weights(model, cfg.prunable))
        schedule = build_schedule(cfg.schedule.kind, cfg.target_sparsity, cfg.schedule.start_epoch,
                                  cfg.schedule.end_epoch, cfg.schedule.every_steps, steps_per_epoch)
        self.method = METHODS[cfg.method](self.masks, cfg, schedule, ALLOCATIONS[cfg.allocation])

    def on_train_start(self, step: int) -> None:
        self.method.on_train_start(step)

    def on_step(self, step: int) -> None:
        self.method.on_step(step)

    def on_epoch_end(self, epoch: int) -> None:
        self.method.on_epoch_end(epoch)

    def layer_counts(self) -> list[LayerCounts]:
        return self.masks.measure()

    def sparsity(self) -> float:
        return measured_sparsity(self.masks.measure())[0]

    def state_dict(self) -> dict:
        return {"masks": self.masks.state_dict(), "method": self.method.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.masks.load_state_dict(state["masks"])
        self.method.load_state_dict(state["method"])
        self.masks.apply()
