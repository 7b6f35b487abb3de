"""Datasets by config name: each loader takes (root, download) and returns a `Splits`; and how many
training images each holds out for validation when `data.val_size` is left out."""

from wmprune.data.cifar import load_cifar10, load_cifar100
from wmprune.data.digits import load_digits_splits
from wmprune.data.fashion_mnist import load_fashion_mnist
from wmprune.data.synthetic import load_synthetic

DATASETS = {
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "digits": load_digits_splits,
    "fashion-mnist": load_fashion_mnist,
    "synthetic": load_synthetic,
}


DEFAULT_VAL_SIZE = {
    "cifar10": 5000,
    "cifar100": 5000,
    "digits": 287,  # 20 % of its 1,437 training images
    "fashion-mnist": 5000,
    "synthetic": 64,
}

# Chance-level top-1 is 100 / classes: the report calls a run collapsed when it is closer to chance than to dense.
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "digits": 10, "fashion-mnist": 10, "synthetic": 10}
