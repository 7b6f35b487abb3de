"""The in-memory form every dataset loader returns, and the validation split held out of it."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from wmprune.errors import UserError

# The validation images are drawn with this seed, never the run's: every run of a study validates on the
# same images. (The number is WeightMom's arXiv id.)
SPLIT_SEED = 2208_05970


@dataclass
class Splits:
    """A whole dataset as uint8 images (N×C×32×32; C = 3 for colour, 1 for grey) and int64 labels,
    train, validation (held out of the official training split; empty until `hold_out`) and test."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None

    @property
    def channels(self) -> int:
        """Input channels of the images: models take their first convolution's width from it."""
        return self.train_images.shape[1]

    def hold_out(self, count: int) -> Splits:
        """These splits with `count` training images moved to validation, stratified by class.

        Each class gives its share count·n_c/n (largest remainder, so the shares sum to `count`), taken in
        an order drawn with SPLIT_SEED; the training part keeps its original order.
        """
        n = len(self.train_labels)
        if count == 0:
            return self
        if count >= n:
            raise UserError(f"data.val_size={count} leaves no training images ({self.name} has {n}); "
                            f"choose fewer than {n}, or 0 to train on all")
        per_class = torch.bincount(self.train_labels, minlength=self.num_classes)
        share = per_class.double() * count / n
        quota = share.floor().long()
        quota[torch.argsort(share - quota, descending=True, stable=True)[:count - int(quota.sum())]] += 1
        order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
        by_class = order[torch.argsort(self.train_labels[order], stable=True)]  # random order within a class
        starts = torch.cumsum(per_class, 0) - per_class
        chosen = torch.cat([by_class[start:start + q] for start, q in zip(starts.tolist(), quota.tolist())])
        is_val = torch.zeros(n, dtype=torch.bool)
        is_val[chosen] = True
        return replace(self, train_images=self.train_images[~is_val], train_labels=self.train_labels[~is_val],
                       val_images=self.train_images[is_val], val_labels=self.train_labels[is_val])
