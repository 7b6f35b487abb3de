"""A run killed with SIGKILL and resumed ends bit-identical to one that was never interrupted, TensorBoard
curves included."""

import csv
import os
import signal
import subprocess
import sys

import pytest
import torch

from tests.cifar_files import write_cifar10
from tests.conftest import ROOT, write_config
from tests.event_files import scalars

# Trains, kills and resumes real runs in child processes.
pytestmark = pytest.mark.slow

EPOCHS = 4

# `python -c KILLED_AT_A_STEP STEP ARGS...`: `wmprune ARGS...`, killed with SIGKILL right after optimizer step
# STEP, wherever in the epoch that falls.
KILLED_AT_A_STEP = """
import os, signal, sys
from wmprune.cli import main
from wmprune.pruning.pruner import Pruner

kill_at_step, real_step = int(sys.argv[1]), Pruner.step


def step_then_die(self):
    real_step(self)
    if self.steps == kill_at_step:
        os.kill(os.getpid(), signal.SIGKILL)


Pruner.step = step_then_die
sys.argv = ["wmprune", *sys.argv[2:]]
main()
"""


def _train(config, out, *extra, kill_at_step: int | None = None) -> subprocess.Popen:
    arguments = ["train", "--config", str(config), "--out", str(out), *extra]
    command = ([sys.executable, "-m", "wmprune", *arguments] if kill_at_step is None
               else [sys.executable, "-c", KILLED_AT_A_STEP, str(kill_at_step), *arguments])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _metrics(run_dir):
    if not (run_dir / "metrics.csv").exists():
        return []
    with open(run_dir / "metrics.csv") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def _summary(run_dir):
    with open(run_dir / "summary.csv") as handle:
        return {k: v for k, v in next(csv.DictReader(handle)).items() if k != "seconds"}


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    data = tmp_path / "data"
    write_cifar10(data, n_train_per_batch=80, n_test=100)
    # AlexNet has dropout, so the torch RNG state must survive the restart too.
    config = write_config(tmp_path / "c.yaml", model={"name": "alexnet", "width": 0.125},
                          data={"name": "cifar10", "root": str(data), "batch_size": 16, "val_size": 16},
                          train={"epochs": EPOCHS, "lr": 0.02},
                          prune={"method": "weightmom", "target_sparsity": 0.8,
                                 "schedule": {"start_epoch": 1, "end_epoch": 3, "every_steps": 7}})
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    assert _train(config, reference).wait() == 0

    steps_per_epoch = int(next(csv.DictReader(open(reference / "metrics.csv")))["step"])
    process = _train(config, interrupted, kill_at_step=2 * steps_per_epoch + steps_per_epoch // 2)  # in epoch 3
    assert process.wait() == -signal.SIGKILL
    assert len(_metrics(interrupted)) == 2 and not (interrupted / "summary.csv").exists()

    resumed = _train(config, interrupted, "--resume")
    assert resumed.wait() == 0, resumed.stderr.read()

    assert _metrics(interrupted) == _metrics(reference)
    final = torch.load(interrupted / "checkpoint.pt", weights_only=True)
    expected = torch.load(reference / "checkpoint.pt", weights_only=True)
    for name, tensor in expected["model"].items():
        assert torch.equal(final["model"][name], tensor), name
    for name, mask in expected["pruner"]["masks"].items():
        assert torch.equal(final["pruner"]["masks"][name], mask), name
    assert final["step"] == expected["step"]
    assert _summary(interrupted) == _summary(reference)
    assert scalars(interrupted) == scalars(reference)  # one continuous curve per tag, no step twice
