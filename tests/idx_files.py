"""Write small Fashion-MNIST files in the official IDX gzip format, so tests exercise the real reader.

Same names and format as the files of Xiao, Rasul & Vollgraf (2017, arXiv 1708.07747): gzip of the IDX
format of LeCun's MNIST (http://yann.lecun.com/exdb/mnist/) — big-endian magic 0x0000 08 D (uint8 values,
D dimensions), D 32-bit sizes, then the values row-major.
"""

import gzip
import struct
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: header, then the values."""
    header = struct.pack(f">{1 + array.ndim}I", 0x0800 | array.ndim, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_gzip(path: Path, raw: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(raw)


def write_fashion_mnist(folder: Path, n_train: int = 40, n_test: int = 20, seed: int = 0) -> Path:
    """Random 28×28 images with labels 0..9 as the four official files in `folder`; returns `folder`."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_gzip(folder / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(rng.integers(0, 256, (n, 28, 28))))
        write_gzip(folder / f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(rng.integers(0, 10, n)))
    return folder
