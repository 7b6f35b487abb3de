"""Batches from a whole split held as one uint8 tensor on the training device.

Augmentation (random crop with 4 pixels of zero padding, horizontal flip) and normalisation are batched
tensor ops, as in airbench (Jordan 2024, arXiv 2404.00498): no per-image Python, no worker processes.
The order and the augmentation of epoch e depend only on (seed, e), so a run resumed at an epoch
boundary sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

PAD = 4


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images (the training split), in [0, 1] units.

    Exact integer sums over chunks of images: no float copy of the whole split (1.2 GB for CIFAR).
    """
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.int64)
    squares = torch.zeros(channels, dtype=torch.int64)
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].to(torch.int64).transpose(0, 1).reshape(channels, -1)
        total += part.sum(dim=1)
        squares += (part * part).sum(dim=1)
    count = images.numel() // channels
    mean = total.double() / count
    variance = (squares.double() - count * mean * mean) / (count - 1)  # unbiased, as torch.std
    return (mean / 255.0).float(), (variance.clamp(min=0).sqrt() / 255.0).float()


class TensorLoader:
    """Iterates (normalised float images, labels) over a split that lives on `device`."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, device: torch.device,
                 mean: torch.Tensor, std: torch.Tensor, train: bool, augment: bool, seed: int,
                 channels_last: bool = False, shard: tuple[int, int] = (0, 1)):
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.images = images.to(device).contiguous(memory_format=self.memory_format)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.device = device
        self.stats = (mean, std)  # as given, [0, 1] units: checkpoints keep them for eval and bench
        # (x − mean)/std as x·scale + shift: one fused addcmul over the batch.
        self.scale = (1.0 / (std * 255.0)).view(1, -1, 1, 1).to(device)
        self.shift = (-mean / std).view(1, -1, 1, 1).to(device)
        self.train = train
        self.augment = augment and train
        self.seed = seed
        if self.augment:
            # The split zero-padded once, as rows of whole pixels ((N·H'·W') × C): a batch's random crops
            # and flips are then one gather of pixels, straight into channels_last order.
            padded = F.pad(self.images, (PAD, PAD, PAD, PAD))
            self.pixels = padded.permute(0, 2, 3, 1).reshape(-1, padded.shape[1])
            h, w = self.images.shape[2:]
            self.rows = torch.arange(h, device=device)
            self.cols = torch.stack([torch.arange(w, device=device), torch.arange(w - 1, -1, -1, device=device)])
        # (rank, processes) under DDP: in training each process takes every size-th image of each global
        # batch; in evaluation its contiguous slice of the split (the sums are added across processes).
        self.shard = shard

    def __len__(self) -> int:
        """Batches per epoch; training drops the last partial batch so every step has full size."""
        if self.train:
            return max(1, len(self.labels) // self.batch_size)
        start, stop = self._slice()
        return -(-(stop - start) // self.batch_size)

    def _slice(self) -> tuple[int, int]:
        """This process's part of the split in evaluation: [start, stop)."""
        rank, size = self.shard
        n = len(self.labels)
        return n * rank // size, n * (rank + 1) // size

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.train:
            yield from self._in_order()
            return
        index, offsets, flips = self.plan(epoch)
        for i in range(len(self)):
            images = self._augment(index[i], offsets[:, i], flips[i]) if self.augment else self.images[index[i]]
            yield self._normalise(images), self.labels[index[i]]

    def plan(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Epoch `epoch`'s image indices (steps × per-process batch), crop offsets (2 × steps × batch × 1×1×1)
        and flips (steps × batch × 1×1×1, or None without augmentation), on the device.

        Drawn on the host in one go from a generator seeded by (seed, epoch) alone, for the whole global
        batch (so they do not depend on the number of processes), then copied once per epoch: no step waits
        for a host-to-device copy (pinned and non-blocking on CUDA).
        """
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n, steps = len(self.labels), len(self)
        batch = min(self.batch_size, n)
        rank, size = self.shard  # each process takes every size-th image of each global batch
        index = torch.randperm(n, generator=generator)[:steps * batch].view(steps, batch)[:, rank::size]
        if not self.augment:
            return self._to_device(index), None, None
        offsets, flips = self._draw(steps * batch, generator)
        offsets = offsets.view(2, steps, batch, 1, 1, 1)[:, :, rank::size]
        flips = flips.view(steps, batch, 1, 1, 1)[:, rank::size]
        return self._to_device(index), self._to_device(offsets), self._to_device(flips)

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """One copy to the device; from pinned memory and non-blocking on CUDA, so the host runs ahead."""
        tensor = tensor.contiguous()  # the rank's columns, packed
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor

    def _in_order(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Evaluation: this process's part of the split in order, as views (no index copies)."""
        first, stop = self._slice()
        for start in range(first, stop, self.batch_size):
            end = min(start + self.batch_size, stop)
            yield self._normalise(self.images[start:end]), self.labels[start:end]

    @staticmethod
    def _draw(b: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop offsets (2×b×1×1×1) and flip decisions (b×1×1×1) for b images, on the host."""
        offsets = torch.randint(0, 2 * PAD + 1, (2, b, 1, 1, 1), generator=generator)
        flips = torch.rand(b, 1, 1, 1, generator=generator) < 0.5
        return offsets, flips

    def _augment(self, index: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """Images `index` of the split, each translated within the zero padding and then flipped horizontally
        where `flips` says (uint8, N×C×H×W in channels_last memory).

        One gather of whole pixels from the padded split (a flip only reverses the column indices):
        no per-image Python, no host sync, no intermediate batch (scripts/bench_loader.py).
        """
        b = len(index)
        h, w = self.images.shape[2:]
        height, width = h + 2 * PAD, w + 2 * PAD
        rows = offsets[0].view(b, 1) + self.rows  # b×h rows of the padded image
        cols = offsets[1].view(b, 1) + self.cols[flips.view(b).long()]  # b×w columns, reversed if flipped
        at = index.view(b, 1, 1) * (height * width) + rows[:, :, None] * width + cols[:, None, :]
        return self.pixels.index_select(0, at.view(-1)).view(b, h, w, -1).permute(0, 3, 1, 2)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        out = torch.addcmul(self.shift, images.float(), self.scale)
        return out.contiguous(memory_format=self.memory_format)
