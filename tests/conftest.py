"""Shared test helpers: the CLI run in-process, and small configs."""

import sys
from pathlib import Path

import pytest
import torch
import yaml

from wmprune.cli import main

ROOT = Path(__file__).resolve().parents[1]

# The test models are tiny: one thread is faster than two fighting over a shared 2-core machine.
torch.set_num_threads(1)


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `wmprune ARGS...` in this process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["wmprune", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        out, err = capsys.readouterr()
        return code, out, err

    return run


def write_config(path: Path, **sections) -> Path:
    """A YAML config for a tiny CPU run; keyword arguments replace whole top-level sections."""
    config = {
        "name": "tiny",
        "seed": 0,
        "device": "cpu",
        "model": {"name": "vgg16", "width": 0.125},
        "data": {"name": "synthetic", "batch_size": 32},
        "train": {"epochs": 2, "lr": 0.05},
        "prune": {"method": "weightmom", "target_sparsity": 0.9,
                  "schedule": {"start_epoch": 0, "end_epoch": 1, "every_steps": 4}},
    }
    config.update(sections)
    path.write_text(yaml.safe_dump(config))
    return path
