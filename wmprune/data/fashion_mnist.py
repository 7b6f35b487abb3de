"""Fashion-MNIST, read from the official IDX gzip files by our own reader.

Source: H. Xiao, K. Rasul and R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
Machine Learning Algorithms", 2017, arXiv 1708.07747; files at
https://github.com/zalandoresearch/fashion-mnist. 60 000 train / 10 000 test greyscale 28×28 images of
10 clothing classes, in four gzip files in the IDX format of LeCun's MNIST
(http://yann.lecun.com/exdb/mnist/): a big-endian header — the magic number 0x0800 + D (0x08: unsigned
bytes; D: the number of dimensions, so 2051 for the images and 2049 for the labels), then D 32-bit
sizes — followed by the values, row-major.

Debian's package `dataset-fashion-mnist` (0.0~git20200523.55506a9-1) ships the four files with the
original name and time stamp stripped from their gzip headers: the decompressed bytes have the md5 sums
published for the uncompressed official files, the `.gz` files do not have the official ones. So the
md5 sums below are checked on download only; every file read is checked for its structure.

`python -m wmprune.data fashion-mnist --download` (what `make data` runs) finds or fetches the files and
checks that they read.
"""

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wmprune.data.download import fetch
from wmprune.data.splits import Splits
from wmprune.errors import UserError

NAME = "fashion-mnist"
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# Where Debian's `dataset-fashion-mnist` installs the files (`dpkg -L dataset-fashion-mnist`).
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
# md5 of each official .gz file, as published in the dataset's README (and in torchvision's FashionMNIST).
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
SIZE, PADDED, NUM_CLASSES = 28, 32, 10
_IMAGES_MAGIC, _LABELS_MAGIC = 0x0803, 0x0801
MAX_VALUES = 60_000 * SIZE * SIZE  # the training images: the largest file of the set
_HOW_TO_GET = ("run `make data`, or `apt-get install dataset-fashion-mnist` as root, "
               "or set data.download: true")


def load_fashion_mnist(root: Path, download: bool) -> Splits:
    """Fashion-MNIST as uint8 N×1×32×32 images: the 28×28 originals zero-padded by 2 pixels on each side,
    so the CIFAR architectures apply unchanged.

    Looks in `<root>/fashion-mnist/`, then in Debian's `DEBIAN_DIR`; with `download`, files found in
    neither are fetched from the official source into `<root>/fashion-mnist/` and md5-checked.
    """
    folder = find(Path(root))
    if folder is None and download:
        folder = fetch_files(Path(root))
    if folder is None:
        local = Path(root) / NAME
        raise UserError(f"{NAME}: the four files {', '.join(MD5)} are in neither {local} nor {DEBIAN_DIR}; "
                        f"{_HOW_TO_GET}")
    train_images, train_labels = read_split(folder, "train")
    test_images, test_labels = read_split(folder, "t10k")
    return Splits(NAME, train_images, train_labels, test_images, test_labels, NUM_CLASSES)


def find(root: Path) -> Path | None:
    """The first of `<root>/fashion-mnist/` and `DEBIAN_DIR` that holds all four files, else None."""
    for folder in (root / NAME, DEBIAN_DIR):
        if all((folder / name).is_file() for name in MD5):
            return folder
    return None


def fetch_files(root: Path) -> Path:
    """Download the four official files into `<root>/fashion-mnist/`, md5-checked; returns that folder."""
    folder = root / NAME
    for name, md5 in MD5.items():
        fetch(NAME, URL + name, folder, md5, extract=False,
              otherwise=f"put the four files from {URL} in {folder}, or `apt-get install dataset-fashion-mnist`")
    return folder


def read_split(folder: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N×1×32×32 uint8, zero-padded) and labels (N int64) of the split `train` or `t10k`."""
    images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
    images = _read_idx(images_path, _IMAGES_MAGIC)
    labels = _read_idx(labels_path, _LABELS_MAGIC)
    if images.shape[1:] != (SIZE, SIZE):
        raise _invalid(images_path, f"images must be {SIZE}×{SIZE}, the header says "
                                    f"{images.shape[1]}×{images.shape[2]}")
    if len(images) != len(labels):
        raise _invalid(labels_path, f"it has {len(labels)} labels but {images_path.name} has {len(images)} images")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise _invalid(labels_path, f"labels must lie in [0, {NUM_CLASSES}), found {labels.max()}")
    pad = (PADDED - SIZE) // 2
    padded = F.pad(torch.from_numpy(images).unsqueeze(1), (pad, pad, pad, pad))
    return padded, torch.from_numpy(labels.astype(np.int64))


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array of a gzip IDX file whose magic number must be `magic`; any defect is a UserError.

    Reads no more than the header announces (and never more than MAX_VALUES), so a file that decompresses
    without end is refused without filling the memory."""
    dims = magic & 0xFF
    header = 4 * (1 + dims)
    try:
        with gzip.open(path, "rb") as f:
            head = f.read(header)
            if len(head) < header:
                raise _invalid(path, f"it has {len(head)} bytes, fewer than its {header}-byte header")
            found, *shape = struct.unpack(f">{1 + dims}I", head)
            if found != magic:
                raise _invalid(path, f"magic number {found} where {magic} (uint8, {dims} dimension(s)) is expected")
            expected = math.prod(shape)
            if shape[0] == 0:
                raise _invalid(path, "the header says it holds 0 items")
            if expected > MAX_VALUES:
                raise _invalid(path, f"the header says {'×'.join(map(str, shape))} values, more than "
                                     f"Fashion-MNIST's {MAX_VALUES:,}")
            raw = f.read(expected + 1)
    except (OSError, EOFError, zlib.error) as e:  # not gzip: BadGzipFile (an OSError); cut short: EOFError
        raise _invalid(path, f"it is not a complete gzip file ({e})") from e
    if len(raw) != expected:
        follow = f"{len(raw)}" if len(raw) < expected else f"at least {len(raw)}"  # read no further
        raise _invalid(path, f"the header says {'×'.join(map(str, shape))} = {expected} values but {follow} follow")
    # A writable copy: torch warns on arrays that share the read-only bytes.
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape).copy()


def _invalid(path: Path, problem: str) -> UserError:
    if path.parent == DEBIAN_DIR:
        fix = "reinstall it: apt-get install --reinstall dataset-fashion-mnist"
    else:
        fix = "delete it, then run `make data` or set data.download: true"
    return UserError(f"{path} is not a valid Fashion-MNIST IDX file: {problem}; {fix}")
