"""`torchrun --nproc_per_node 2 -m wmprune train` on CPU (gloo): the DDP path trains one run together."""

import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, write_config


# snip decides its mask from each process's own data; rigl from the all-reduced gradients
@pytest.mark.parametrize("method", ["weightmom", "snip", "rigl"])
def test_two_processes_train_one_run(tmp_path, cli, method):
    config = write_config(tmp_path / "c.yaml", model={"name": "alexnet", "width": 0.125},
                          prune={"method": method, "target_sparsity": 0.9, "rigl": {"update_every": 4},
                                 "schedule": {"start_epoch": 0, "end_epoch": 1, "every_steps": 4}})
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "wmprune", "train",
               "--config", str(config), "--out", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("epoch   2/2") == 1, "only rank 0 prints"
    summary = next(csv.DictReader(open(run_dir / "summary.csv")))
    assert abs(float(summary["sparsity"]) - 0.9) < 0.002
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2 * ((512 - 64) // 32)  # the global batch stays data.batch_size (64 held out)
    code, out, err = cli("eval", "--run", run_dir, "--json")
    assert code == 0, err
    assert abs(json.loads(out)["test_top1"] - float(summary["test_top1"])) <= 0.01
