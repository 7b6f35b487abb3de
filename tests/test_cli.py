"""End to end through the command line: train, then eval, on files in the official CIFAR format and on digits."""

import csv
import json

import pytest
import torch

from tests.cifar_files import write_cifar10, write_cifar100
from tests.conftest import ROOT, write_config


def _summary(run_dir):
    with open(run_dir / "summary.csv") as handle:
        return next(csv.DictReader(handle))


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
@pytest.mark.parametrize("model", ["alexnet", "vgg16", "resnet50"])
def test_train_then_eval_on_cifar_files(tmp_path, cli, dataset, model):
    data_root = tmp_path / "data"
    (write_cifar10 if dataset == "cifar10" else write_cifar100)(data_root)
    config = write_config(tmp_path / "c.yaml", model={"name": model, "width": 0.125},
                          data={"name": dataset, "root": str(data_root), "batch_size": 25, "val_size": 20})
    run_dir = tmp_path / "run"
    code, out, err = cli("train", "--config", config, "--out", run_dir)
    assert code == 0, err
    summary = _summary(run_dir)
    sparsity = float(summary["sparsity"])
    assert abs(sparsity - 0.9) < 0.002
    assert float(summary["compression_ratio"]) == pytest.approx(1 / (1 - sparsity))
    # Counted from the saved tensors, not taken from the summary.
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    layers = list(csv.DictReader(open(run_dir / "layers.csv")))
    zeros = sum(int((state[row["layer"]] == 0).sum()) for row in layers)
    numel = sum(int(row["numel"]) for row in layers)
    assert zeros / numel == pytest.approx(sparsity)
    code, out, err = cli("eval", "--run", run_dir, "--json")
    assert code == 0, err
    measured = json.loads(out)
    assert abs(measured["test_top1"] - float(summary["test_top1"])) <= 0.01
    assert measured["sparsity"] == pytest.approx(sparsity)


@pytest.mark.slow
def test_quickstart_on_digits_reaches_90_percent(tmp_path, cli):
    run_dir = tmp_path / "quickstart"
    code, out, err = cli("train", "--config", ROOT / "configs/quickstart.yaml", "--out", run_dir)
    assert code == 0, err
    summary = _summary(run_dir)
    assert abs(float(summary["sparsity"]) - 0.9) <= 0.002
    assert float(summary["test_top1"]) >= 90.0
    metrics = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(row["epoch"]) for row in metrics] == list(range(1, 11))
    code, out, err = cli("eval", "--run", run_dir, "--json")
    assert abs(json.loads(out)["test_top1"] - float(summary["test_top1"])) <= 0.01


@pytest.mark.slow
def test_synthetic_runs_say_so(tmp_path, cli):
    code, out, err = cli("train", "--config", write_config(tmp_path / "c.yaml"), "--out", tmp_path / "run")
    assert code == 0, err
    assert "SYNTHETIC" in (tmp_path / "run" / "log.txt").read_text()
    assert _summary(tmp_path / "run")["dataset"] == "synthetic"


@pytest.mark.parametrize("args, needle", [
    (["train", "--config", "missing.yaml"], "config file not found"),
    (["train", "--config", "{cfg}", "--set", "model.name=lenet"], "unknown model 'lenet'"),
    (["train", "--config", "{cfg}", "--set", "prune.target_sparsity=1.5"], "prune.target_sparsity"),
    (["train", "--config", "{cfg}", "--set", "data.name=cifar10", "--set", "data.root={tmp}/nowhere"],
     "data.download"),
    (["train", "--config", "{cfg}", "--set", "prune.target_sparsity"], "key=value"),
    (["train", "--config", "{cfg}", "--set", "device=cuda:7"], "cuda"),
    (["eval", "--run", "{tmp}"], "not a run directory"),
])
def test_user_mistakes_exit_2_with_one_line(tmp_path, cli, args, needle):
    config = write_config(tmp_path / "c.yaml")
    args = [a.format(cfg=config, tmp=tmp_path) for a in args]
    code, out, err = cli(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


@pytest.mark.slow
def test_existing_run_is_not_overwritten(tmp_path, cli):
    config = write_config(tmp_path / "c.yaml", train={"epochs": 1, "lr": 0.05},
                          prune={"method": "none"})
    run_dir = tmp_path / "run"
    assert cli("train", "--config", config, "--out", run_dir)[0] == 0
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    code, _, err = cli("train", "--config", config, "--out", run_dir)
    assert code == 2 and "--resume" in err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
