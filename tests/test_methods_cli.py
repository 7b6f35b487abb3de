"""Every method and every allocation runs from one base config, changing only the method (or allocation)
and the target, and lands on the target counted from the saved tensors."""

import csv

import pytest
import torch

from tests.conftest import write_config
from wmprune.pruning.methods import ALLOCATIONS, METHODS

# Every test here trains through `wmprune train`.
pytestmark = pytest.mark.slow

BASE = {"method": "weightmom", "target_sparsity": 0.9, "schedule": {"start_epoch": 0, "end_epoch": 1, "every_steps": 4},
        "rigl": {"update_every": 4}}  # 28 steps, T_end 21: five updates


def _train(tmp_path, cli, *overrides):
    config = write_config(tmp_path / "c.yaml", model={"name": "vgg16", "width": 0.0625}, prune=BASE)
    run_dir = tmp_path / "run"
    code, _, err = cli("train", "--config", config, "--out", run_dir, *(a for o in overrides for a in ("--set", o)))
    assert code == 0, err
    summary = next(csv.DictReader(open(run_dir / "summary.csv")))
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    layers = list(csv.DictReader(open(run_dir / "layers.csv")))
    zeros = sum(int((state[row["layer"]] == 0).sum()) for row in layers)
    return summary, zeros / sum(int(row["numel"]) for row in layers)


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"none"}))
def test_each_method_lands_on_target(tmp_path, cli, method):
    summary, measured = _train(tmp_path, cli, f"prune.method={method}", "prune.target_sparsity=0.95")
    assert abs(measured - 0.95) < 0.002
    assert summary["method"] == method
    metrics = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert int(summary["epochs"]) == len(metrics)  # IMP trains several levels; the summary says how many


@pytest.mark.parametrize("allocation", sorted(ALLOCATIONS))
def test_each_allocation_lands_on_target(tmp_path, cli, allocation):
    summary, measured = _train(tmp_path, cli, f"prune.allocation={allocation}", "prune.target_sparsity=0.95")
    assert abs(measured - 0.95) < 0.002
    assert summary["allocation"] == allocation
