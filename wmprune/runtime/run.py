"""A training run assembled from its config: device, data, model, optimizer, pruner, LR schedule."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wmprune.config import RunConfig
from wmprune.data.loader import TensorLoader
from wmprune.models import build_model
from wmprune.errors import UserError
from wmprune.pruning.context import TrainingPlan
from wmprune.pruning.pruner import MaskEvent, Pruner, training_plan
from wmprune.runtime.devices import World, average_across, resolve_device
from wmprune.runtime.loaders import load_splits, make_loaders
from wmprune.runtime.optim import build_optimizer, build_scheduler


@dataclass
class Run:
    """Everything a training run holds between epochs."""

    cfg: RunConfig
    directory: Path
    device: torch.device
    model: nn.Module
    forward: nn.Module  # the model, possibly wrapped by DDP and torch.compile
    evaluator: nn.Module  # the model, possibly compiled, never DDP: each process evaluates its own slice
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    pruner: Pruner
    plan: TrainingPlan  # epochs in all and the LR schedule's clock, from the method before the run was built
    train_loader: TensorLoader
    val_loader: TensorLoader | None  # None when data.val_size is 0
    test_loader: TensorLoader
    world: World
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, labels) -> training loss
    epoch: int = 0
    seconds: float = 0.0
    metrics: list[dict] = field(default_factory=list)  # one row per finished epoch (metrics.csv)

    @property
    def step(self) -> int:
        """Optimizer steps so far: the pruner's count, the one clock of the run (a checkpoint restores it)."""
        return self.pruner.steps


def check_distributed(cfg: RunConfig, world: World, device: torch.device) -> None:
    """What torchrun cannot do with this config, as one line each."""
    if cfg.train.sync_bn and device.type != "cuda":
        raise UserError(f"train.sync_bn needs CUDA: PyTorch has no SyncBatchNorm on {device.type}; "
                        "set train.sync_bn: false")
    if cfg.data.batch_size % world.size:
        raise UserError(f"data.batch_size={cfg.data.batch_size} (the global batch) does not split evenly over "
                        f"{world.size} processes; choose a multiple of {world.size}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_run(cfg: RunConfig, directory: Path, world: World, pruner_state: dict | None = None,
              on_mask_change: Callable[[MaskEvent], None] | None = None) -> Run:
    """A fresh run; with `pruner_state` (from a checkpoint) the pruner resumes instead of pruning at start.
    `on_mask_change` is told of every change of the masks, pruning at initialization included.

    Under torchrun every process builds the same network, masks and pruner state (same seed; SNIP averages
    its gradients over the processes), then draws its own dropout stream (seed + rank).
    """
    device = resolve_device(cfg.device, world)
    check_distributed(cfg, world, device)
    splits = load_splits(cfg)
    seed_everything(cfg.seed)
    model = build_model(cfg.model.name, splits.num_classes, cfg.model.width, splits.channels).to(device)
    if world.distributed and cfg.train.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(memory_format=torch.channels_last)  # as the loaders' batches (runtime/loaders.py)
    train_loader, val_loader, test_loader = make_loaders(cfg, splits, device, world)
    optimizer = build_optimizer(cfg.train, model)
    loss = partial(F.cross_entropy, label_smoothing=cfg.train.label_smoothing)
    pruner = Pruner(model, optimizer, cfg.prune, steps_per_epoch=len(train_loader), epochs=cfg.train.epochs,
                    batches=partial(train_loader.epoch, 0), loss=loss, average=partial(average_across, world),
                    state=pruner_state, on_mask_change=on_mask_change)
    plan = training_plan(cfg.prune, cfg.train.epochs, len(train_loader))  # from the config, not from the pruner
    scheduler = build_scheduler(cfg.train, optimizer, len(train_loader), plan.lr_clock)
    # Masks are applied outside the compiled forward (Pruner.step, between steps), so pruning events never
    # recompile it.
    evaluator = torch.compile(model) if cfg.train.compile else model
    forward = evaluator
    if world.distributed:
        # After the shared initialisation: dropout differs across processes, as across the images of a batch.
        torch.manual_seed(cfg.seed + world.rank)
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.train.compile:
            forward = torch.compile(forward)
    return Run(cfg, directory, device, model, forward, evaluator, optimizer, scheduler, pruner, plan, train_loader,
               val_loader, test_loader, world, loss)
