"""CIFAR-10 and CIFAR-100, read from the official python pickle batches.

Source: A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report,
University of Toronto, 2009. Files and format: https://www.cs.toronto.edu/~kriz/cifar.html —
each batch is a pickled dict with b'data' (N×3072 uint8: 1024 red, then 1024 green, then 1024
blue values, rows top to bottom) and the labels (b'labels' for CIFAR-10, b'fine_labels' for
CIFAR-100).
"""

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wmprune.data.download import fetch
from wmprune.data.splits import Splits
from wmprune.errors import UserError

HOME = "https://www.cs.toronto.edu/~kriz/cifar.html"

# A pickle can call any importable function, so only what the official files reference is
# resolved: NumPy's array reconstruction. `_codecs.encode` is how Python 3 writes bytes at
# protocol 2, so re-pickled copies still load; it only turns a str into bytes.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global outside `_ALLOWED`, naming the file."""

    def __init__(self, file, path: Path):
        # The official files were written by Python 2; 'bytes' keeps their str keys as bytes.
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise UserError(
                f"refusing to load {self.path}: it references {module}.{name}, which the official "
                "CIFAR files never contain; re-download the data"
            )
        return super().find_class(module, name)


@dataclass(frozen=True)
class _Archive:
    name: str
    folder: str
    url: str
    md5: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: bytes
    num_classes: int


_CIFAR10 = _Archive(
    "cifar10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a", tuple(f"data_batch_{i}" for i in range(1, 6)),
    ("test_batch",), b"labels", 10,
)
_CIFAR100 = _Archive(
    "cifar100", "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "eb9058c3a382ffc7106e4002c42a8d85", ("train",), ("test",), b"fine_labels", 100,
)


def load_cifar10(root: Path, download: bool) -> Splits:
    """CIFAR-10 (50 000 train / 10 000 test, 10 classes) from `<root>/cifar-10-batches-py/`."""
    return _load(_CIFAR10, Path(root), download)


def load_cifar100(root: Path, download: bool) -> Splits:
    """CIFAR-100 with its 100 fine labels (50 000 train / 10 000 test) from `<root>/cifar-100-python/`."""
    return _load(_CIFAR100, Path(root), download)


def _load(archive: _Archive, root: Path, download: bool) -> Splits:
    folder = root / archive.folder
    if _missing(archive, folder) and download:
        _download(archive, root)
    missing = _missing(archive, folder)
    if missing:
        raise UserError(
            f"{archive.name}: {folder / missing[0]} not found; set data.download: true or put the "
            f"extracted archive from {HOME} at {root}"
        )
    train_images, train_labels = _read_split(archive, folder, archive.train)
    test_images, test_labels = _read_split(archive, folder, archive.test)
    return Splits(archive.name, train_images, train_labels, test_images, test_labels, archive.num_classes)


def _missing(archive: _Archive, folder: Path) -> list[str]:
    return [f for f in archive.train + archive.test if not (folder / f).is_file()]


def _download(archive: _Archive, root: Path) -> None:
    fetch(archive.name, archive.url, root, archive.md5, extract=True,
          otherwise=f"put the extracted archive from {HOME} at {root}")


def _read_split(
    archive: _Archive, folder: Path, files: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    batches = [_read_batch(folder / f, archive.label_key, archive.num_classes) for f in files]
    data = np.concatenate([d for d, _ in batches])
    labels = np.concatenate([y for _, y in batches])
    return torch.from_numpy(data.reshape(-1, 3, 32, 32)), torch.from_numpy(labels)


def _read_batch(path: Path, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        try:
            batch = _CifarUnpickler(f, path).load()
        except UserError:
            raise
        except Exception as e:  # damaged pickles fail in many ways: EOFError, UnpicklingError, …
            raise UserError(
                f"cannot read {path} ({e!r}): the file is truncated or corrupt; delete it and set "
                f"data.download: true, or re-extract the archive from {HOME}"
            ) from e
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise _invalid(path, f"expected a dict with keys b'data' and {label_key!r}")
    data = batch[b"data"]
    is_array = isinstance(data, np.ndarray)
    if not (is_array and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        found = f"{data.dtype} array of shape {data.shape}" if is_array else type(data).__name__
        raise _invalid(path, f"b'data' must be a uint8 array of shape (N, 3072), found {found}")
    try:
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        labels = None
    if labels is None or labels.shape != (len(data),):
        raise _invalid(path, f"{label_key!r} must be a list of {len(data)} integers, one per image")
    if not labels.size:
        raise _invalid(path, "it holds no images")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise _invalid(path, f"labels must lie in [0, {num_classes}), found {labels.min()}..{labels.max()}")
    return data, labels


def _invalid(path: Path, problem: str) -> UserError:
    return UserError(f"{path} is not a valid CIFAR batch: {problem}; re-download the data from {HOME}")
