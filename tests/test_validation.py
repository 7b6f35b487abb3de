"""The validation split: held out of the training images, stratified, the same for every run seed;
normalisation from the training part only; val columns in metrics.csv and summary.csv."""

import csv
import json
import math

import pytest
import torch
import yaml

from tests.conftest import write_config
from wmprune.catalog import build_config
from wmprune.data.digits import load_digits_splits
from wmprune.data.loader import channel_stats
from wmprune.runtime.loaders import load_splits, make_loaders


def test_hold_out_is_stratified_exact_and_disjoint():
    splits = load_digits_splits("data", False)
    held = splits.hold_out(287)
    assert len(held.val_labels) == 287 and len(held.train_labels) == len(splits.train_labels) - 287
    per_class_all = torch.bincount(splits.train_labels, minlength=10).double()
    per_class_val = torch.bincount(held.val_labels, minlength=10).double()
    assert (per_class_val - per_class_all * 287 / len(splits.train_labels)).abs().max() < 1  # proportional
    images = {tuple(x.flatten().tolist()) for x in held.val_images}
    assert not images & {tuple(x.flatten().tolist()) for x in held.train_images[:200]}
    assert torch.equal(splits.hold_out(0).train_images, splits.train_images)


def test_split_does_not_depend_on_the_run_seed():
    first = load_splits(build_config({"data": {"name": "digits"}, "seed": 0}))
    second = load_splits(build_config({"data": {"name": "digits"}, "seed": 7}))
    assert torch.equal(first.val_images, second.val_images) and torch.equal(first.val_labels, second.val_labels)


def test_normalisation_comes_from_the_training_part_only():
    cfg = build_config({"data": {"name": "digits", "val_size": 500}, "device": "cpu"})
    splits = load_splits(cfg)
    train, val, _ = make_loaders(cfg, splits, torch.device("cpu"))
    mean, std = channel_stats(splits.train_images)
    assert torch.equal(train.stats[0], mean) and torch.equal(val.stats[1], std)
    everything = torch.cat([splits.train_images, splits.val_images])
    assert not torch.allclose(channel_stats(everything)[0], mean, rtol=0, atol=1e-6)


def test_channel_stats_match_float64_reference():
    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    pixels = images.permute(1, 0, 2, 3).reshape(3, -1).double() / 255
    mean, std = channel_stats(images, chunk=7)
    torch.testing.assert_close(mean, pixels.mean(1).float())
    torch.testing.assert_close(std, pixels.std(1).float())


@pytest.mark.slow
def test_default_val_size_is_written_resolved_and_zero_trains_on_all(tmp_path, cli):
    assert build_config({"data": {"name": "cifar10"}}).data.val_size == 5000
    assert build_config({"data": {"name": "fashion-mnist"}}).data.val_size == 5000
    assert build_config({"data": {"name": "digits"}}).data.val_size == 287
    config = write_config(tmp_path / "c.yaml", train={"epochs": 1, "lr": 0.05})
    assert cli("train", "--config", config, "--out", tmp_path / "run")[0] == 0
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["val_size"] == 64
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    # Measured on exactly the 64 held-out images: top-1 is a whole number of them, the loss a real mean.
    correct = float(rows[-1]["val_top1"]) * 64 / 100
    assert correct == pytest.approx(round(correct), abs=1e-9) and 0 <= round(correct) <= 64
    assert 0 < float(rows[-1]["val_loss"]) < math.inf
    summary = next(csv.DictReader(open(tmp_path / "run" / "summary.csv")))
    assert summary["val_top1"] == rows[-1]["val_top1"]
    assert list(summary)[:18][-1] == "torch_version"  # the first contract's columns keep their order
    assert summary["device"] == f"cpu (fp32, {torch.get_num_threads()} threads)"
    none = write_config(tmp_path / "none.yaml", train={"epochs": 1, "lr": 0.05},
                        data={"name": "synthetic", "batch_size": 32, "val_size": 0})
    assert cli("train", "--config", none, "--out", tmp_path / "none")[0] == 0
    assert next(csv.DictReader(open(tmp_path / "none" / "summary.csv")))["val_top1"] == ""


def test_val_size_too_large_is_one_line(tmp_path, cli):
    config = write_config(tmp_path / "c.yaml", data={"name": "synthetic", "val_size": 512})
    code, _, err = cli("train", "--config", config, "--out", tmp_path / "run")
    assert code == 2 and "data.val_size" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_eval_normalises_with_the_statistics_in_the_checkpoint(tmp_path, cli, monkeypatch):
    """`wmprune eval` does not recompute mean and std from the training split: the checkpoint has them."""
    config = write_config(tmp_path / "c.yaml", train={"epochs": 1, "lr": 0.05})
    assert cli("train", "--config", config, "--out", tmp_path / "run")[0] == 0
    summary = next(csv.DictReader(open(tmp_path / "run" / "summary.csv")))
    stored = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["normalisation"]
    splits = load_splits(build_config(yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())))
    torch.testing.assert_close((stored["mean"], stored["std"]), channel_stats(splits.train_images))

    def refuse(images):
        raise AssertionError("channel_stats recomputed")

    monkeypatch.setattr("wmprune.runtime.loaders.channel_stats", refuse)
    code, out, err = cli("eval", "--run", tmp_path / "run", "--json")
    assert code == 0, err
    assert abs(json.loads(out)["test_top1"] - float(summary["test_top1"])) <= 0.01
