"""The one object the trainer talks to: masks + method + allocation."""

from __future__ import annotations

from wmprune.config import PruneConfig
from wmprune.errors import UserError
from wmprune.pruning.allocation import ALLOCATIONS
from wmprune.pruning.mask import LayerCounts, MaskSet, measured_sparsity, prunable_weights
from wmprune.pruning.methods import METHODS
from wmprune.pruning.methods.gradual import TrainingContext


class Pruner:
    """Drives the configured pruning method; called after every `optimizer.step()`."""

    def __init__(self, cfg: PruneConfig, context: TrainingContext):
        self.cfg = cfg
        weights = prunable_weights(context.model, cfg.prunable)
        self.masks = MaskSet(weights, dense_layer_names(list(weights), cfg))
        check_dense_layers_fit(self.masks, cfg)
        self.method = METHODS[cfg.method](self.masks, cfg, ALLOCATIONS[cfg.allocation], context)

    @property
    def total_epochs(self) -> int:
        return self.method.total_epochs

    def lr_clock(self, step: int) -> tuple[int, int]:
        return self.method.lr_clock(step)

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


def dense_layer_names(names: list[str], cfg: PruneConfig) -> tuple[str, ...]:
    """The first and/or last prunable tensor (in module order), when the config keeps them dense."""
    return tuple(name for keep, name in ((cfg.dense_first_layer, names[0]), (cfg.dense_last_layer, names[-1]))
                 if keep)


def check_dense_layers_fit(masks: MaskSet, cfg: PruneConfig) -> None:
    """Dense layers still count as prunable, so the other layers must be able to absorb the target."""
    dense = int(masks.numels()[masks.dense].sum())
    if cfg.method != "none" and dense > (1.0 - cfg.target_sparsity) * masks.total_prunable():
        raise UserError(f"prune.dense_first_layer/dense_last_layer keep {dense} weights dense, more than "
                        f"prune.target_sparsity={cfg.target_sparsity} leaves; lower the target or prune them")
