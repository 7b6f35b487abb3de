"""The dataset of a run as two loaders on the training device: train (sharded under torchrun) and test."""

from __future__ import annotations

import torch

from wmprune.config import RunConfig
from wmprune.data import DATASETS
from wmprune.data.loader import TensorLoader, channel_stats
from wmprune.data.splits import Splits
from wmprune.runtime.devices import World


def load_splits(cfg: RunConfig) -> Splits:
    return DATASETS[cfg.data.name](cfg.data.root, cfg.data.download)


def make_loaders(cfg: RunConfig, splits: Splits, device: torch.device,
                 world: World = World()) -> tuple[TensorLoader, TensorLoader]:
    """(train, test) loaders; both normalise with the training split's channel statistics."""
    mean, std = channel_stats(splits.train_images)
    channels_last = device.type == "cuda"
    common = dict(device=device, mean=mean, std=std, seed=cfg.seed, channels_last=channels_last)
    train = TensorLoader(splits.train_images, splits.train_labels, cfg.data.batch_size, train=True,
                         augment=cfg.data.augment, shard=(world.rank, world.size), **common)
    test = TensorLoader(splits.test_images, splits.test_labels, max(cfg.data.batch_size, 500), train=False,
                        augment=False, **common)
    return train, test
