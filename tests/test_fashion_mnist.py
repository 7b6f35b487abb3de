"""Fashion-MNIST: the IDX reader on generated files, its refusals, where it looks, downloading, the CLI,
and one end-to-end run on the real files."""

import csv
import gzip
import json
import os
import struct
import time

import numpy as np
import pytest
import torch
import torchvision.datasets.utils

from tests.conftest import ROOT, write_config
from tests.idx_files import idx_bytes, write_fashion_mnist, write_gzip
from wmprune.data import fashion_mnist
from wmprune.data.__main__ import main
from wmprune.data.fashion_mnist import MD5, URL, find, load_fashion_mnist
from wmprune.errors import UserError


@pytest.fixture
def debian(tmp_path, monkeypatch):
    """An empty stand-in for Debian's datasets folder, so the machine's real files never interfere."""
    folder = tmp_path / "debian"
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", folder)
    return folder


def _raw(path):
    """An array of one of our own generated files, decoded without the reader under test."""
    data = gzip.decompress(path.read_bytes())
    dims = data[3]
    shape = struct.unpack(f">{dims}I", data[4:4 + 4 * dims])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape).copy()


def test_round_trip_pads_to_32_and_keeps_one_channel(tmp_path, debian):
    folder = write_fashion_mnist(tmp_path / "fashion-mnist", n_train=40, n_test=20)
    splits = load_fashion_mnist(tmp_path, download=False)

    assert (splits.name, splits.num_classes, splits.channels) == ("fashion-mnist", 10, 1)
    assert splits.train_images.shape == (40, 1, 32, 32) and splits.train_images.dtype == torch.uint8
    assert splits.test_images.shape == (20, 1, 32, 32) and splits.test_labels.dtype == torch.int64
    for images, labels, prefix in ((splits.train_images, splits.train_labels, "train"),
                                   (splits.test_images, splits.test_labels, "t10k")):
        original = torch.from_numpy(_raw(folder / f"{prefix}-images-idx3-ubyte.gz"))
        assert torch.equal(images[:, 0, 2:30, 2:30], original)
        border = images.clone()
        border[:, :, 2:30, 2:30] = 0
        assert not border.any()  # 2 pixels of zeros on every side
        assert labels.tolist() == _raw(folder / f"{prefix}-labels-idx1-ubyte.gz").tolist()


def _images(n=40, size=28):
    return np.random.default_rng(1).integers(0, 256, (n, size, size))


