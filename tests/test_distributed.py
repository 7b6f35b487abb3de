"""`torchrun --nproc_per_node 2` on CPU (gloo): the processes train one network — every method ends with the
same parameters, buffers and masks on both ranks — while each draws its own dropout and evaluates its own
slice of the test split."""

import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, write_config
from wmprune.catalog import build_config
from wmprune.errors import UserError
from wmprune.pruning.methods import METHODS
from wmprune.runtime.devices import World
from wmprune.runtime.run import check_distributed

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]


@pytest.mark.slow
def test_every_method_trains_one_network_across_two_processes(tmp_path):
    methods = sorted(set(METHODS) - {"none"})
    # One launch for all methods: process start-up and gloo set-up would otherwise dominate.
    done = subprocess.run([*TORCHRUN, str(ROOT / "tests" / "distributed_runs.py"), str(tmp_path), *methods],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    for method in methods:
        first, second = ranks[0][method], ranks[1][method]
        assert first["state"] == second["state"], f"{method}: parameters or buffers differ across ranks"
        assert first["masks"] == second["masks"], f"{method}: masks differ across ranks"
        assert first["dropout"] != second["dropout"], f"{method}: both ranks drew the same dropout"
        assert first["test_images_here"] == second["test_images_here"] == 128, "each rank evaluates half of 256"
        assert first["test_top1"] == pytest.approx(first["whole_test_top1"], abs=1e-9), method


@pytest.mark.slow
def test_the_command_under_torchrun_writes_one_run(tmp_path, cli):
    config = write_config(tmp_path / "c.yaml", model={"name": "alexnet", "width": 0.125},
                          prune={"method": "snip", "target_sparsity": 0.9})
    run_dir = tmp_path / "run"
    command = [*TORCHRUN, "-m", "wmprune", "train", "--config", str(config), "--out", str(run_dir)]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("epoch   2/2") == 1, "only rank 0 prints"
    summary = next(csv.DictReader(open(run_dir / "summary.csv")))
    assert abs(float(summary["sparsity"]) - 0.9) < 0.002
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2 * ((512 - 64) // 32)  # the global batch stays data.batch_size (64 held out)
    code, out, err = cli("eval", "--run", run_dir, "--json")
    assert code == 0, err
    assert abs(json.loads(out)["test_top1"] - float(summary["test_top1"])) <= 0.01


def test_a_global_batch_that_does_not_split_over_the_processes_is_one_line():
    cfg = build_config({"data": {"name": "synthetic", "batch_size": 33}})
    with pytest.raises(UserError, match="data.batch_size=33 .* 2 processes") as error:
        check_distributed(cfg, World(rank=0, size=2), torch.device("cpu"))
    assert "\n" not in str(error.value)
    check_distributed(build_config({"data": {"name": "synthetic", "batch_size": 32}}), World(0, 2), torch.device("cpu"))


def test_sync_bn_on_cpu_is_one_line(tmp_path, cli):
    config = write_config(tmp_path / "c.yaml", train={"epochs": 1, "lr": 0.05, "sync_bn": True})
    code, _, err = cli("train", "--config", config, "--out", tmp_path / "run")
    assert code == 2 and "train.sync_bn needs CUDA" in err and len(err.strip().splitlines()) == 1
