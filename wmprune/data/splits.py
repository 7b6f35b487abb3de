"""The in-memory form every dataset loader returns."""

from dataclasses import dataclass

import torch


@dataclass
class Splits:
    """A whole dataset as uint8 images (N×C×32×32; C = 3 for colour, 1 for grey) and int64 labels,
    train and test.

    `synthetic` marks random data, so every output can label it as such.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    synthetic: bool = False

    @property
    def channels(self) -> int:
        """Input channels of the images: models take their first convolution's width from it."""
        return self.train_images.shape[1]