@pytest.mark.parametrize("name, raw, problem", [
    ("train-images-idx3-ubyte.gz", struct.pack(">4I", 2049, 40, 28, 28) + bytes(40 * 28 * 28),
     "magic number 2049 where 2051"),
    ("train-images-idx3-ubyte.gz", idx_bytes(_images())[:-100], "40×28×28 = 31360 values but 31260 follow"),
    ("train-images-idx3-ubyte.gz", idx_bytes(_images()) + b"\0", "31361 follow"),
    ("train-images-idx3-ubyte.gz", idx_bytes(_images(size=30)), "must be 28×28, the header says 30×30"),
    ("train-images-idx3-ubyte.gz", b"\0\0\x08", "fewer than its 16-byte header"),
    ("train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(39)), "39 labels but train-images-idx3-ubyte.gz has 40"),
    ("t10k-labels-idx1-ubyte.gz", idx_bytes(np.array([0, 1, 10] + [0] * 17)), r"\[0, 10\), found 10"),
    ("t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros((20, 1))), "magic number 2050 where 2049"),
])
def test_malformed_file_is_one_line_naming_it(tmp_path, debian, name, raw, problem):
    folder = write_fashion_mnist(tmp_path / "fashion-mnist", n_train=40, n_test=20)
    write_gzip(folder / name, raw)
    with pytest.raises(UserError, match=problem) as e:
        load_fashion_mnist(tmp_path, download=False)
    message = str(e.value)
    assert str(folder / name) in message and "\n" not in message
    assert "delete it" in message and "make data" in message


@pytest.mark.parametrize("damage, problem", [
    (lambda data: gzip.decompress(data), "not a complete gzip file"),  # the IDX bytes, not gzipped
    # a gzip stream cut short, as an interrupted copy leaves it
    (lambda data: data[: len(data) // 2], "not a complete gzip file"),
    (lambda data: b"", "it has 0 bytes"),  # gzip reads an empty file as empty
])
def test_broken_gzip_is_one_line_naming_it(tmp_path, debian, damage, problem):
    folder = write_fashion_mnist(tmp_path / "fashion-mnist")
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(UserError, match=problem) as e:
        load_fashion_mnist(tmp_path, download=False)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_damaged_debian_file_says_reinstall(tmp_path, debian):
    write_fashion_mnist(debian)
    (debian / "train-labels-idx1-ubyte.gz").write_bytes(b"junk")
    with pytest.raises(UserError, match="apt-get install --reinstall dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path, download=False)


def test_data_root_is_searched_before_debian(tmp_path, debian):
    mine = write_fashion_mnist(tmp_path / "fashion-mnist", seed=1)
    write_fashion_mnist(debian, seed=2)
    assert find(tmp_path) == mine
    labels = load_fashion_mnist(tmp_path, download=False).train_labels
    assert labels.tolist() == _raw(mine / "train-labels-idx1-ubyte.gz").tolist()


def test_debian_folder_is_used_when_data_root_is_incomplete(tmp_path, debian):
    mine = write_fashion_mnist(tmp_path / "fashion-mnist", seed=1)
    (mine / "t10k-labels-idx1-ubyte.gz").unlink()
    write_fashion_mnist(debian, seed=2)
    assert find(tmp_path) == debian
    labels = load_fashion_mnist(tmp_path, download=False).train_labels
    assert labels.tolist() == _raw(debian / "train-labels-idx1-ubyte.gz").tolist()


def test_missing_files_name_both_places_and_the_fixes(tmp_path, debian):
    with pytest.raises(UserError) as e:
        load_fashion_mnist(tmp_path, download=False)
    message = str(e.value)
    assert str(tmp_path / "fashion-mnist") in message and str(debian) in message
    assert "make data" in message and "apt-get install dataset-fashion-mnist" in message
    assert "data.download: true" in message and "\n" not in message


def test_download_fetches_the_four_official_files_with_md5(tmp_path, debian, monkeypatch):
    calls = []

    def fake(url, root, md5):
        calls.append((url, root, md5))
        if len(calls) == 4:
            write_fashion_mnist(root)

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", fake)
    assert load_fashion_mnist(tmp_path, download=True).train_images.shape == (40, 1, 32, 32)
    folder = str(tmp_path / "fashion-mnist")
    assert calls == [(URL + name, folder, md5) for name, md5 in MD5.items()]
    assert URL == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert MD5["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    load_fashion_mnist(tmp_path, download=True)
    assert len(calls) == 4  # files present: nothing fetched


def test_download_is_not_needed_when_debian_has_the_files(tmp_path, debian, monkeypatch):
    write_fashion_mnist(debian)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", pytest.fail)
    assert load_fashion_mnist(tmp_path, download=True).test_images.shape == (20, 1, 32, 32)


def test_download_failure_is_a_user_error(tmp_path, debian, monkeypatch):
    def offline(url, root, md5):
        raise RuntimeError("File not found or corrupted.")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", offline)
    with pytest.raises(UserError, match="fashion-mnist: downloading .*train-images-idx3-ubyte.gz failed") as e:
        load_fashion_mnist(tmp_path, download=True)
    assert "apt-get install dataset-fashion-mnist" in str(e.value)


def test_module_entry_checks_the_files(tmp_path, debian, capsys):
    # `python -m wmprune.data fashion-mnist --download`, what `make data` runs
    assert main(["fashion-mnist", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "make data" in err
    write_fashion_mnist(tmp_path / "fashion-mnist")
    assert main(["fashion-mnist", "--root", str(tmp_path)]) == 0
    assert "40 train / 20 test images, 1 channel(s), 10 classes" in capsys.readouterr().out


def _summary(run_dir):
    with open(run_dir / "summary.csv") as handle:
        return next(csv.DictReader(handle))


@pytest.mark.slow
def test_cli_trains_and_evaluates_on_generated_files(tmp_path, debian, cli):
    write_fashion_mnist(tmp_path / "data" / "fashion-mnist", n_train=60, n_test=20)
    config = write_config(tmp_path / "c.yaml", data={"name": "fashion-mnist", "root": str(tmp_path / "data"),
                                                     "batch_size": 20, "val_size": 20})
    run_dir = tmp_path / "run"
    code, out, err = cli("train", "--config", config, "--out", run_dir)
    assert code == 0, err
    assert _summary(run_dir)["dataset"] == "fashion-mnist"
    first = next(csv.DictReader(open(run_dir / "layers.csv")))
    assert first["shape"] == "8x1x3x3"  # one input channel, from the dataset
    code, out, err = cli("eval", "--run", run_dir, "--json")
    assert code == 0, err
    assert abs(json.loads(out)["test_top1"] - float(_summary(run_dir)["test_top1"])) <= 0.01


def test_cli_damaged_file_exits_2_with_one_line(tmp_path, debian, cli):
    folder = write_fashion_mnist(tmp_path / "data" / "fashion-mnist")
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    config = write_config(tmp_path / "c.yaml", data={"name": "fashion-mnist", "root": str(tmp_path / "data")})
    code, out, err = cli("train", "--config", config, "--out", tmp_path / "run")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "train-images-idx3-ubyte.gz" in lines[0], err
    assert "Traceback" not in err


_REAL_DATA = find(ROOT / "data") is not None
_REQUIRED = os.environ.get("WMPRUNE_REQUIRE_REAL_DATA") == "1"


@pytest.mark.slow
@pytest.mark.skipif(not _REAL_DATA and not _REQUIRED,
                    reason="real Fashion-MNIST files absent: run `make data` (CI sets WMPRUNE_REQUIRE_REAL_DATA=1)")
def test_real_fashion_mnist_end_to_end(tmp_path, cli):
    """One epoch of a width-1/16 AlexNet pruned to 90 % by WeightMom on the real 60,000 images.

    Batch 64 and lr 0.1: at batch 256 (234 steps) one epoch reached only 26 % top-1 pruned, 44 % dense;
    at batch 64 it reached 72.8 % in 15 s on one core.
    """
    config = write_config(
        tmp_path / "c.yaml",
        model={"name": "alexnet", "width": 0.0625},
        data={"name": "fashion-mnist", "root": str(ROOT / "data"), "batch_size": 64},
        train={"epochs": 1, "lr": 0.1},
        prune={"method": "weightmom", "target_sparsity": 0.9},
    )
    run_dir = tmp_path / "run"
    start = time.perf_counter()
    code, out, err = cli("train", "--config", config, "--out", run_dir)
    assert code == 0, err
    summary = _summary(run_dir)
    print(f"real fashion-mnist: top-1 {float(summary['test_top1']):.2f} %, {time.perf_counter() - start:.1f} s")
    assert abs(float(summary["sparsity"]) - 0.9) < 0.002
    assert float(summary["test_top1"]) > 60.0  # chance is 10 %
