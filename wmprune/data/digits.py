"""Real handwritten digits that need no network: scikit-learn's bundled copy, shaped like CIFAR.

Source: E. Alpaydin and C. Kaynak, "Cascading Classifiers", Kybernetika 34(4), 1998; UCI Machine
Learning Repository, "Optical Recognition of Handwritten Digits"
(https://archive.ics.uci.edu/dataset/80). scikit-learn ships its test part: 1797 images of 8×8
pixels with values 0..16, 10 classes.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wmprune.data.splits import Splits


def load_digits_splits(root: Path, download: bool) -> Splits:
    """The digits as uint8 N×1×32×32 grey images with a fixed stratified 80/20 split (1437 / 360).

    Pixels are scaled from 0..16 to 0..255 and resized bilinearly to 32×32, so CIFAR models run on them
    with a one-channel first convolution. `root` and `download` are ignored (the data
    ships with scikit-learn); they are there so every loader has the same signature.
    """
    # Imported here: scikit-learn is slow to import and only this dataset needs it.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    small = torch.from_numpy(digits.images).float().mul(255 / 16).unsqueeze(1)
    large = F.interpolate(small, size=(32, 32), mode="bilinear", align_corners=False)
    images = large.round().clamp(0, 255).to(torch.uint8)
    labels = torch.from_numpy(digits.target).long()
    train, test = train_test_split(
        np.arange(len(labels)), test_size=0.2, stratify=digits.target, random_state=0
    )
    train, test = torch.from_numpy(train), torch.from_numpy(test)
    return Splits("digits", images[train], labels[train], images[test], labels[test], num_classes=10)
