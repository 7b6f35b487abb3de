"""Random images of CIFAR shape, for smoke tests only.

The labels are independent of the images, so there is nothing to learn; a run on them says so when it
starts (runtime/trainer.py).
"""

from pathlib import Path

import torch

from wmprune.data.splits import Splits

_NUM_TRAIN, _NUM_TEST, _NUM_CLASSES, _SEED = 512, 256, 10, 0


def load_synthetic(root: Path, download: bool) -> Splits:
    """512 train / 256 test uniform random uint8 3×32×32 images with uniform random labels in 0..9.

    The same on every call (fixed seed). `root` and `download` are ignored; they are there so
    every loader has the same signature.
    """
    generator = torch.Generator().manual_seed(_SEED)
    train_images, train_labels = random_images(_NUM_TRAIN, generator)
    test_images, test_labels = random_images(_NUM_TEST, generator)
    return Splits("synthetic", train_images, train_labels, test_images, test_labels, _NUM_CLASSES)


def random_images(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` uniform random uint8 3×32×32 images (CIFAR's shape) and uniform random labels in 0..9."""
    images = torch.randint(0, 256, (count, 3, 32, 32), generator=generator, dtype=torch.uint8)
    return images, torch.randint(0, _NUM_CLASSES, (count,), generator=generator)
