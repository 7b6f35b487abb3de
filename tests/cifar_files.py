"""Write small CIFAR files in the official format, so tests exercise the real reader.

Same layout, keys and pickle form as the archives at https://www.cs.toronto.edu/~kriz/cifar.html
(Krizhevsky 2009): protocol 2, with byte strings written the way Python 2 wrote its `str`.
"""

import pickle
import struct
from pathlib import Path

import numpy as np


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` opcodes (as the official files have) instead of Python 3's
    `_codecs.encode` call, so the reader is tested on what it will really meet."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def write_pickle(path: Path, obj) -> None:
    """Pickle `obj` to `path` the way the official CIFAR files are pickled."""
    with open(path, "wb") as f:
        _Python2Pickler(f, protocol=2).dump(obj)


def _batch(rng, n: int, label: str, extra: dict) -> dict:
    return {
        b"batch_label": label.encode(),
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(n)],
        **extra,
    }


def write_cifar10(root: Path, n_train_per_batch: int = 20, n_test: int = 20, seed: int = 0) -> Path:
    """Random CIFAR-10 files under `<root>/cifar-10-batches-py/`; returns that folder."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        labels = {b"labels": rng.integers(0, 10, n_train_per_batch).tolist()}
        batch = _batch(rng, n_train_per_batch, f"training batch {i} of 5", labels)
        write_pickle(folder / f"data_batch_{i}", batch)
    labels = {b"labels": rng.integers(0, 10, n_test).tolist()}
    write_pickle(folder / "test_batch", _batch(rng, n_test, "testing batch 1 of 1", labels))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
             b"dog", b"frog", b"horse", b"ship", b"truck"]
    meta = {b"num_cases_per_batch": n_train_per_batch, b"label_names": names, b"num_vis": 3072}
    write_pickle(folder / "batches.meta", meta)
    return folder


def write_cifar100(root: Path, n_train: int = 50, n_test: int = 20, seed: int = 0) -> Path:
    """Random CIFAR-100 files under `<root>/cifar-100-python/`; returns that folder."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(0, 100, n).tolist()
        # In the real data each fine class belongs to one of 20 superclasses.
        labels = {b"fine_labels": fine, b"coarse_labels": [y // 5 for y in fine]}
        write_pickle(folder / name, _batch(rng, n, name, labels))
    write_pickle(folder / "meta", {
        b"fine_label_names": [f"fine_{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"coarse_{i}".encode() for i in range(20)],
    })
    return folder
