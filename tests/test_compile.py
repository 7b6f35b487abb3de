"""`train.compile`: pruning events never recompile the forward — the masks are applied outside it, in place
between steps, and dynamo guards parameters by identity, not by value."""

from functools import partial

import pytest
import torch
from rich.console import Console

from tests.conftest import write_config
from wmprune.catalog import build_config
from wmprune.config import read_yaml
from wmprune.runtime.trainer import train

# Trains a compiled run.
pytestmark = pytest.mark.slow


def test_pruning_events_do_not_recompile(tmp_path, monkeypatch):
    graphs = []

    def counting_backend(graph, example_inputs):  # dynamo's graphs, run eagerly: no C++ compiler needed
        graphs.append(graph)
        return graph.forward

    monkeypatch.setattr(torch, "compile", partial(torch.compile, backend=counting_backend))
    torch._dynamo.reset()
    runs, after_epoch = [], []

    def count_graphs_after_each_epoch(run):
        epoch_end = run.pruner.epoch_end
        run.pruner.epoch_end = lambda epoch: (after_epoch.append(len(graphs)), epoch_end(epoch))
        runs.append(run)

    config = write_config(tmp_path / "c.yaml", model={"name": "alexnet", "width": 0.125},
                          train={"epochs": 3, "lr": 0.05, "compile": True},
                          prune={"method": "weightmom", "target_sparsity": 0.9,
                                 "schedule": {"start_epoch": 0, "end_epoch": 3, "every_steps": 3}})
    cfg = build_config(read_yaml(config))
    train(cfg, tmp_path / "run", False, Console(quiet=True, record=True), on_start=count_graphs_after_each_epoch)
    assert runs[0].pruner.sparsity() > 0.85
    # Epoch 1 compiles the training and evaluation graphs; epochs 2 and 3 prune every 3 steps and add none.
    assert after_epoch[0] > 0 and after_epoch == [after_epoch[0]] * 3, after_epoch
    torch._dynamo.reset()
