"""The dataset of a run as loaders on the training device: train (sharded under torchrun), validation (held
out of the training split; None when `data.val_size` is 0) and test."""

from __future__ import annotations

import torch

from wmprune.config import RunConfig
from wmprune.data import DATASETS
from wmprune.data.loader import TensorLoader, channel_stats
from wmprune.data.splits import Splits
from wmprune.runtime.devices import World


def load_splits(cfg: RunConfig) -> Splits:
    """The dataset with `data.val_size` training images held out for validation."""
    return DATASETS[cfg.data.name](cfg.data.root, cfg.data.download).hold_out(cfg.data.val_size)


Stats = tuple[torch.Tensor, torch.Tensor]  # per-channel (mean, std) in [0, 1] units


def make_loaders(cfg: RunConfig, splits: Splits, device: torch.device, world: World = World(),
                 stats: Stats | None = None) -> tuple[TensorLoader, TensorLoader | None, TensorLoader]:
    """(train, validation, test) loaders, all normalised with the statistics of the training part only:
    `stats` when given (a checkpoint stores them), else computed from the training images. Under torchrun
    each process trains on its share of every batch and evaluates its slice of each split."""
    mean, std = stats if stats is not None else channel_stats(splits.train_images)
    # channels_last everywhere: faster convolutions on CUDA and on CPU (oneDNN; docs/performance.md).
    common = dict(device=device, mean=mean, std=std, seed=cfg.seed, channels_last=True,
                  shard=(world.rank, world.size))
    train = TensorLoader(splits.train_images, splits.train_labels, cfg.data.batch_size, train=True,
                         augment=cfg.data.augment, **common)
    evaluation = dict(batch_size=max(cfg.data.batch_size, 500), train=False, augment=False, **common)
    val = TensorLoader(splits.val_images, splits.val_labels, **evaluation) if splits.val_images is not None else None
    test = TensorLoader(splits.test_images, splits.test_labels, **evaluation)
    return train, val, test
