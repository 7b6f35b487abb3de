"""No training step waits for the host: between pruning events a step makes no `.item()`, no `nonzero`
(data-dependent shapes) and no host-to-device copy. The loader copies an epoch's order and augmentation
once, before its first batch; the per-epoch `.item()` that reports the loss comes after the last step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch.utils._python_dispatch import TorchDispatchMode

from wmprune.catalog import build_config
from wmprune.runtime.trainer import train_one_epoch
from wmprune.runtime.console import progress_bar
from wmprune.runtime.devices import World
from wmprune.runtime.run import build_run

SYNCING = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default}
COPIES = {torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default}


class NoHostSync(TorchDispatchMode):
    """While `armed`, fails on ops that make the host wait for the device: reading a value (`.item()`,
    `bool(tensor)`), `nonzero`, and copies between devices (which on CPU cannot happen: there the op list
    is what is checked)."""

    armed = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.armed:
            if func in SYNCING:
                raise AssertionError(f"host sync in a training step: {func}")
            if func in COPIES:
                devices = {t.device for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)}
                devices |= {kwargs["device"]} if kwargs.get("device") is not None else set()
                if len(devices) > 1:
                    raise AssertionError(f"cross-device copy in a training step: {func} {devices}")
        return func(*args, **kwargs)


def _run(tmp_path: Path, device: str, method: str):
    cfg = build_config({"name": "sync", "device": device, "model": {"name": "alexnet", "width": 0.125},
                        "data": {"name": "synthetic", "batch_size": 32},
                        "train": {"epochs": 4, "lr": 0.05},
                        # Events from epoch 2 on: the first epoch's steps are all bookkeeping, no pruning.
                        "prune": {"method": method, "target_sparsity": 0.9,
                                  "schedule": {"start_epoch": 2, "end_epoch": 3, "every_steps": 4}}})
    return build_run(cfg, tmp_path, World())


def _arm_during_steps(run, mode: NoHostSync, monkeypatch, sync_debug: bool) -> None:
    """Arm `mode` from the first batch until the last step of the epoch (the loader's per-epoch setup and
    the epoch's closing `.item()` stay outside)."""
    epoch = run.train_loader.epoch

    def armed(index: int):
        for batch in epoch(index):
            mode.armed = True
            if sync_debug:
                torch.cuda.set_sync_debug_mode("error")
            yield batch
        mode.armed = False
        if sync_debug:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(run.train_loader, "epoch", armed)


def _one_epoch(run) -> dict:
    with progress_bar(Console(quiet=True)) as progress:
        return train_one_epoch(run, progress, progress.add_task("t", total=len(run.train_loader)))


@pytest.mark.parametrize("method", ["weightmom", "sparse_momentum", "snip"])
def test_training_steps_never_wait_for_the_host(tmp_path, monkeypatch, method):
    run = _run(tmp_path, "cpu", method)
    mode = NoHostSync()
    _arm_during_steps(run, mode, monkeypatch, sync_debug=False)
    with mode:
        stats = _one_epoch(run)
    assert stats["train_loss"] > 0


def test_the_check_catches_an_item_in_the_step(tmp_path, monkeypatch):
    run = _run(tmp_path, "cpu", "weightmom")
    mode = NoHostSync()
    _arm_during_steps(run, mode, monkeypatch, sync_debug=False)
    step = run.pruner.step
    monkeypatch.setattr(run.pruner, "step", lambda: (step(), run.pruner.masks.masks[0].sum().item()))
    with mode, pytest.raises(AssertionError, match="_local_scalar_dense"):
        _one_epoch(run)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (scripts/gpu_check.sh runs it)")
def test_cuda_steps_never_synchronise(tmp_path, monkeypatch):
    """The same on a GPU, where PyTorch itself raises on any synchronising call inside a step."""
    run = _run(tmp_path, "cuda", "weightmom")
    mode = NoHostSync()
    _arm_during_steps(run, mode, monkeypatch, sync_debug=True)
    try:
        with mode:
            _one_epoch(run)
    finally:
        torch.cuda.set_sync_debug_mode("default")
