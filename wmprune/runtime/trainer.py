"""The training loop of one run — SGD, an LR schedule, the pruner after every optimizer step, evaluation and a
checkpoint per epoch — and the files it writes into the run directory (the README's run-file table).

`train` is the public function: `wmprune train` (commands/train.py) decides the run directory's fate (fresh,
resume, overwrite) and calls it; scripts and tests call it too, and may look at the assembled run through
`on_start` before the first batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress

from wmprune import results
from wmprune.config import RunConfig, dump_yaml
from wmprune.errors import TrainingDiverged
from wmprune.models.cost import output_positions
from wmprune.runtime.checkpoint import load_checkpoint, restore, resumable, save_checkpoint
from wmprune.runtime.console import progress_bar, results_table
from wmprune.runtime.devices import (World, autocast, cpu_capability, describe, precision, resolve_device,
                                     sum_across)
from wmprune.runtime.metrics import evaluate
from wmprune.runtime.run import Run, build_run
from wmprune.runtime.tensorboard import Board, open_board


def train_one_epoch(run: Run, progress: Progress, task) -> dict[str, float]:
    run.model.train()
    device = run.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = torch.zeros((), dtype=torch.long, device=device)
    for images, labels in run.train_loader.epoch(run.epoch):
        with autocast(device, run.cfg.train.amp):
            logits = run.forward(images)
            loss = run.loss(logits, labels)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        run.pruner.step()
        # Accumulate on the device: one host sync per epoch, not per step.
        loss_sum += loss.detach().double() * len(labels)
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        seen += len(labels)
        progress.advance(task)
    sum_across(run.world, loss_sum, correct, seen)
    train_loss = loss_sum.item() / seen.item()
    if not math.isfinite(train_loss):
        raise TrainingDiverged(
            f"training loss became {train_loss} in epoch {run.epoch + 1}; the last good checkpoint in "
            f"{run.directory} is kept — lower train.lr or check the data")
    return {"train_loss": train_loss, "train_top1": 100.0 * correct.item() / seen.item()}


def train(cfg: RunConfig, directory: Path, resume: bool, console: Console, world: World = World(),
          on_start: Callable[[Run], None] | None = None) -> dict:
    """Train (or continue) the run in `directory`; returns its summary row. Only rank 0 writes files.
    `on_start` sees the assembled run (model, optimizer, pruner, loaders) before the first batch.

    state.json says `running` from the start, `finished` at the end and `failed` (with the error line) when
    training raises; a process killed outright leaves `running` behind, which `wmprune runs` reads as
    interrupted once the process is gone."""
    setup_started = time.perf_counter()
    checkpoint = directory / results.CHECKPOINT
    state = resumable(load_checkpoint(checkpoint, resolve_device(cfg.device, world)), checkpoint) if resume else None
    writes = world.is_main
    board = open_board(cfg.output.tensorboard, directory, state["step"] + 1 if state else 0, console) \
        if writes else None
    run = build_run(cfg, directory, world, state["pruner"] if state else None,
                    board.mask_changed if board else None)
    log_path = directory / results.LOG
    # A resumed run's log continues the earlier sessions' instead of replacing them.
    earlier_log = log_path.read_text(errors="replace") if resume and log_path.is_file() else ""
    if state:
        restore(run, state)
        console.print(f"resuming {directory} at epoch {run.epoch}, step {run.step} "
                      f"(data, model and checkpoint ready in {time.perf_counter() - setup_started:.2f}s)", markup=False)
    elif writes:
        results.atomic_write_text(directory / results.CONFIG, dump_yaml(cfg))
    if cfg.data.name == "synthetic":
        console.print("[bold yellow]SYNTHETIC DATA: random images, a smoke test only — accuracy means nothing[/]")
    console.print(f"{cfg.name}: {cfg.model.name}×{cfg.model.width} on {cfg.data.name}, method {cfg.prune.method} "
                  f"→ {cfg.prune.target_sparsity:.3f} sparsity, {run.plan.epochs} epochs on {run.device}",
                  markup=False)
    if writes:
        _record_state(run, results.RUNNING)
    if on_start is not None:
        on_start(run)
    try:
        if board and not state:
            board.start(run)
        summary = _train_epochs(run, board, console, earlier_log)
    except Exception as exc:
        if writes:
            lines = str(exc).strip().splitlines()
            _record_state(run, results.FAILED, f"{type(exc).__name__}: {lines[0] if lines else ''}")
        raise
    finally:
        if board:
            board.close()
    return summary


def _train_epochs(run: Run, board: Board | None, console: Console, earlier_log: str) -> dict:
    """The epoch loop from where `run` stands to the end, then the final files; returns the summary row."""
    cfg, directory, writes = run.cfg, run.directory, run.world.is_main
    log_path = directory / results.LOG
    steps_per_epoch = len(run.train_loader)
    epochs = run.plan.epochs  # train.epochs, unless the method trains several levels (IMP)
    with progress_bar(console) as progress:
        task = progress.add_task("training", total=epochs * steps_per_epoch,
                                 completed=run.epoch * steps_per_epoch)
        while run.epoch < epochs:
            started = time.perf_counter()
            lr = run.optimizer.param_groups[0]["lr"]
            train_stats = train_one_epoch(run, progress, task)
            test_stats = evaluate(run.evaluator, run.test_loader, cfg.train.amp, world=run.world)
            val_stats = validate(run)
            sparsity = run.pruner.sparsity()
            # After measuring: the row describes the network that was trained this epoch, not the one a
            # method makes of it for the next (sparse_momentum regrows, IMP prunes and rewinds).
            run.pruner.epoch_end(run.epoch + 1)
            run.epoch += 1
            seconds = time.perf_counter() - started
            run.seconds += seconds
            run.metrics.append({"epoch": run.epoch, "step": run.step, "lr": lr, **train_stats, **test_stats,
                                "sparsity": sparsity, "seconds": round(seconds, 3), **val_stats})
            shown_val = f"val {val_stats['val_top1']:6.2f} " if val_stats else ""
            console.print(f"epoch {run.epoch:>3}/{epochs} loss {train_stats['train_loss']:.4f} "
                          f"train {train_stats['train_top1']:6.2f} {shown_val}test {test_stats['test_top1']:6.2f} "
                          f"sparsity {sparsity:.4f} {seconds:.1f}s")
            if board:  # before the checkpoint: a resume purges what comes after it
                board.epoch_end(run)
            if writes:
                save_checkpoint(run)
                results.write_csv(directory / results.METRICS, results.METRIC_FIELDS, run.metrics)
                results.atomic_write_text(log_path, earlier_log + console.export_text(clear=False))
                _record_state(run, results.RUNNING)
            progress.update(task, description=f"epoch {run.epoch}/{epochs}")

    counts = run.pruner.layer_counts()
    last = run.metrics[-1]
    positions = output_positions(run.model, tuple(run.train_loader.images.shape[1:]))
    measured = {key: float(last[key]) for key in ("test_top1", "test_top5")}
    summary = results.summarize(cfg, counts, positions, measured)
    summary["val_top1"] = float(last["val_top1"]) if "val_top1" in last else ""
    summary.update(epochs=epochs, seconds=round(run.seconds, 2), git_sha=results.git_sha(),
                   torch_version=torch.__version__, device=describe(run.device, cfg.train.amp),
                   precision=precision(run.device, cfg.train.amp), cpu_capability=cpu_capability())
    console.print(results_table(f"{cfg.name} — {directory}", summary))
    if writes:
        results.write_csv(directory / results.LAYERS, results.LAYER_FIELDS, [
            {"layer": c.layer, "shape": "x".join(map(str, c.shape)), "numel": c.numel, "nonzero": c.nonzero,
             "sparsity": c.sparsity} for c in counts])
        results.write_csv(directory / results.SUMMARY, results.SUMMARY_FIELDS, [summary])
        results.atomic_write_text(log_path, earlier_log + console.export_text(clear=False))
        _record_state(run, results.FINISHED)
    return summary


def _record_state(run: Run, status: str, error: str = "") -> None:
    results.write_state(run.directory, status, epoch=run.epoch, epochs=run.plan.epochs,
                        method=run.cfg.prune.method, target_sparsity=run.cfg.prune.target_sparsity, error=error)


def validate(run: Run) -> dict[str, float]:
    """val_loss and val_top1 on the held-out training images; {} when data.val_size is 0."""
    if run.val_loader is None:
        return {}
    stats = evaluate(run.evaluator, run.val_loader, run.cfg.train.amp, split="val", world=run.world)
    return {"val_loss": stats["val_loss"], "val_top1": stats["val_top1"]}

