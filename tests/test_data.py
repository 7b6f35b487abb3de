"""Dataset loaders: the CIFAR reader on files in the official format, its refusals, digits, synthetic."""

import os
import pickle
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets.utils

from tests.cifar_files import write_cifar10, write_cifar100, write_pickle
from wmprune.data.cifar import load_cifar10, load_cifar100
from wmprune.data.digits import load_digits_splits
from wmprune.data.synthetic import load_synthetic
from wmprune.errors import UserError


def _raw(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")  # our own test file, so plain pickle is safe


def test_cifar10_round_trip(tmp_path):
    folder = write_cifar10(tmp_path, n_train_per_batch=20, n_test=20)
    splits = load_cifar10(tmp_path, download=False)
    train = [_raw(folder / f"data_batch_{i}") for i in range(1, 6)]
    test = _raw(folder / "test_batch")

    assert (splits.name, splits.num_classes) == ("cifar10", 10)
    assert splits.train_images.shape == (100, 3, 32, 32) and splits.train_images.dtype == torch.uint8
    assert splits.channels == 3
    assert splits.test_images.shape == (20, 3, 32, 32)
    assert splits.train_labels.dtype == torch.int64
    assert splits.train_labels.tolist() == sum((b[b"labels"] for b in train), [])
    assert splits.test_labels.tolist() == test[b"labels"]
    # channel-major rows: value k of an image is channel k // 1024, row k % 1024 // 32, column k % 32
    k = 1 * 1024 + 5 * 32 + 7
    assert splits.test_images[3, 1, 5, 7] == test[b"data"][3, k]
    assert splits.train_images[20, 2, 31, 0] == train[1][b"data"][0, 2 * 1024 + 31 * 32]
    assert torch.equal(splits.test_images.flatten(1), torch.from_numpy(test[b"data"]))


def test_cifar100_round_trip_uses_fine_labels(tmp_path):
    folder = write_cifar100(tmp_path, n_train=50, n_test=20)
    splits = load_cifar100(tmp_path, download=False)
    train = _raw(folder / "train")

    assert (splits.name, splits.num_classes) == ("cifar100", 100)
    assert splits.train_images.shape == (50, 3, 32, 32) and splits.test_images.shape == (20, 3, 32, 32)
    assert splits.train_labels.tolist() == train[b"fine_labels"]
    assert torch.equal(splits.train_images.flatten(1), torch.from_numpy(train[b"data"]))


@pytest.mark.parametrize(
    "load, folder", [(load_cifar10, "cifar-10-batches-py"), (load_cifar100, "cifar-100-python")]
)
def test_missing_data_names_path_and_fix(tmp_path, load, folder):
    with pytest.raises(UserError) as e:
        load(tmp_path / "nowhere", download=False)
    message = str(e.value)
    assert str(tmp_path / "nowhere" / folder) in message
    assert "data.download: true" in message and "https://www.cs.toronto.edu/~kriz/cifar.html" in message
    assert "\n" not in message


def test_missing_batch_is_named(tmp_path):
    folder = write_cifar10(tmp_path)
    (folder / "data_batch_4").unlink()
    with pytest.raises(UserError, match="data_batch_4"):
        load_cifar10(tmp_path, download=False)


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_hostile_pickle_is_refused_without_running(tmp_path):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Hostile(marker), b"labels": []}, protocol=2)
    (folder / "test_batch").write_bytes(payload)

    with pytest.raises(UserError) as e:
        load_cifar10(tmp_path, download=False)
    assert str(folder / "test_batch") in str(e.value) and "system" in str(e.value)
    assert not marker.exists()
    pickle.loads(payload)  # the payload is real: a plain unpickler runs it
    assert marker.exists()


def test_truncated_file(tmp_path):
    folder = write_cifar10(tmp_path)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError, match="data_batch_3.*truncated or corrupt"):
        load_cifar10(tmp_path, download=False)


def test_python3_protocol2_copy_loads(tmp_path):
    # Python 3 writes bytes at protocol 2 through `_codecs.encode`, which the reader allows.
    folder = write_cifar10(tmp_path)
    batch = _raw(folder / "test_batch")
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    assert load_cifar10(tmp_path, download=False).test_labels.tolist() == batch[b"labels"]


_DATA = np.zeros((4, 3072), dtype=np.uint8)


@pytest.mark.parametrize("batch, problem", [
    ({b"data": _DATA, b"labels": [0, 1, 2, 10]}, r"\[0, 10\)"),
    ({b"data": _DATA, b"labels": [0, -1, 2, 3]}, r"\[0, 10\)"),
    ({b"data": _DATA, b"labels": [0, 1, 2]}, "4 integers"),
    ({b"data": np.zeros((4, 3000), np.uint8), b"labels": [0, 1, 2, 3]}, r"shape \(N, 3072\)"),
    ({b"data": np.zeros((4, 3072), np.float32), b"labels": [0, 1, 2, 3]}, "uint8"),
    ({b"data": _DATA}, "keys"),
    ([1, 2, 3], "keys"),
])
def test_invalid_batch(tmp_path, batch, problem):
    folder = write_cifar10(tmp_path)
    write_pickle(folder / "test_batch", batch)
    with pytest.raises(UserError, match=problem) as e:
        load_cifar10(tmp_path, download=False)
    assert str(folder / "test_batch") in str(e.value)


def test_download_fetches_official_archive_when_missing(tmp_path, monkeypatch):
    calls = []

    def fake(url, download_root, md5):
        calls.append((url, md5))
        write_cifar100(download_root)

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", fake)
    assert load_cifar100(tmp_path, download=True).train_images.shape == (50, 3, 32, 32)
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    assert calls == [(url, "eb9058c3a382ffc7106e4002c42a8d85")]
    load_cifar100(tmp_path, download=True)
    assert len(calls) == 1  # files present: nothing fetched


def test_download_failure_is_a_user_error(tmp_path, monkeypatch):
    def offline(url, download_root, md5):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", offline)
    with pytest.raises(UserError, match="cifar-10-python.tar.gz.*failed"):
        load_cifar10(tmp_path, download=True)


def test_digits():
    splits = load_digits_splits(None, False)
    assert (splits.name, splits.num_classes) == ("digits", 10)
    assert splits.train_images.shape == (1437, 1, 32, 32) and splits.test_images.shape == (360, 1, 32, 32)
    assert splits.channels == 1
    assert splits.train_images.dtype == torch.uint8 and splits.train_labels.dtype == torch.int64
    assert splits.train_images.max() >= 250  # scaled from 0..16 to 0..255
    # stratified: every class is 20% of the test split, to within one image
    everything = torch.cat([splits.train_labels, splits.test_labels]).bincount()
    assert ((splits.test_labels.bincount() - 0.2 * everything).abs() <= 1).all()
    assert torch.equal(load_digits_splits(None, False).test_labels, splits.test_labels)


def test_synthetic_is_fixed():  # a run on it says so: tests/test_cli.py
    splits = load_synthetic(None, False)
    assert splits.name == "synthetic" and splits.num_classes == 10
    assert splits.train_images.shape == (512, 3, 32, 32) and splits.train_images.dtype == torch.uint8
    assert splits.test_labels.shape == (256,) and splits.test_labels.dtype == torch.int64
    assert torch.equal(load_synthetic(None, False).train_images, splits.train_images)

