"""A run killed with SIGKILL and resumed ends bit-identical to one that was never interrupted, TensorBoard
curves included."""

import csv
import os
import signal
import subprocess
import sys
import time

import torch

from tests.cifar_files import write_cifar10
from tests.conftest import ROOT, write_config
from tests.event_files import scalars

EPOCHS = 4


def _train(config, out, *extra) -> subprocess.Popen:
    command = [sys.executable, "-m", "wmprune", "train", "--config", str(config), "--out", str(out), *extra]
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

    process = _train(config, interrupted)
    deadline = time.monotonic() + 120
    while len(_metrics(interrupted)) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    epoch_seconds = float(next(csv.DictReader(open(interrupted / "metrics.csv")))["seconds"])
    time.sleep(epoch_seconds / 2)  # land inside epoch 3
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (interrupted / "summary.csv").exists(), "the run finished before it could be killed"
    assert len(_metrics(interrupted)) < EPOCHS

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
