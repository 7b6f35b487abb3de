"""Run under `torchrun --nproc_per_node 2` by tests/test_distributed.py (CPU, gloo): trains one tiny run per
method named on the command line, in one process group, and writes this rank's fingerprints as JSON —
a hash of every parameter, buffer and mask, the test top-1 of its sharded evaluation against a whole-split
evaluation, and a draw of the network's dropout.

    torchrun --nproc_per_node 2 tests/distributed_runs.py OUT METHOD...
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

from wmprune.catalog import build_config
from wmprune.runtime.devices import World, close, init_world
from wmprune.runtime.loaders import load_splits, make_loaders
from wmprune.runtime.metrics import evaluate
from wmprune.runtime.trainer import train


def config(method: str) -> dict:
    return {"name": f"ddp-{method}", "seed": 0, "device": "cpu", "model": {"name": "alexnet", "width": 0.125},
            "data": {"name": "synthetic", "batch_size": 32}, "train": {"epochs": 2, "lr": 0.05},
            "prune": {"method": method, "target_sparsity": 0.9, "shuffle": method == "gmp",  # own random draws
                      "schedule": {"start_epoch": 0, "end_epoch": 1, "every_steps": 4},
                      "rigl": {"update_every": 4},  # rigl grows from the all-reduced gradients
                      "imp": {"levels": 1}}}


def digest(tensors: list[torch.Tensor]) -> str:
    hashed = hashlib.sha256()
    for tensor in tensors:
        hashed.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return hashed.hexdigest()


def fingerprint(run, cfg) -> dict:
    state = run.model.state_dict()
    dropout = next(m for m in run.model.modules() if isinstance(m, nn.Dropout)).train()
    _, _, whole_test = make_loaders(cfg, load_splits(cfg), run.device)
    return {
        "state": digest([state[name] for name in sorted(state)]),
        "masks": digest(run.pruner.masks.masks),
        "dropout": digest([dropout(torch.ones(1024)) == 0]),
        "test_top1": run.metrics[-1]["test_top1"],
        "whole_test_top1": evaluate(run.evaluator, whole_test, world=World())["test_top1"],
        "test_images_here": sum(len(labels) for _, labels in run.test_loader.epoch(0)),
    }


def main(out: Path, methods: list[str]) -> None:
    world = init_world()
    runs = []
    fingerprints = {}
    for method in methods:
        cfg = build_config(config(method))
        train(cfg, out / method, False, Console(quiet=True, record=True), world, on_start=runs.append)
        fingerprints[method] = fingerprint(runs[-1], cfg)
    (out / f"rank{world.rank}.json").write_text(json.dumps(fingerprints))
    close(world)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
